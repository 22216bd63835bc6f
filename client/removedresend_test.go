package client_test

import (
	"testing"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/wire"
)

// A node that took the session out of a room (removed: its place was
// lost while the node was cut off) refuses the chunks already on their
// way there with bad_request, not in the room. The session joins again
// by itself, and when the join's state puts it back (a place freed),
// those chunks go again under their seqs and are stored, as after a
// failover. Before, the refusals dropped them for good.
func TestTextRefusedAfterRemovedIsResentAfterTheState(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()))
	c := join.conn
	c.send(roomState("r", 0))
	awaitEvent(t, s, "the room's state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	go func() { // nobody else reads the events from here
		for range s.Events() {
		}
	}()

	typed := async(func() (uint64, error) { return s.SendTextWait(dialCtx(t), "r", "x") })
	if m := nextGot(t, a).m; m.Op != wire.OpText || m.Seq != 1 {
		t.Fatalf("the node got %s seq %d; want text seq 1", m.Op, m.Seq)
	}
	c.send(wire.Message{Op: wire.OpError, Code: wire.CodeRemoved, Room: "r", Message: "room r is full: this session lost its place"})
	c.send(wire.Message{Op: wire.OpError, Code: wire.CodeBadRequest, Room: "r", Seq: 1, Message: "not in room r"})
	if m := nextGot(t, a).m; m.Op != wire.OpJoin || m.Room != "r" {
		t.Fatalf("after removed the node got %s %s; want the join of r", m.Op, m.Room)
	}
	c.send(roomState("r", 0))
	if m := nextGot(t, a).m; m.Op != wire.OpText || m.Seq != 1 || m.T != "x" {
		t.Fatalf("after the state the node got %s seq %d %q; want text seq 1 %q again", m.Op, m.Seq, m.T, "x")
	}
	c.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 1})
	if r := awaitResult(t, "SendTextWait", typed); r.err != nil || r.v != 1 {
		t.Fatalf("SendTextWait = %d, %v; want 1, nil", r.v, r.err)
	}

	// Once the state is in, a bad_request is a refusal for good again.
	if _, err := s.SendText("r", "y"); err != nil {
		t.Fatal(err)
	}
	if m := nextGot(t, a).m; m.Op != wire.OpText || m.Seq != 2 {
		t.Fatalf("the node got %s seq %d; want text seq 2", m.Op, m.Seq)
	}
	c.send(wire.Message{Op: wire.OpError, Code: wire.CodeBadRequest, Room: "r", Seq: 2, Message: "refused"})
	awaitUnacked(t, s, "r", 0)
}
