package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
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

// SIGHUP makes serve read its certificate again: a renewed one is served
// from the next handshake on and the process keeps running. Before, the
// certificate was read at start only, and SIGHUP ended the process.
func TestSIGHUPReloadsTheCertificate(t *testing.T) {
	var logs nodetest.LockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 1, Standalone: true, Service: "hup.test", TLS: true, Output: &logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	served := func() (*big.Int, error) {
		conn, err := tls.Dial("tcp", c.Nodes[0].Addr, &tls.Config{RootCAs: c.CAPool(), ServerName: c.Service()})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
	}
	first, err := served()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RenewCertificate(0); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, time.Minute, func() error {
		if !c.Nodes[0].Alive() {
			t.Fatalf("the node exited at SIGHUP; its log:\n%s", logs.String())
		}
		serial, err := served()
		switch {
		case err != nil:
			return err
		case serial.Cmp(first) == 0:
			return errors.New("still the first certificate")
		}
		return nil
	})
	// The node logs the reload after it swaps the certificate, and the
	// line crosses a pipe from another process: await it rather than
	// expect it the moment the new certificate is served.
	nodetest.Eventually(t, time.Minute, func() error {
		if !strings.Contains(logs.String(), "reloaded the TLS certificate") {
			return fmt.Errorf("no line says the certificate was reloaded; the log:\n%s", logs.String())
		}
		return nil
	})
}
