package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/dnsserver"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// The common address is one node, and that node stops (gracefully: it
// says shutdown and closes). The session does not strand: the common
// address refuses, so it says hello to another node of the directory it
// has, and reattaches there.
func TestCommonAddressGoneUsesLastDirectory(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	c.WaitAllUp(settle)
	n1 := c.Nodes[0]
	s, err := client.Dial(dialCtx(t), n1.Addr(), client.WithUser("alice"), client.WithPolicy(preferring("n1", "n2", "n3")), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Node().ID != "n1" {
		t.Fatalf("attached to %s, want n1", s.Node().ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := n1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	back := awaitEvent(t, s, "reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	if back.Node.ID == "n1" {
		t.Errorf("reattached to n1, which is gone")
	}
}

// deadUDP returns a loopback UDP address with nothing listening on it.
func deadUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// startResponder starts a DNS responder for chat.test over the directory
// of n, on 127.0.0.1:0, until the test ends.
func startResponder(t *testing.T, dir func() []directory.Node) string {
	t.Helper()
	cfg := dnsserver.DefaultConfig("chat.test", dir)
	cfg.Addr = "127.0.0.1:0"
	srv, err := dnsserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return srv.Addr()
}

// Resolvers are tried in turn: with the first one dead, the second
// answers, for a dns: target and for the host name of a HOST:PORT target
// alike (looked up through the resolvers, never the system's: chat.test
// is known to none but the responder).
func TestResolversInTurn(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitAllUp(settle)
	live := startResponder(t, func() []directory.Node { return c.Nodes[0].Directory().Nodes })
	dead := deadUDP(t)
	for _, target := range []string{"dns:chat.test", "dns://" + dead + "/chat.test", "chat.test:1"} {
		t.Run(target, func(t *testing.T) {
			s, err := client.Dial(dialCtx(t), target, client.WithUser("alice"), client.WithResolvers(dead, live), client.WithRetry(fastRetry()))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if id := s.Node().ID; !slices.Contains([]string{"n1", "n2"}, id) {
				t.Errorf("attached to %q", id)
			}
		})
	}
	// With only the dead resolver, Dial fails and says which it asked.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := client.Dial(ctx, "dns:chat.test", client.WithUser("alice"), client.WithResolver(dead), client.WithRetry(fastRetry()))
	if err == nil || !strings.Contains(err.Error(), dead) {
		t.Errorf("Dial through a dead resolver: %v, want an error naming %s", err, dead)
	}
}

// deadTCP returns a loopback TCP address with nothing listening on it.
func deadTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The node the session is on is cut off in a minority: its directory
// lists every peer down, then it goes. The common address is that node
// too, so nothing answers there; the peers it called down are all that
// is left, and the session says hello to them rather than strand.
func TestPeersListedDownAreTriedLast(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	a.setDirectory(func() []directory.Node {
		down := b.entry()
		down.Status = directory.Down
		return []directory.Node{a.entry(), down}
	})
	reattachedAfterStop(t, a, "b", client.WithUser("alice"), client.WithRetry(fastRetry()))
}

// reattachedAfterStop dials a with opts, checks that the session is on
// a, stops a and checks that the session reattaches to the node want.
func reattachedAfterStop(t *testing.T, a *fakeNode, want string, opts ...client.Option) {
	t.Helper()
	s, err := client.Dial(dialCtx(t), a.Addr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Node().ID != "a" {
		t.Fatalf("attached to %s, want a", s.Node().ID)
	}
	a.stop()
	back := awaitEvent(t, s, "reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	if back.Node.ID != want {
		t.Errorf("reattached to %s, want %s", back.Node.ID, want)
	}
}

// The reconnect timeout bounds a pass over the directory's addresses, not
// only the steps between: the common address is gone and the nodes of
// the last directory take connections but answer nothing (paused, or
// behind a black hole that completes handshakes). One is tried until
// the deadline; the rest, each another attempt timeout, are not.
func TestReconnectTimeoutBoundsOnePass(t *testing.T) {
	a := newFakeNode(t, "a")
	var paused []*fakeNode
	for i := range 4 {
		p := newFakeNode(t, fmt.Sprintf("p%d", i))
		p.pause()
		paused = append(paused, p)
	}
	a.setDirectory(func() []directory.Node {
		nodes := []directory.Node{a.entry()}
		for _, p := range paused {
			e := p.entry()
			e.Status = directory.Starting // not picked; asked for a directory
			nodes = append(nodes, e)
		}
		return nodes
	})
	// The stagger is shorter than the reconnect timeout: only
	// connections not yet made are staggered, and a hello on one that
	// is made has its attempt timeout before the next node is asked.
	// (Staggered hellos asked 3 or 4 of the silent nodes; a stagger of
	// a second leaves a loaded machine ample time to make a loopback
	// connection.)
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithRetry(fastRetry()),
		client.WithReconnectTimeout(3*time.Second), client.WithAttemptTimeout(20*time.Second), client.WithHelloStagger(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a.stop()
	awaitEvent(t, s, "give-up", func(e client.Event) bool {
		return e.Kind == client.Disconnected && errors.Is(e.Err, client.ErrGaveUp)
	}, nil)
	tried := 0
	for _, p := range paused {
		p.mu.Lock()
		tried += p.accepted
		p.mu.Unlock()
	}
	if tried != 1 {
		t.Errorf("%d of the %d silent nodes were tried within the reconnect timeout; want 1", tried, len(paused))
	}
}
