package client_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// Chunks the node refuses for a while (here by its rate limit) are not
// lost: the client holds its text, asks for the room again, and resends
// from what the room's state shows stored, in order. The other member
// receives every chunk once, in seq order, and the typist's text whole.
// The resends are paced (pace.go): after the first re-join few are
// refused again. The typist's client here ignores the limits the node
// says (as with nodes older than them), or the node would refuse nothing.
func TestRefusedTextIsResentInOrder(t *testing.T) {
	typed, refused, resentRefused := typeFasterThanTheRate(t, client.WithoutNodeLimits())
	if refused == 0 {
		t.Fatal("the node refused nothing; the test needs a rate limit below the typing")
	}
	// Resending everything after each re-join would have about
	// len(typed)²/10 refused here.
	if resentRefused > len(typed)/2 {
		t.Errorf("%d chunks refused after the first re-join; want at most %d: the resends are not paced", resentRefused, len(typed)/2)
	}
}

// A client whose node says its limits with attached keeps its text within
// them: typed faster than the node's rate, the text waits in the session
// instead of being refused (ignoring the limits, the node refused 41 of
// these 43 chunks, 38 in the first burst). The other member receives
// every chunk once, in order.
func TestTextKeepsWithinTheNodesLimits(t *testing.T) {
	typed, refused, _ := typeFasterThanTheRate(t)
	// Jitter between the client's sends and the node's reads may still
	// cost a refusal now and then (the budget keeps a margin for it), and
	// a node stalled under a loaded race run reads a few sends at once:
	// at most half, far from the 41 of a client ignoring the limits.
	if refused > len(typed)/2 {
		t.Errorf("%d of %d chunks refused; want at most %d: the client does not keep to the node's limits", refused, len(typed), len(typed)/2)
	}
}

// typeFasterThanTheRate has alice type a line, a chunk a character, all at
// once, to a node that takes 20 chunks a second in bursts of 5, and
// checks that bob receives it whole, each chunk once, in order. It returns
// the line and the chunks refused: in all, and after the room's first
// state that followed a refusal (the first burst's refusals no client
// that does not know the limits can avoid). opts are alice's.
func typeFasterThanTheRate(t *testing.T, opts ...client.Option) (typed string, refused, resentRefused int) {
	t.Helper()
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.ChunkRate = 20
		cfg.ChunkBurst = 5
	}})
	c.WaitRoomsReady(settle)
	dial := func(user string, opts ...client.Option) *client.Session {
		s, err := client.Dial(dialCtx(t), c.Nodes[0].Addr(), append([]client.Option{client.WithUser(user), client.WithRetry(fastRetry())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Join("r"); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// next returns s's next room message, failing after settle.
	next := func(s *client.Session) wire.Message {
		t.Helper()
		deadline := time.After(settle)
		for {
			select {
			case e, ok := <-s.Events():
				if !ok {
					t.Fatal("session closed")
				}
				if e.Kind == client.Received && e.Message.Room == "r" {
					return e.Message
				}
			case <-deadline:
				t.Fatalf("no room message within %v", settle)
			}
		}
	}
	awaitState := func(s *client.Session) {
		t.Helper()
		for m := next(s); m.Op != wire.OpRoom; m = next(s) {
		}
	}
	bob := dial("bob")
	awaitState(bob)
	alice := dial("alice", opts...)
	awaitState(alice)

	typed = "the quick brown fox jumps over the lazy dog"
	for _, ch := range typed {
		if _, err := alice.SendText("r", string(ch)); err != nil {
			t.Fatal(err)
		}
	}
	// Drain alice's events while the client sorts things out with the
	// node, counting the chunks refused, and those after the first
	// re-join.
	rejoined := false
	for alice.Unacked("r") > 0 {
		switch m := next(alice); {
		case m.Op == wire.OpRoom && refused > 0:
			rejoined = true
		case m.Op == wire.OpError && (m.Code == wire.CodeRate || m.Code == wire.CodeUnavailable):
			refused++
			if rejoined {
				resentRefused++
			}
		}
	}
	t.Logf("%d chunks typed, %d refused in all, %d after the first re-join", len(typed), refused, resentRefused)
	var got strings.Builder
	var last uint64
	for got.Len() < len(typed) {
		m := next(bob)
		if m.Op == wire.OpRoom && m.State != nil {
			// A state replaces bob's view (after a reattach, or when
			// text shown live was never stored): go on from it.
			last = m.State.Seqs["alice"]
			got.Reset()
			got.WriteString(m.State.Live["alice"])
			continue
		}
		if m.Op != wire.OpText || m.From != "alice" {
			continue
		}
		if m.Seq != last+1 {
			t.Fatalf("bob got alice's seq %d after %d; want each once, in order", m.Seq, last)
		}
		last = m.Seq
		got.WriteString(m.T)
	}
	if got.String() != typed {
		t.Errorf("bob got %q, want %q", got.String(), typed)
	}
	return typed, refused, resentRefused
}

// A room refused on one connection plans a join again on that
// connection. When the session reattaches before that moment and the new
// node refuses the room too, the session must ask for it again on the
// new connection: the plan of the old one must not block it, or the room
// would stay unjoined, its text unsent, until the next drop.
func TestRefusedRoomAskedAgainAfterReattach(t *testing.T) {
	a := newFakeNode(t, "a")
	retry := fastRetry()
	retry.Cooldown = time.Millisecond
	s, join := aliceInRoom(t, a, client.WithRetry(retry))
	refuse := func(m fakeMsg) {
		m.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeRate, Room: "r", Message: "slow down"})
	}
	refuse(join)
	awaitEvent(t, s, "the refusal", func(e client.Event) bool { return e.Message.Op == wire.OpError }, nil)
	a.dropAll()
	awaitEvent(t, s, "the reattachment", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	refuse(awaitGot(t, a, wire.OpJoin))
	awaitGot(t, a, wire.OpJoin) // asked again, on the new connection
}

// Two failovers in a row, the second before anything resent after the
// first was acknowledged: each time the session resends the chunks not
// acknowledged (without a device, exactly those the new state does not
// hold), with their seqs, in order, and the text typed meanwhile after
// them; nothing skipped, and nothing under two seqs.
func TestResendAcrossTwoFailoversInARow(t *testing.T) {
	for _, d := range devices {
		t.Run(d.name, func(t *testing.T) { testResendAcrossTwoFailoversInARow(t, d.opt, d.byDevice) })
	}
}

func testResendAcrossTwoFailoversInARow(t *testing.T, device client.Option, byDevice bool) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()), device)
	join.conn.send(roomState("r", 0))
	awaitEvent(t, s, "the room's state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	send := func(text string) {
		t.Helper()
		if _, err := s.SendText("r", text); err != nil {
			t.Fatal(err)
		}
	}
	texts := func(n int) []string {
		t.Helper()
		var got []string
		for range n {
			m := awaitGot(t, a, wire.OpText)
			got = append(got, fmt.Sprintf("%d %s", m.m.Seq, m.m.T))
		}
		return got
	}
	for _, ch := range []string{"a", "b", "c"} {
		send(ch)
	}
	if diff := cmp.Diff(texts(3), []string{"1 a", "2 b", "3 c"}); diff != "" {
		t.Fatalf("first node got (-got +want):\n%s", diff)
	}
	join.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 1})
	awaitEvent(t, s, "ack 1", func(e client.Event) bool { return e.Message.Op == wire.OpAck }, nil)

	// First failover: 1 is stored; "d" is typed before the room's state.
	a.dropAll()
	awaitEvent(t, s, "first reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	rejoin := awaitGot(t, a, wire.OpJoin)
	send("d")
	rejoin.conn.send(roomState("r", 1))
	if diff := cmp.Diff(texts(3), []string{"2 b", "3 c", "4 d"}); diff != "" {
		t.Fatalf("after the first failover the node got (-got +want):\n%s", diff)
	}

	// Second failover before any ack: 2 and 3 were stored, their acks
	// lost; "e" is typed before the room's state.
	a.dropAll()
	awaitEvent(t, s, "second reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	rejoin = awaitGot(t, a, wire.OpJoin)
	send("e")
	rejoin.conn.send(roomState("r", 3))
	want := []string{"4 d", "5 e"}
	if byDevice {
		want = []string{"2 b", "3 c", "4 d", "5 e"} // the state is no ack
	}
	if diff := cmp.Diff(texts(len(want)), want); diff != "" {
		t.Fatalf("after the second failover the node got (-got +want):\n%s", diff)
	}
	rejoin.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 5})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := s.Flush(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	// Nothing was left to go out twice: the next chunk is the next text.
	send("f")
	if diff := cmp.Diff(texts(1), []string{"6 f"}); diff != "" {
		t.Fatalf("after the acks the node got (-got +want):\n%s", diff)
	}
}

// Text longer than the chunk limit the node says with attached (here
// 1,000 bytes) goes as several chunks cut between characters: the node
// refuses none of them with limit, SendTextWait returns once all are
// stored, and the other member receives the text whole, in order.
func TestLongTextIsCutAtTheNodesChunkLimit(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.MaxChunk = 1000 }})
	c.WaitRoomsReady(settle)
	bob := inRoomR(t, c.Nodes[0].Addr(), "bob")
	alice := inRoomR(t, c.Nodes[0].Addr(), "alice")
	text := strings.Repeat("a", 999) + strings.Repeat("é€😀", 400) // 4,599 bytes, characters across every cut
	seq, err := alice.SendTextWait(dialCtx(t), "r", text)
	if err != nil {
		t.Fatalf("SendTextWait of %d bytes: %v", len(text), err)
	}
	if seq < 5 {
		t.Errorf("the text went as %d chunk(s); want at least 5 of at most 1,000 bytes", seq)
	}
	if got := textFrom(t, bob, "alice", len(text), 1000); got != text {
		t.Errorf("bob got %d bytes, not the text typed", len(got))
	}
}

// Text that is not UTF-8 (Latin-1 from a bridge, say) travels with each
// bad byte as U+FFFD, three bytes: cut by its bytes as given, 3,000
// bytes of it made a chunk of 4,200 at the node, refused for good
// (limit), and the next chunk's ack then passed it for stored. The client
// replaces what is not UTF-8 before it cuts: every chunk fits, the other
// member receives the text (with U+FFFD), and SendTextWait returns once
// all of it is stored.
func TestTextNotUTF8IsCutAsTheNodeReadsIt(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	bob := inRoomR(t, c.Nodes[0].Addr(), "bob")
	alice := inRoomR(t, c.Nodes[0].Addr(), "alice")
	go func() {
		for range alice.Events() {
		}
	}()
	latin1 := strings.Repeat("caf\xe9 ", 600) // 3,000 bytes, 600 of them not UTF-8
	want := strings.ToValidUTF8(latin1, "\uFFFD")
	if _, err := alice.SendTextWait(dialCtx(t), "r", latin1); err != nil {
		t.Fatalf("SendTextWait of %d bytes of Latin-1: %v", len(latin1), err)
	}
	if err := alice.Flush(dialCtx(t), "r"); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	if got := textFrom(t, bob, "alice", len(want), 0); got != want {
		t.Errorf("bob got %d bytes, not the text with U+FFFD for each run of bytes not UTF-8", len(got))
	}
}

// inRoomR dials addr as user and joins room r.
func inRoomR(t *testing.T, addr, user string) *client.Session {
	t.Helper()
	s, err := client.Dial(dialCtx(t), addr, client.WithUser(user), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.JoinWait(dialCtx(t), "r"); err != nil {
		t.Fatal(err)
	}
	return s
}

// textFrom reads s's events until from's text has reached n bytes, and
// returns it; a chunk longer than maxChunk (0: no bound) is an error, an
// error message from the node fails the test.
func textFrom(t *testing.T, s *client.Session, from string, n, maxChunk int) string {
	t.Helper()
	var got strings.Builder
	deadline := time.After(settle)
	for got.Len() < n {
		select {
		case e := <-s.Events():
			m := e.Message
			if m.Op == wire.OpError {
				t.Fatalf("got %+v", m)
			}
			if m.Op == wire.OpText && m.From == from {
				if maxChunk > 0 && len(m.T) > maxChunk {
					t.Errorf("a chunk of %d bytes; want at most %d", len(m.T), maxChunk)
				}
				got.WriteString(m.T)
			}
		case <-deadline:
			t.Fatalf("got %d of %d bytes of %s's text within %v", got.Len(), n, from, settle)
		}
	}
	return got.String()
}
