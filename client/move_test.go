package client_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// holdDialer holds the attach's answer on connections to addr: a Read
// that brings `"op":"attached"` closes held and waits, the bytes in hand,
// until release is closed. closed receives the address of every
// connection the client closes.
type holdDialer struct {
	addr    string
	held    chan struct{}
	release chan struct{}
	closed  chan string
	once    sync.Once
}

func newHoldDialer(addr string) *holdDialer {
	return &holdDialer{addr: addr, held: make(chan struct{}), release: make(chan struct{}), closed: make(chan string, 100)}
}

func (d *holdDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &holdConn{Conn: c, d: d, hold: addr == d.addr}, nil
}

// awaitClosed waits until the client closes a connection to addr,
// failing after settle.
func (d *holdDialer) awaitClosed(t *testing.T, addr string) {
	t.Helper()
	deadline := time.After(settle)
	for {
		select {
		case got := <-d.closed:
			if got == addr {
				return
			}
		case <-deadline:
			t.Fatalf("no connection to %s closed within %v", addr, settle)
		}
	}
}

type holdConn struct {
	net.Conn
	d    *holdDialer
	hold bool
	once sync.Once
}

func (c *holdConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.hold && bytes.Contains(p[:n], []byte(`"op":"attached"`)) {
		c.d.once.Do(func() { close(c.d.held) })
		<-c.d.release
	}
	return n, err
}

func (c *holdConn) Close() error {
	c.once.Do(func() { c.d.closed <- c.Conn.RemoteAddr().String() })
	return c.Conn.Close()
}

// Close during a move, just as the new node's attached answer is read:
// Close closes the session's connection, still the old one, and the
// move must not then take the new one, which nothing would close (with
// the heartbeat off, the session would read it until the node's idle
// timeout, and Close would wait as long).
func TestCloseDuringAMovesAttach(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	d := newHoldDialer(b.Addr())
	s, join := aliceInRoom(t, a, client.WithDialer(d), client.WithPolicy(preferring("a", "b")), client.WithRetry(fastRetry()), client.WithHeartbeat(client.Heartbeat{}))
	draining := a.entry()
	draining.Status = directory.Draining
	join.conn.send(wire.Message{Op: wire.OpMove, Message: "a is draining",
		Dir: &wire.Directory{Service: "fake.test", Self: "a", Nodes: []directory.Node{draining, b.entry()}}})
	select {
	case <-d.held:
	case <-time.After(settle):
		t.Fatalf("the move read no attached answer from b within %v", settle)
	}
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	// Close has ended the session's context once it closes the
	// connection to a: only then does the attach read its answer.
	d.awaitClosed(t, a.Addr())
	close(d.release)
	select {
	case <-closed:
	case <-time.After(settle):
		t.Fatalf("Close still waiting %v after the move's attach", settle)
	}
	if st := s.State(); st != client.StateClosed {
		t.Errorf("state %v after Close, want closed", st)
	}
	d.awaitClosed(t, b.Addr()) // the client closed it; the node did not
}

// A node that counts a session attached a moment before it says so can
// ask it to move in between, when a drain starts at that moment: the move
// comes before attached on the connection. The session keeps it and moves
// once attached, rather than staying on the draining node until the
// drain's deadline closes it.
func TestMoveBeforeAttachedIsKept(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	draining := a.entry()
	draining.Status = directory.Draining
	a.sendBeforeAttached(wire.Message{Op: wire.OpMove, Message: "a is draining",
		Dir: &wire.Directory{Service: "fake.test", Self: "a", Nodes: []directory.Node{draining, b.entry()}}})
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"),
		client.WithPolicy(preferring("a", "b")), client.WithRetry(fastRetry()), client.WithHeartbeat(client.Heartbeat{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// The session may have moved already: Dial returns once attached to
	// a, and the move is acted on right after.
	moved := awaitEvent(t, s, "move", func(e client.Event) bool { return e.Kind == client.Moved }, nil)
	if moved.Node.ID != "b" || !strings.Contains(moved.Reason, "moved off a") {
		t.Errorf("moved to %s (%q), want off a to b", moved.Node.ID, moved.Reason)
	}
}

// A move whose first pick is going away too (draining as well, or it
// refuses): the session picks again from the refusal's directory and
// moves to a node that stays, without a drop, and its text goes on.
func TestMoveAwayFromAPickThatDrainsToo(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	c.WaitAllUp(settle)
	c.WaitRoomsReady(settle)
	s, err := client.Dial(dialCtx(t), c.Nodes[0].Addr(), client.WithUser("alice"),
		client.WithPolicy(preferring("n1", "n2", "n3")), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if _, err := s.JoinWait(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendTextWait(ctx, "r", "a"); err != nil {
		t.Fatal(err)
	}
	c.Nodes[1].SetDraining(true)
	c.Nodes[0].Drain(settle) // longer than the client's own move timeout: the move, not the deadline, ends it
	moved := awaitEvent(t, s, "move", func(e client.Event) bool { return e.Kind == client.Moved }, func(e client.Event) {
		if e.Kind == client.Disconnected {
			t.Errorf("dropped during the move: %v", e.Err)
		}
	})
	if moved.Node.ID != "n3" {
		t.Errorf("moved to %s, want n3 (n1 and n2 drain)", moved.Node.ID)
	}
	seq, err := s.SendTextWait(ctx, "r", "b")
	if err != nil || seq != 2 {
		t.Errorf("SendTextWait after the move = %d, %v; want seq 2", seq, err)
	}
}
