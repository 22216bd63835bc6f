package main

import (
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/pki"
	"github.com/switchboard/switchboard/wire"
)

// A front's bridge (SIP, WebRTC) dials its own node and trusts the
// certificate that node serves now. Renewed into a file that holds the
// leaf alone, from another issuer, and reloaded, it is still trusted;
// the bridge's pool used to be read from the file at start, trusting the
// old leaf only, and every call then failed to attach. A node serving
// another certificate is not trusted.
func TestBridgeTrustsItsNodesRenewedCertificate(t *testing.T) {
	t.Parallel()
	const service = "chat.test"
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key")
	// issue writes a certificate from a CA of its own, without the CA.
	issue := func(certFile, keyFile string) {
		t.Helper()
		now := time.Now()
		ca, _, err := pki.NewCA(service, now)
		if err != nil {
			t.Fatal(err)
		}
		chain, key, err := ca.Issue(pki.Request{Service: service, Hosts: []string{"127.0.0.1"}}, now)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := pem.Decode(chain)
		if err := os.WriteFile(certFile, pem.EncodeToMemory(leaf), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	withCert := func(certFile, keyFile string) nodetest.Options {
		return nodetest.Options{Configure: func(_ int, cfg *node.Config) {
			cfg.Service, cfg.TLSCert, cfg.TLSKey = service, certFile, keyFile
		}}
	}
	issue(certFile, keyFile)
	n := nodetest.Start(t, 1, withCert(certFile, keyFile)).Nodes[0]
	// hello dials addr as n's bridge would and asks for the directory.
	hello := func(addr string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		conn, err := client.DialConnTLS(ctx, nil, addr, ownNodeTLS(n))
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := conn.Send(wire.Message{Op: wire.OpHello, V: wire.Version, Client: "bridge/1"}); err != nil {
			return err
		}
		_, err = conn.Recv(ctx)
		return err
	}
	if err := hello(n.Addr()); err != nil {
		t.Fatalf("the bridge and its node: %v", err)
	}
	issue(certFile, keyFile)
	if err := n.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := hello(n.Addr()); err != nil {
		t.Errorf("the bridge and its node, after a renewal: %v", err)
	}

	otherCert, otherKey := filepath.Join(dir, "other.crt"), filepath.Join(dir, "other.key")
	issue(otherCert, otherKey)
	other := nodetest.Start(t, 1, withCert(otherCert, otherKey)).Nodes[0]
	if err := hello(other.Addr()); !errors.Is(err, errNotOwnNode) {
		t.Errorf("the bridge and another node: %v, want %v", err, errNotOwnNode)
	}
}
