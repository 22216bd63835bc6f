package client_test

import (
	"strconv"
	"testing"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/wire"
)

// A session with the smallest event buffer loses nothing: while its one
// slot is full it stops reading from the node, and the messages the node
// sent meanwhile wait in the connection and arrive in order.
func TestSmallEventBufferKeepsEveryEventInOrder(t *testing.T) {
	a := newFakeNode(t, "a")
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithEventBuffer(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if got := cap(s.Events()); got != 1 {
		t.Fatalf("event buffer holds %d, want 1", got)
	}
	if err := s.Join("r"); err != nil {
		t.Fatal(err)
	}
	join := awaitGot(t, a, wire.OpJoin)
	const n = 200
	for i := range n {
		join.conn.send(wire.Message{Op: wire.OpText, Room: "r", From: "bob", Seq: uint64(i + 1), T: strconv.Itoa(i + 1)})
	}
	next := uint64(1)
	awaitEvent(t, s, "bob's last chunk", func(e client.Event) bool {
		m := e.Message
		if e.Kind != client.Received || m.Op != wire.OpText || m.From != "bob" {
			return false
		}
		if m.Seq != next || m.T != strconv.FormatUint(next, 10) {
			t.Fatalf("got bob's chunk %d %q, want %d", m.Seq, m.T, next)
		}
		next++
		return m.Seq == n
	}, nil)
}

// An event buffer must hold at least one event.
func TestEventBufferMustHoldOne(t *testing.T) {
	a := newFakeNode(t, "a")
	for _, n := range []int{0, -1} {
		if _, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithEventBuffer(n)); err == nil {
			t.Errorf("WithEventBuffer(%d): Dial succeeded", n)
		}
	}
}
