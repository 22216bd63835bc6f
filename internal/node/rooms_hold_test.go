package node_test

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// heldRoom starts a node that lets a session send 3 chunks at once (the
// bucket refills within a millisecond), joins room as alice there and
// sends 50 chunks at once. The burst passes, then chunks are refused:
// the first with rate, which holds the room, the rest (unless the bucket
// refilled) with rate or unavailable. It returns the node's address, the
// peer, the text sent and the seqs refused, the first first.
func heldRoom(t *testing.T, room string) (addr string, alice *peer, text string, refused []uint64) {
	t.Helper()
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.ChunkRate = 1000
		cfg.ChunkBurst = 3
	}})
	c.WaitRoomsReady(wait)
	addr = c.Nodes[0].Addr()
	alice = newPeer(t, addr, "alice")
	alice.join(room)
	text = strings.Repeat("abcdefghij", 5)
	for _, seq := range alice.typeText(room, text) {
		m := alice.await("the answer to a chunk", func(m wire.Message) bool {
			return m.Room == room && m.Seq == seq && (m.Op == wire.OpAck || m.Op == wire.OpError)
		})
		if m.Op != wire.OpError {
			continue
		}
		if len(refused) == 0 && m.Code != wire.CodeRate {
			t.Fatalf("seq %d refused with %+v, want rate", seq, m)
		}
		refused = append(refused, seq)
	}
	if len(refused) == 0 {
		t.Fatalf("none of %d chunks sent at once was refused with a burst of 3", len(text))
	}
	return addr, alice, text, refused
}

// A re-join keeps the hold of a refused chunk until the client resends
// it: a chunk sent after the re-join but ahead of that resend is refused,
// not stored before it (the resend would then be taken for a duplicate,
// and the text typed in between lost). The resend in order stores it all.
func TestRejoinKeepsTheHold(t *testing.T) {
	const room = "hold"
	addr, alice, text, refusals := heldRoom(t, room)
	refused := refusals[0]

	// The state may lag the acks (the feed applies what the stream
	// brings), but holds nothing from the refused seq on.
	st := alice.rejoin(room)
	if got := st.Seqs["alice"]; got >= refused {
		t.Fatalf("the state says seq %d stored, after the refused seq %d", got, refused)
	}
	// Ahead of the resend: refused, and the room still held.
	alice.send(wire.Message{Op: wire.OpText, Room: room, Seq: refused + 1, T: string(text[refused])})
	if m := alice.await("the answer to a chunk ahead of the resend", func(m wire.Message) bool {
		return m.Room == room && m.Seq == refused+1 && (m.Op == wire.OpAck || m.Op == wire.OpError)
	}); m.Op != wire.OpError || m.Code != wire.CodeUnavailable {
		t.Fatalf("seq %d after a re-join, before seq %d was resent: %+v, want unavailable", refused+1, refused, m)
	}
	// The resend, in order, one chunk at a time (the bucket refills).
	for seq := refused; seq <= uint64(len(text)); seq++ {
		for {
			alice.send(wire.Message{Op: wire.OpText, Room: room, Seq: seq, T: string(text[seq-1])})
			m := alice.await("the answer to a resend", func(m wire.Message) bool {
				return m.Room == room && m.Seq == seq && (m.Op == wire.OpAck || m.Op == wire.OpError)
			})
			if m.Op == wire.OpAck {
				break
			}
			if m.Code != wire.CodeRate {
				t.Fatalf("resending seq %d: %+v", seq, m)
			}
		}
	}
	bob := newPeer(t, addr, "bob")
	if got := bob.join(room).Live["alice"]; got != text {
		t.Errorf("the room holds %q from alice, want %q", got, text)
	}
}

// The resend of the held chunk passes the hold on to the next chunk
// refused, not past it: a chunk sent after that resend but ahead of the
// other refused ones is refused too, not stored before them (it was, and
// the room then took them for duplicates: text lost). The rest resent in
// order stores it all.
func TestHoldPassesInOrder(t *testing.T) {
	const room = "order"
	addr, alice, text, refused := heldRoom(t, room)
	if len(refused) < 2 {
		t.Fatalf("%d of %d chunks sent at once refused with a burst of 3, want 2 or more: %v", len(refused), len(text), refused)
	}
	first, second := refused[0], refused[1]
	resend := func(seq uint64) wire.Message {
		for {
			alice.send(wire.Message{Op: wire.OpText, Room: room, Seq: seq, T: string(text[seq-1])})
			m := alice.await("the answer to a resend", func(m wire.Message) bool {
				return m.Room == room && m.Seq == seq && (m.Op == wire.OpAck || m.Op == wire.OpError)
			})
			if m.Op == wire.OpError && m.Code == wire.CodeRate {
				continue // the bucket refills within a millisecond
			}
			return m
		}
	}
	if m := resend(first); m.Op != wire.OpAck {
		t.Fatalf("resending the held seq %d: %+v", first, m)
	}
	// The held one is stored; the next refused one is not resent yet.
	last := uint64(len(text))
	if m := resend(last); m.Op != wire.OpError || m.Code != wire.CodeUnavailable {
		t.Fatalf("seq %d, sent before the refused seq %d: %+v, want unavailable", last, second, m)
	}
	for seq := first + 1; seq <= last; seq++ {
		if m := resend(seq); m.Op != wire.OpAck {
			t.Fatalf("resending seq %d in order: %+v", seq, m)
		}
	}
	bob := newPeer(t, addr, "bob")
	if got := bob.join(room).Live["alice"]; got != text {
		t.Errorf("the room holds %q from alice, want %q", got, text)
	}
}
