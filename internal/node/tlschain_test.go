package node_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A node sends its certificate and intermediates, not the root its
// certificate file ends with (every client must trust that already): the
// dev CA's chain goes out as the leaf alone, a chain through an
// intermediate as leaf and intermediate, and clients verify both against
// the root.
func TestTLSChainLeavesOutTheRoot(t *testing.T) {
	const service = "chain.test"
	dir := t.TempDir()
	now := time.Now()
	root, rootKey := makeCA(t, "root", nil, nil, now)
	inter, interKey := makeCA(t, "intermediate", root, rootKey, now)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate // after the leaf, in the file
		want  []*x509.Certificate // after the leaf, on the wire
	}{
		{"leaf and root", []*x509.Certificate{root}, nil},
		{"leaf alone", nil, nil},
		{"leaf, intermediate and root", []*x509.Certificate{inter, root}, []*x509.Certificate{inter}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, parentKey := root, rootKey
			if len(tc.chain) == 2 {
				parent, parentKey = inter, interKey
			}
			leaf, leafKey := makeLeaf(t, service, parent, parentKey, now)
			var file bytes.Buffer
			for _, c := range append([]*x509.Certificate{leaf}, tc.chain...) {
				_ = pem.Encode(&file, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
			}
			keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
			if err != nil {
				t.Fatal(err)
			}
			cert, key := filepath.Join(dir, tc.name+".pem"), filepath.Join(dir, tc.name+".key")
			if err := os.WriteFile(cert, file.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
				t.Fatal(err)
			}
			c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
				cfg.Service = service
				cfg.TLSCert, cfg.TLSKey = cert, key
			}})
			conn, err := tls.Dial("tcp", c.Nodes[0].Addr(), &tls.Config{RootCAs: pool, ServerName: service})
			if err != nil {
				t.Fatalf("TLS to the node: %v", err)
			}
			defer conn.Close()
			st := conn.ConnectionState()
			want := append([]*x509.Certificate{leaf}, tc.want...)
			if len(st.PeerCertificates) != len(want) {
				t.Fatalf("the node sent %d certificates, want %d", len(st.PeerCertificates), len(want))
			}
			for i, c := range st.PeerCertificates {
				if !c.Equal(want[i]) {
					t.Errorf("certificate %d is %q, want %q", i, c.Subject.CommonName, want[i].Subject.CommonName)
				}
			}
			if n := len(st.VerifiedChains); n == 0 || !st.VerifiedChains[0][len(st.VerifiedChains[0])-1].Equal(root) {
				t.Errorf("verified chains %d, want one ending at the root", n)
			}
		})
	}
}

// makeCA makes a CA certificate, self-signed when parent is nil.
func makeCA(t *testing.T, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// makeLeaf makes a server certificate for service, signed by parent.
func makeLeaf(t *testing.T, service string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano() + 1), Subject: pkix.Name{CommonName: service}, DNSNames: []string{service},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}
