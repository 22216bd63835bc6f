package client_test

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/wire"
)

// A node that says it takes chunks longer than any node may (a hostile or
// broken one) does not make the client send a line too long to read:
// text is cut at wire.MaxChunkLimit.
func TestChunkLimitIsClamped(t *testing.T) {
	a := newFakeNode(t, "a")
	a.mu.Lock()
	a.limits = &wire.Limits{MaxChunk: 1 << 20, ChunkRate: 1000, ChunkBurst: 1000, ByteRate: 1 << 20, ByteBurst: 1 << 20}
	a.mu.Unlock()
	s, join := aliceInRoom(t, a)
	join.conn.send(roomState("r", 0))
	text := strings.Repeat("\x01", 20000) // six bytes each, escaped
	if _, err := s.SendText("r", text); err != nil {
		t.Fatal(err)
	}
	var got int
	for got < len(text) {
		m := awaitGot(t, a, wire.OpText)
		if len(m.m.T) > wire.MaxChunkLimit {
			t.Fatalf("a chunk of %d bytes; want at most %d", len(m.m.T), wire.MaxChunkLimit)
		}
		got += len(m.m.T)
	}
}

// A node that says a seq beyond any chunk's (2^64-1) does not make the
// client's numbering wrap to 0, which the room would refuse for ever,
// nor run backwards.
func TestHostileStateSeqDoesNotWrap(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a)
	join.conn.send(roomState("r", 1<<64-1))
	for range 2 {
		if _, err := s.SendText("r", "x"); err != nil {
			t.Fatal(err)
		}
	}
	first, second := awaitGot(t, a, wire.OpText), awaitGot(t, a, wire.OpText)
	if first.m.Seq == 0 || second.m.Seq <= first.m.Seq {
		t.Errorf("chunks went out as seqs %d, %d; want them above 0 and ascending", first.m.Seq, second.m.Seq)
	}
}
