package client_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/roomfeed"
	"github.com/switchboard/switchboard/wire"
)

// A front's bridged session (roomfeed.Relay reads its events) in a room
// is taken out of it: the node says removed, and the join the session
// asks once more is refused, the room full. Holds says the session is out
// of the room, and the relay ends, saying why, so that the front ends the
// caller's call or peer. Before, the relay went on reading a session that
// would never get the room's text again, and the caller stayed
// connected, hearing nothing, until its next keystroke failed.
func TestRelayEndsWhenTheSessionIsOutOfTheRoom(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a)
	done := make(chan struct{})
	defer close(done)
	type result struct {
		reason string
		ended  bool
	}
	res := make(chan result, 1)
	go func() {
		reason, ended := roomfeed.Relay(s, "r", "alice", make(chan roomfeed.Text, 16), done)
		res <- result{reason, ended}
	}()
	join.conn.send(roomState("r", 0)) // the caller is in
	join.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeRemoved, Room: "r", Message: "room r is full (2 users): this session lost its place"})
	again := awaitGot(t, a, wire.OpJoin)
	if !s.Holds("r") {
		t.Error("the session does not hold room r while its join again is on its way")
	}
	again.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeLimit, Room: "r", Message: "room r is full: 2 users"})
	select {
	case r := <-res:
		if !r.ended || !strings.Contains(r.reason, "out of room r") {
			t.Errorf("the relay ended with %q (ended %v), want that the member is out of room r", r.reason, r.ended)
		}
	case <-time.After(settle):
		t.Fatalf("the relay still runs %v after the session was taken out of room r for good", settle)
	}
	if s.Holds("r") {
		t.Error("the session holds room r after the node took it out and refused its join again")
	}
}
