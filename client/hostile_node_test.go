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

// Text typed before the node said its chunk limit (here: while the room's
// state had not come, on a node that said no limits, cut to the default
// 4096 bytes) is cut again to the limit of the node the session attaches
// to next, so that no chunk goes out that the node refuses for good (a
// limit refusal, after which the next chunk's ack would take it for
// stored). The pieces are numbered in order and carry the whole text.
func TestUnsentTextIsCutToTheNextNodesLimit(t *testing.T) {
	a := newFakeNode(t, "a")
	s, _ := aliceInRoom(t, a)
	text := strings.Repeat("é", 1500) // 3,000 bytes: one chunk under 4,096
	done := make(chan error, 1)
	go func() {
		_, err := s.SendTextWait(dialCtx(t), "r", text)
		done <- err
	}()
	awaitUnacked(t, s, "r", 1)
	a.mu.Lock()
	a.limits = &wire.Limits{MaxChunk: 1024, ChunkRate: 1000, ChunkBurst: 1000, ByteRate: 1 << 20, ByteBurst: 1 << 20}
	a.mu.Unlock()
	a.dropAll()
	rejoin := awaitGot(t, a, wire.OpJoin)
	rejoin.conn.send(roomState("r", 0))
	var got strings.Builder
	for want := uint64(1); got.Len() < len(text); want++ {
		m := awaitGot(t, a, wire.OpText)
		if len(m.m.T) > 1024 {
			t.Fatalf("a chunk of %d bytes to a node that takes 1024", len(m.m.T))
		}
		if m.m.Seq != want {
			t.Fatalf("chunk seq %d, want %d", m.m.Seq, want)
		}
		got.WriteString(m.m.T)
		m.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: m.m.Seq})
	}
	if got.String() != text {
		t.Errorf("the pieces carry %d bytes, not the text typed", got.Len())
	}
	if err := <-done; err != nil {
		t.Errorf("SendTextWait: %v", err)
	}
}
