package client_test

import (
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/wire"
)

// After the node refuses a chunk for its rate, the room's text goes out
// in rounds rather than all at once after each re-join: the first round
// as many chunks as passed before the refusal, each round that passes
// whole a quarter more (at least one more), a refusal back to what passed
// in its round; text typed meanwhile waits its turn, in order, and once
// everything is acknowledged new text goes out at once again.
//
// To see what the client did not send, the test makes it send something
// else (a join of another room) once the node has a round's text: that
// join is the next message the node gets only if the round went out
// without more text.
func TestRateRefusedTextIsPaced(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()))
	c := join.conn
	c.send(roomState("r", 0))
	awaitEvent(t, s, "the room's state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	go func() {
		for range s.Events() { // acks and refusals are events too
		}
	}()

	send := func(n int) {
		t.Helper()
		for range n {
			if _, err := s.SendText("r", "x"); err != nil {
				t.Fatal(err)
			}
		}
	}
	probes := 0
	// expect checks the node gets text from..to, in order, then the
	// probe: nothing more went out.
	expect := func(what string, from, to uint64) {
		t.Helper()
		for want := from; want <= to; want++ {
			m := nextGot(t, a).m
			if m.Op != wire.OpText || m.Room != "r" || m.Seq != want {
				t.Fatalf("%s: the node got %s %s seq %d; want text seq %d (of %d-%d)", what, m.Op, m.Room, m.Seq, want, from, to)
			}
		}
		probes++
		probe := fmt.Sprintf("probe%d", probes)
		if err := s.Join(probe); err != nil {
			t.Fatal(err)
		}
		if m := nextGot(t, a).m; m.Op != wire.OpJoin || m.Room != probe {
			t.Fatalf("%s: after text %d-%d the node got %s %s seq %d; want nothing more before the probe", what, from, to, m.Op, m.Room, m.Seq)
		}
	}
	refuse := func(code string, from, to uint64) {
		for seq := from; seq <= to; seq++ {
			c.send(wire.Message{Op: wire.OpError, Code: code, Room: "r", Seq: seq, Message: "refused"})
		}
	}
	ack := func(seq uint64) { c.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: seq}) }
	rejoin := func(stored uint64) {
		t.Helper()
		if m := awaitGot(t, a, wire.OpJoin); m.m.Room != "r" {
			t.Fatalf("joined %q; want the room r again", m.m.Room)
		}
		c.send(roomState("r", stored))
	}

	send(20)
	expect("unpaced, before any refusal", 1, 20)
	// Five pass, the sixth is over the rate, the rest held.
	ack(5)
	refuse(wire.CodeRate, 6, 6)
	refuse(wire.CodeUnavailable, 7, 20)
	rejoin(5)
	expect("first round: what passed before the refusal", 6, 10)
	ack(10)
	expect("a round that passed whole makes the next larger", 11, 16)
	ack(13)
	refuse(wire.CodeRate, 14, 14)
	refuse(wire.CodeUnavailable, 15, 16)
	rejoin(13)
	send(2) // 21 and 22 wait behind the window
	expect("a refusal sets the window to what passed", 14, 16)
	ack(16)
	expect("the next round, one more", 17, 20)
	ack(20)
	expect("text typed while paced, in its turn", 21, 22)
	ack(22)
	send(1)
	expect("all acknowledged: no longer paced", 23, 23)
}
