package nodetest

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard/switchboard/internal/pki"
)

// TokenKey makes a signing key for user tokens: the private key, to mint
// tokens with, and the file of its public key, for node.Config.TokenKey.
func TokenKey(tb testing.TB) (ed25519.PrivateKey, string) {
	tb.Helper()
	privPEM, pubPEM, err := pki.NewSigningKey()
	if err != nil {
		tb.Fatal(err)
	}
	pubFile := filepath.Join(tb.TempDir(), "token.pub")
	if err := os.WriteFile(pubFile, pubPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	priv, err := pki.ParsePrivateKey(privPEM)
	if err != nil {
		tb.Fatal(err)
	}
	key, ok := priv.(ed25519.PrivateKey)
	if !ok {
		tb.Fatalf("a signing key of type %T, want Ed25519", priv)
	}
	return key, pubFile
}
