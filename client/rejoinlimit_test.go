package client_test

import (
	"testing"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/wire"
)

// After a chunk is refused for the rate the session joins the room again
// by itself, and the node can refuse that re-join with limit (a room
// state that does not fit one line). The session is still in the room
// (docs/protocol.md, "Join"), so the client keeps it and asks again after
// a pause; the state that then comes lets out the refused chunk and the
// text typed meanwhile, in order. Before, the room stayed unsynced: the
// text waited for a state no join would ask for, and Flush hung.
func TestRejoinRefusedForLimitIsAskedAgain(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()))
	c := join.conn
	c.send(roomState("r", 0))
	awaitEvent(t, s, "the room's state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	go func() { // acks and refusals are events too
		for range s.Events() {
		}
	}()

	if _, err := s.SendText("r", "x"); err != nil {
		t.Fatal(err)
	}
	if m := nextGot(t, a).m; m.Op != wire.OpText || m.Seq != 1 {
		t.Fatalf("the node got %s seq %d; want text seq 1", m.Op, m.Seq)
	}
	c.send(wire.Message{Op: wire.OpError, Code: wire.CodeRate, Room: "r", Seq: 1, Message: "too fast"})
	if m := nextGot(t, a).m; m.Op != wire.OpJoin || m.Room != "r" {
		t.Fatalf("after the rate refusal the node got %s %s; want the join of r", m.Op, m.Room)
	}
	c.send(wire.Message{Op: wire.OpError, Code: wire.CodeLimit, Room: "r", Message: "room r's state does not fit one line"})
	if _, err := s.SendText("r", "y"); err != nil {
		t.Fatalf("SendText after the re-join was refused: %v (the session is still in the room)", err)
	}
	if m := nextGot(t, a).m; m.Op != wire.OpJoin || m.Room != "r" {
		t.Fatalf("after the re-join's limit the node got %s %s seq %d; want the join of r again", m.Op, m.Room, m.Seq)
	}
	c.send(roomState("r", 0))
	for i, want := range []string{"x", "y"} {
		m := nextGot(t, a).m
		if m.Op != wire.OpText || m.Seq != uint64(i+1) || m.T != want {
			t.Fatalf("after the state the node got %s seq %d %q; want text seq %d %q", m.Op, m.Seq, m.T, i+1, want)
		}
	}
	c.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 2})
	if err := s.Flush(dialCtx(t), "r"); err != nil {
		t.Fatalf("Flush once both chunks are acknowledged = %v", err)
	}
}
