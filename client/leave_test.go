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
// confirms it with the user's presence leave; then it follows nothing.
func TestLeaveRefusedForRateIsSentAgain(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a)
	join.conn.send(roomState("r", 0))
	if err := s.Leave("r"); err != nil {
		t.Fatal(err)
	}
	lv := awaitGot(t, a, wire.OpLeave)
	lv.conn.send(rateRefusal("r"))
	again := awaitGot(t, a, wire.OpLeave)
	if again.m.Room != "r" {
		t.Fatalf("leave sent again for room %q, want r", again.m.Room)
	}
	again.conn.send(wire.Message{Op: wire.OpPresence, Room: "r", User: "alice", Event: "leave"})
	awaitEvent(t, s, "the confirmation", func(e client.Event) bool { return e.Message.Op == wire.OpPresence }, nil)
	if n := s.LeavesFollowed(); n != 0 {
		t.Errorf("%d rooms' leaves followed after the confirmation, want 0", n)
	}
}

// Leave, Join and Leave again before the node answers: the answers to
// the first leave and to the join do not make the client forget the
// second leave, which the node refuses and the client sends again.
func TestSecondLeaveRefusedIsSentAgain(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a)
	join.conn.send(roomState("r", 0))
	for _, op := range []func(string) error{s.Leave, s.Join, s.Leave} {
		if err := op("r"); err != nil {
			t.Fatal(err)
		}
	}
	first := awaitGot(t, a, wire.OpLeave)
	awaitGot(t, a, wire.OpJoin)
	awaitGot(t, a, wire.OpLeave)
	first.conn.send(wire.Message{Op: wire.OpPresence, Room: "r", User: "alice", Event: "leave"})
	first.conn.send(roomState("r", 0))
	first.conn.send(rateRefusal("r"))
	if again := awaitGot(t, a, wire.OpLeave); again.m.Room != "r" {
		t.Fatalf("leave sent again for room %q, want r", again.m.Room)
	}
}

// A leave of a room not joined is sent, and nothing of it is kept; one
// of a name the service refuses is not sent (TestJoinRefusesBadRoomNames).
func TestLeaveOfRoomNotJoinedKeepsNothing(t *testing.T) {
	a := newFakeNode(t, "a")
	s, _ := aliceInRoom(t, a)
	if err := s.Leave("never-joined"); err != nil {
		t.Fatal(err)
	}
	if got := awaitGot(t, a, wire.OpLeave); got.m.Room != "never-joined" {
		t.Fatalf("leave sent for room %q, want never-joined", got.m.Room)
	}
	if n := s.LeavesFollowed(); n != 0 {
		t.Errorf("%d rooms' leaves followed, want 0", n)
	}
}

// rateRefusal is the node's answer to a join or leave past the rate.
func rateRefusal(room string) wire.Message {
	return wire.Message{Op: wire.OpError, Code: wire.CodeRate, Room: room, Message: "joins and leaves too fast"}
}

// A room name the service refuses fails Join and JoinWait at once: the
// node's refusal would name the room clipped, which no wait matches.
// Leave too: it sent any name, and one longer than a protocol line made
// the node end the connection (line_too_long), a drop and a reattach.
func TestJoinRefusesBadRoomNames(t *testing.T) {
	a := newFakeNode(t, "a")
	s, _ := aliceInRoom(t, a)
	for _, name := range []string{strings.Repeat("a", 65), "", "a b", "a/b", strings.Repeat("x", wire.MaxLine+1)} {
		if err := s.Leave(name); !errors.Is(err, client.ErrBadRoomName) {
			t.Errorf("Leave(%q) = %v, want ErrBadRoomName", wire.Clip(name, 70), err)
		}
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

// Join, Leave and Join again before the node answers: the refusal of the
// first join (a limit, say) is about the membership left, and does not end
// the wait of the second, which the room's state answers.
func TestAnswerToJoinBeforeLeaveIsNotTheNewRooms(t *testing.T) {
	a := newFakeNode(t, "a")
	s, first := aliceInRoom(t, a)
	if err := s.Leave("r"); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := s.JoinWait(dialCtx(t), "r")
		got <- err
	}()
	awaitGot(t, a, wire.OpLeave)
	awaitGot(t, a, wire.OpJoin)
	first.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeLimit, Room: "r", Message: "too many rooms"})
	first.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeBadRequest, Room: "r", Message: "not in room r"})
	first.conn.send(roomState("r", 0))
	if err := <-got; err != nil {
		t.Errorf("JoinWait after Leave: %v, want the room's state", err)
	}
}

// A first join the node refuses for good (the room is full, the token
// does not allow it) leaves the session out of the room, as
// docs/protocol.md says: JoinWait returns the node's error, SendText
// says the room is not joined instead of queueing text no node will take
// (and Flush waiting for ever), and a later Join asks again. Before, the
// room stayed half-joined: text queued, and every failover joined again.
func TestRefusedFirstJoinLeavesTheSessionOutOfTheRoom(t *testing.T) {
	a := newFakeNode(t, "a")
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	joined := make(chan error, 1)
	go func() {
		_, err := s.JoinWait(dialCtx(t), "r")
		joined <- err
	}()
	join := awaitGot(t, a, wire.OpJoin)
	join.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeLimit, Room: "r", Message: "room r is full: 2 users"})
	var se *client.ServerError
	if err := <-joined; !errors.As(err, &se) || se.Code != wire.CodeLimit {
		t.Fatalf("JoinWait = %v, want the node's limit error", err)
	}
	if _, err := s.SendText("r", "hello"); !errors.Is(err, client.ErrLeft) {
		t.Errorf("SendText after a refused join = %v, want ErrLeft (not joined)", err)
	}
	// An application that tidies up with a Leave, then joins again at
	// once: the node's answer to that leave (bad_request: not in the
	// room) is not taken for the new join's.
	if err := s.Leave("r"); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := s.JoinWait(dialCtx(t), "r")
		joined <- err
	}()
	leave := awaitGot(t, a, wire.OpLeave)
	again := awaitGot(t, a, wire.OpJoin)
	leave.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeBadRequest, Room: "r", Message: "not in room r"})
	again.conn.send(roomState("r", 0))
	if err := <-joined; err != nil {
		t.Errorf("joining again: %v", err)
	}
	if _, err := s.SendText("r", "hello"); err != nil {
		t.Errorf("SendText once joined: %v", err)
	}
}

// A join refused for good after a failover (the room filled up while the
// session was away, a refreshed token no longer names it) leaves the
// session out of the room as a first join's refusal does: the text it
// held ends with the refusal, and SendText says the room is not joined.
// Before, the room stayed with its text queued for ever and no join
// planned.
func TestRejoinRefusedAfterFailoverLeavesTheRoom(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()))
	join.conn.send(roomState("r", 0))
	awaitEvent(t, s, "the room's state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	a.dropAll()
	awaitEvent(t, s, "the reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	rejoin := awaitGot(t, a, wire.OpJoin)
	sent := make(chan error, 1)
	go func() {
		_, err := s.SendTextWait(dialCtx(t), "r", "held")
		sent <- err
	}()
	rejoin.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeLimit, Room: "r", Message: "room r is full: 2 users"})
	var se *client.ServerError
	if err := <-sent; !errors.As(err, &se) && !errors.Is(err, client.ErrLeft) {
		t.Errorf("SendTextWait across the refused re-join = %v, want the node's refusal or ErrLeft", err)
	}
	if _, err := s.SendText("r", "more"); !errors.Is(err, client.ErrLeft) {
		t.Errorf("SendText after the re-join was refused = %v, want ErrLeft (not joined)", err)
	}
}

// A node that took the session out of a room, unasked (the room filled
// while the node was cut off, and the node's join again for the session
// was refused), says so with a removed error about the room. The session
// asks once more, as a first join: limit leaves it out of the room, as
// after a refused first join, whatever other join was on its way; a
// state (a place freed meanwhile) puts it back. A limit refusal that
// answers a re-join on the connection the room is joined on (its state
// could not be sent) keeps the room. Before, the session stayed in the
// room for good, its text queued.
func TestRemovedLeavesTheRoom(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a)
	join.conn.send(roomState("r", 0))
	awaitEvent(t, s, "the room's state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	refusal := func(code, text string) wire.Message {
		return wire.Message{Op: wire.OpError, Code: code, Room: "r", Message: text}
	}
	refused := func(what, code string) {
		t.Helper()
		awaitEvent(t, s, what, func(e client.Event) bool { return e.Message.Op == wire.OpError && e.Message.Code == code }, nil)
	}

	if err := s.Join("r"); err != nil { // a re-join, refused
		t.Fatal(err)
	}
	awaitGot(t, a, wire.OpJoin).conn.send(refusal(wire.CodeLimit, "joining room r: its state does not fit a line"))
	refused("the re-join's refusal", wire.CodeLimit)
	if _, err := s.SendText("r", "still in"); err != nil {
		t.Fatalf("SendText after a re-join's refusal = %v; the node keeps the session in the room", err)
	}

	if err := s.Join("r"); err != nil { // a re-join, whose answer waits
		t.Fatal(err)
	}
	waiting := awaitGot(t, a, wire.OpJoin)
	join.conn.send(refusal(wire.CodeRemoved, "room r is full (2 users): this session lost its place"))
	refused("the removal", wire.CodeRemoved)
	again := awaitGot(t, a, wire.OpJoin) // the session asks once more
	waiting.conn.send(refusal(wire.CodeLimit, "room r is full: 2 users"))
	again.conn.send(refusal(wire.CodeLimit, "room r is full: 2 users"))
	refused("the first refusal", wire.CodeLimit)
	refused("the second refusal", wire.CodeLimit)
	if _, err := s.SendText("r", "out"); !errors.Is(err, client.ErrLeft) {
		t.Errorf("SendText after the node took the session out and the room stayed full = %v, want ErrLeft (not joined)", err)
	}

	// In again; removed again, and this time a place freed.
	if err := s.Join("r"); err != nil {
		t.Fatal(err)
	}
	awaitGot(t, a, wire.OpJoin).conn.send(roomState("r", 0))
	awaitEvent(t, s, "the room's state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	join.conn.send(refusal(wire.CodeRemoved, "room r is full (2 users): this session lost its place"))
	refused("the removal", wire.CodeRemoved)
	awaitGot(t, a, wire.OpJoin).conn.send(roomState("r", 0))
	awaitEvent(t, s, "the room's state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	if _, err := s.SendText("r", "back"); err != nil {
		t.Errorf("SendText once the join after the removal got the room's state = %v", err)
	}
}
