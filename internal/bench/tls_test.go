package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/localcluster"
)

// The bench's returning TLS clients really resume: the handshake counter
// agrees with tls.ConnectionState.DidResume, a returning client's timed
// dials make no full handshake at all (so the bench cannot silently time
// full handshakes under that name), and a first-time client makes exactly
// one per dial (the attach resumes the hello's session, at any node of the
// service).
func TestReturningTLSResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lc, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 2, TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Stop()
	base := &tls.Config{RootCAs: lc.CAPool(), ServerName: lc.Service()}

	t.Run("the counter sees what ConnectionState says", func(t *testing.T) {
		var hs handshakeCounter
		cfg := hs.config(base)
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		var resumed []bool
		for _, n := range []*localcluster.Node{lc.Nodes[0], lc.Nodes[0], lc.Nodes[1]} {
			conn, err := tls.Dial("tcp", n.Addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Read the hello's answer, and with it the ticket the node
			// sent after the handshake.
			if _, err := conn.Write([]byte(`{"op":"hello","v":1}` + "\n")); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := bufio.NewReader(conn).ReadBytes('\n'); err != nil {
				t.Fatal(err)
			}
			resumed = append(resumed, conn.ConnectionState().DidResume)
			conn.Close()
		}
		if resumed[0] || !resumed[1] || !resumed[2] {
			t.Errorf("DidResume %v, want a full handshake, then resumed at the same node and at the other", resumed)
		}
		if got := hs.count(); got != (Handshakes{Full: 1, Resumed: 2}) {
			t.Errorf("counted %+v, want 1 full and 2 resumed", got)
		}
	})

	const clients = 20
	open := func(t *testing.T, returning bool) *Run {
		t.Helper()
		primed := 0
		load := Load{
			Target: strings.Join(lc.Addrs(), ","), Clients: clients, Concurrency: 5, Policy: "default",
			TLS: base, ReturningTLS: returning,
		}
		if returning {
			load.Primed = func(context.Context) error { primed++; return nil }
		}
		run, err := Open(ctx, load, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(run.Close)
		if res := run.Snapshot(); res.Attached != clients || res.Failed != 0 || run.PrimeFailed() != 0 {
			t.Fatalf("%d attached, %d failed, %d earlier visits failed (%v); want %d attached", res.Attached, res.Failed, run.PrimeFailed(), res.Errors, clients)
		}
		if returning && primed != 1 {
			t.Errorf("Primed called %d times, want once", primed)
		}
		return run
	}
	t.Run("returning clients resume every handshake", func(t *testing.T) {
		got := open(t, true).Handshakes()
		if got.Full != 0 || got.Resumed < clients {
			t.Errorf("timed dials of returning clients made %+v; want no full handshake and at least %d resumed", got, clients)
		}
	})
	t.Run("first-time clients make one full handshake each", func(t *testing.T) {
		got := open(t, false).Handshakes()
		if got.Full != clients {
			t.Errorf("timed dials of first-time clients made %+v; want %d full", got, clients)
		}
	})
}
