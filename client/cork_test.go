package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// writeCounter is a Dialer whose connections count the writes made on
// them (the client's TCP writes, under TLS).
type writeCounter struct {
	mu     sync.Mutex
	writes []int // the size of each write, in order
}

func (w *writeCounter) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, w: w}, nil
}

func (w *writeCounter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes)
}

type countedConn struct {
	net.Conn
	w *writeCounter
}

func (c *countedConn) Write(p []byte) (int, error) {
	c.w.mu.Lock()
	c.w.writes = append(c.w.writes, len(p))
	c.w.mu.Unlock()
	return c.Conn.Write(p)
}

// Over TLS 1.3 the client's Finished leaves in one write with hello: a
// node then reads both with one wake-up. The client writes twice in all
// (ClientHello; Finished and hello), and the node answers hello. Over
// TLS 1.2, where the client's Finished is answered before the handshake
// ends, nothing is held and the node answers all the same.
func TestTLSFinishedLeavesWithHello(t *testing.T) {
	const service = "cork.test"
	ca := newDevCA(t, service)
	cert, key := ca.issue("node", service)
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Service = service
		cfg.TLSCert, cfg.TLSKey = cert, key
	}})
	for _, tc := range []struct {
		name   string
		max    uint16
		writes int // the client's writes, handshake and hello
	}{
		{"TLS 1.3", tls.VersionTLS13, 2},
		{"TLS 1.2", tls.VersionTLS12, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), settle)
			defer cancel()
			var d writeCounter
			conn, err := client.DialConnTLS(ctx, &d, c.Nodes[0].Addr(), &tls.Config{RootCAs: ca.pool, ServerName: service, MaxVersion: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			dir, err := conn.Hello(ctx, "cork-test", "")
			if err != nil {
				t.Fatalf("hello over TLS: %v", err)
			}
			if dir.Self != c.Nodes[0].ID() {
				t.Errorf("directory from %q, want %q", dir.Self, c.Nodes[0].ID())
			}
			if got := d.count(); got != tc.writes {
				t.Errorf("%d writes for the handshake and hello (sizes %v), want %d", got, d.writes, tc.writes)
			}
		})
	}
}

// tlsPeer is a TLS server for one connection, with the node's
// certificate, that hands the accepted connection to serve.
func tlsPeer(t *testing.T, cert, key string, serve func(*tls.Conn) error) (addr string, done <-chan error) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		errc <- serve(tls.Server(c, &tls.Config{Certificates: []tls.Certificate{pair}}))
	}()
	return ln.Addr().String(), errc
}

// A client that reads before it sends releases its Finished first: a
// server that completes its handshake and then speaks first is heard
// (were the Finished held, the server would wait for it forever).
func TestTLSReadReleasesFinished(t *testing.T) {
	const service = "cork-read.test"
	ca := newDevCA(t, service)
	cert, key := ca.issue("node", service)
	addr, done := tlsPeer(t, cert, key, func(c *tls.Conn) error {
		if err := c.Handshake(); err != nil {
			return err
		}
		_, err := c.Write([]byte(`{"op":"pong"}` + "\n"))
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	conn, err := client.DialConnTLS(ctx, nil, addr, &tls.Config{RootCAs: ca.pool, ServerName: service})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m, err := conn.Recv(ctx)
	if err != nil {
		t.Fatalf("reading what the server said first: %v", err)
	}
	if m.Op != wire.OpPong {
		t.Errorf("got %q, want pong", m.Op)
	}
	if err := <-done; err != nil {
		t.Errorf("server: %v", err)
	}
}

// A connection closed before its first message still finishes its
// handshake and says goodbye: the server's handshake succeeds and its
// read ends at the close_notify (io.EOF), not at a broken handshake.
func TestTLSCloseSendsHeldFinished(t *testing.T) {
	const service = "cork-close.test"
	ca := newDevCA(t, service)
	cert, key := ca.issue("node", service)
	addr, done := tlsPeer(t, cert, key, func(c *tls.Conn) error {
		if err := c.Handshake(); err != nil {
			return err
		}
		_, err := c.Read(make([]byte, 1))
		if !errors.Is(err, io.EOF) {
			return errors.New("read after the handshake: " + errString(err) + ", want io.EOF (close_notify)")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	conn, err := client.DialConnTLS(ctx, nil, addr, &tls.Config{RootCAs: ca.pool, ServerName: service})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := <-done; err != nil {
		t.Errorf("server: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
