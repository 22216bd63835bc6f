package client_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// An ack of a chunk sent before Leave comes after the room is joined
// again (the node stores the chunk before it handles the leave): it
// acknowledges nothing of the text typed since, which has not gone out.
func TestStaleAckAfterLeaveAndJoinAcksNothingNew(t *testing.T) {
	for _, d := range devices {
		t.Run(d.name, func(t *testing.T) {
			a := newFakeNode(t, "a")
			s, join := aliceInRoom(t, a, d.opt)
			join.conn.send(roomState("r", 56))
			if _, err := s.SendText("r", "old"); err != nil {
				t.Fatal(err)
			}
			if old := awaitGot(t, a, wire.OpText); old.m.Seq != 57 {
				t.Fatalf("the chunk went out as seq %d, want 57", old.m.Seq)
			}
			if err := s.Leave("r"); err != nil {
				t.Fatal(err)
			}
			if err := s.Join("r"); err != nil {
				t.Fatal(err)
			}
			awaitGot(t, a, wire.OpLeave)
			rejoin := awaitGot(t, a, wire.OpJoin)
			acked := make(chan uint64, 1)
			go func() {
				seq, err := s.SendTextWait(dialCtx(t), "r", "new")
				if err != nil {
					t.Errorf("SendTextWait: %v", err)
				}
				acked <- seq
			}()
			// SendTextWait has queued its chunk once the session says so.
			awaitUnacked(t, s, "r", 1)
			rejoin.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 57})
			rejoin.conn.send(roomState("r", 57))
			if _, err := s.SendText("r", "more"); err != nil {
				t.Fatal(err)
			}
			first := awaitGot(t, a, wire.OpText)
			if first.m.T != "new" || first.m.Seq != 58 {
				t.Fatalf("first chunk after the re-join: %q seq %d, want \"new\" seq 58 (the stale ack took it for stored)", first.m.T, first.m.Seq)
			}
			select {
			case seq := <-acked:
				t.Fatalf("SendTextWait returned seq %d before its chunk was acknowledged", seq)
			default:
			}
			first.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 58})
			if seq := <-acked; seq != 58 {
				t.Errorf("SendTextWait returned seq %d, want 58", seq)
			}
		})
	}
}

// awaitUnacked waits until room holds n unacknowledged chunks.
func awaitUnacked(t *testing.T, s *client.Session, room string, n int) {
	t.Helper()
	nodetest.Eventually(t, settle, func() error {
		if got := len(s.UnackedText(room)); got != n {
			return fmt.Errorf("room %s holds %d unacknowledged chunks, want %d", room, got, n)
		}
		return nil
	})
}

// A leave the node refuses for the rate of joins and leaves leaves the
// session in the room, so the client sends it again until the node
// confirms it with the user's presence leave.
func TestLeaveRefusedForRateIsSentAgain(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a)
	join.conn.send(roomState("r", 0))
	if err := s.Leave("r"); err != nil {
		t.Fatal(err)
	}
	lv := awaitGot(t, a, wire.OpLeave)
	lv.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeRate, Room: "r", Message: "joins and leaves too fast"})
	again := awaitGot(t, a, wire.OpLeave)
	if again.m.Room != "r" {
		t.Fatalf("leave sent again for room %q, want r", again.m.Room)
	}
	// Confirmed: a later refusal of the room (its rate, from another
	// leave) is nobody's to retry.
	again.conn.send(wire.Message{Op: wire.OpPresence, Room: "r", User: "alice", Event: "leave"})
	again.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeRate, Room: "r", Message: "joins and leaves too fast"})
	if err := s.Join("q"); err != nil {
		t.Fatal(err)
	}
	if m := nextGot(t, a); m.m.Op != wire.OpJoin || m.m.Room != "q" {
		t.Fatalf("after the confirmed leave the node got %s of %q, want the join of q", m.m.Op, m.m.Room)
	}
}

// A room name the service refuses fails Join and JoinWait at once: the
// node's refusal would name the room clipped, which no wait matches.
func TestJoinRefusesBadRoomNames(t *testing.T) {
	a := newFakeNode(t, "a")
	s, _ := aliceInRoom(t, a)
	for _, name := range []string{strings.Repeat("a", 65), "", "a b", "a/b"} {
		if err := s.Join(name); !errors.Is(err, client.ErrBadRoomName) {
			t.Errorf("Join(%q) = %v, want ErrBadRoomName", name, err)
		}
		if _, err := s.JoinWait(dialCtx(t), name); !errors.Is(err, client.ErrBadRoomName) {
			t.Errorf("JoinWait(%q) = %v, want ErrBadRoomName", name, err)
		}
	}
	if err := s.Join(strings.Repeat("a", 64)); err != nil {
		t.Errorf("Join of a 64-byte name: %v", err)
	}
	if _, err := s.SendText("nowhere", "x"); !errors.Is(err, client.ErrLeft) {
		t.Errorf("SendText to a room not joined = %v, want ErrLeft", err)
	}
}
