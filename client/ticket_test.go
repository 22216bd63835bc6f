package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"

	"github.com/switchboard/switchboard/client"
)

// A TLS ticket survives a handshake its caller cancels (a staggered hello
// that lost the race), so the client's next connection resumes; a
// handshake that fails while its context is live (the node closed the
// connection) still forgets it, as Go's TLS client does.
func TestCancelledHandshakeKeepsTheTicket(t *testing.T) {
	const service = "svc.test"
	ca := newDevCA(t, service)
	cert, key := ca.issue("node", service)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	// A node that completes the handshake and writes a byte, so that the
	// client reads the session ticket sent after the handshake.
	node, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	go func() {
		for {
			c, err := node.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte{'x'})
				c.Read(make([]byte, 1)) // until the client closes
			}()
		}
	}()

	for _, tt := range []struct {
		name      string
		cancel    bool // the caller cancels once the ClientHello is read; else the peer closes
		keepsTick bool
	}{
		{"cancelled by its caller", true, true},
		{"closed by the peer", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cache := tls.NewLRUClientSessionCache(4)
			cfg := &tls.Config{RootCAs: ca.pool, ServerName: service, ClientSessionCache: cache}
			c, err := tls.Dial("tcp", node.Addr().String(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			c.Close()
			if _, ok := cache.Get(service); !ok {
				t.Fatal("no ticket after the first handshake")
			}

			// A peer that reads the ClientHello and answers nothing.
			stall, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer stall.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				c, err := stall.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				if _, err := c.Read(make([]byte, 1)); err != nil {
					return
				}
				if tt.cancel {
					cancel()
					c.Read(make([]byte, 1)) // until the client closes
				}
			}()
			_, err = client.DialConnTLS(ctx, nil, stall.Addr().String(), cfg)
			if err == nil {
				t.Fatal("handshake with a peer that answers nothing succeeded")
			}
			if got := errors.Is(err, context.Canceled); got != tt.cancel {
				t.Fatalf("handshake error %v: cancelled %v, want %v", err, got, tt.cancel)
			}
			if _, ok := cache.Get(service); ok != tt.keepsTick {
				t.Errorf("ticket kept %v after the failed handshake, want %v", ok, tt.keepsTick)
			}
		})
	}
}
