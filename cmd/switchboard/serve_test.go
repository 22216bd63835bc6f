package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A cluster port already in use fails serve at once with the bind error,
// instead of after the embedded server's start timeout.
func TestServeClusterPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	secret := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(secret, []byte("a-secret-of-enough-bytes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--listen", "127.0.0.1:0", "--http", "", "--cluster", ln.Addr().String(), "--cluster-secret-file", secret, "--data", t.TempDir()}
	err = runServe(context.Background(), args, &strings.Builder{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "bus: cluster listener") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve with a busy cluster port: %v", err)
	}
	if exitCode(err) != exitFailure {
		t.Errorf("exit code %d, want %d", exitCode(err), exitFailure)
	}
}
