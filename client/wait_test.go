package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// result is what a waiting call returned, handed over from its goroutine.
type result[T any] struct {
	v   T
	err error
}

// async runs f in a goroutine and returns a channel with its result.
func async[T any](f func() (T, error)) <-chan result[T] {
	ch := make(chan result[T], 1)
	go func() {
		v, err := f()
		ch <- result[T]{v, err}
	}()
	return ch
}

// awaitResult returns what ch delivers, failing after settle.
func awaitResult[T any](t *testing.T, what string, ch <-chan result[T]) result[T] {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(settle):
		t.Fatalf("%s did not return within %v", what, settle)
	}
	return result[T]{}
}

// JoinWait returns the room's state or the node's refusal; SendTextWait
// returns the final seq once acknowledged, or the node's refusal, or
// ErrLeft when the room is left, or ctx's error.
func TestJoinWaitAndSendTextWait(t *testing.T) {
	a := newFakeNode(t, "a")
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	go func() { // nobody else reads the events here
		for range s.Events() {
		}
	}()
	ctx := dialCtx(t)

	joined := async(func() (*wire.RoomState, error) { return s.JoinWait(ctx, "r") })
	join := awaitGot(t, a, wire.OpJoin) // the session is in the room from here
	// A chunk typed before the state is renumbered: SendTextWait returns
	// the seq it was stored under.
	typed := async(func() (uint64, error) { return s.SendTextWait(ctx, "r", "h") })
	nodetest.Eventually(t, settle, func() error {
		if s.Unacked("r") != 1 {
			return errors.New("the chunk is not queued yet")
		}
		return nil
	})
	join.conn.send(roomState("r", 3))
	if r := awaitResult(t, "JoinWait", joined); r.err != nil || r.v.Seqs["alice"] != 3 {
		t.Fatalf("JoinWait = %+v, %v; want the state at 3", r.v, r.err)
	}
	if m := awaitGot(t, a, wire.OpText); m.m.Seq != 4 {
		t.Fatalf("node got seq %d, want 4", m.m.Seq)
	}
	join.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 4})
	if r := awaitResult(t, "SendTextWait", typed); r.err != nil || r.v != 4 {
		t.Fatalf("SendTextWait = %d, %v; want 4", r.v, r.err)
	}

	// A refusal that resending does not mend ends the wait.
	tooLong := async(func() (uint64, error) { return s.SendTextWait(ctx, "r", "long") })
	m := awaitGot(t, a, wire.OpText)
	join.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeLimit, Room: "r", Seq: m.m.Seq, Message: "chunk too long"})
	var se *client.ServerError
	if r := awaitResult(t, "SendTextWait of a refused chunk", tooLong); !errors.As(r.err, &se) || se.Code != wire.CodeLimit {
		t.Errorf("SendTextWait of a refused chunk: %v, want the limit error", r.err)
	}
	denied := async(func() (*wire.RoomState, error) { return s.JoinWait(ctx, "secret") })
	awaitGot(t, a, wire.OpJoin).conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeUnauthorized, Room: "secret", Message: "not for you"})
	if r := awaitResult(t, "JoinWait of a refused room", denied); !errors.Is(r.err, client.ErrUnauthorized) {
		t.Errorf("JoinWait of a refused room: %v, want ErrUnauthorized", r.err)
	}

	// Leaving ends the wait; so does the caller's context.
	left := async(func() (uint64, error) { return s.SendTextWait(ctx, "r", "x") })
	awaitGot(t, a, wire.OpText)
	if err := s.Leave("r"); err != nil {
		t.Fatal(err)
	}
	if r := awaitResult(t, "SendTextWait in a room left", left); !errors.Is(r.err, client.ErrLeft) {
		t.Errorf("SendTextWait in a room left: %v, want ErrLeft", r.err)
	}
	cctx, cancel := context.WithCancel(ctx)
	waiting := async(func() (*wire.RoomState, error) { return s.JoinWait(cctx, "q") })
	qjoin := awaitGot(t, a, wire.OpJoin)
	cancel()
	if r := awaitResult(t, "JoinWait cancelled", waiting); !errors.Is(r.err, context.Canceled) {
		t.Errorf("JoinWait cancelled: %v, want context.Canceled", r.err)
	}
	qjoin.conn.send(roomState("q", 0)) // the session stayed joined

	// Closing the session ends every wait with ErrClosed.
	closing := async(func() (uint64, error) { return s.SendTextWait(ctx, "q", "y") })
	awaitGot(t, a, wire.OpText)
	s.Close()
	if r := awaitResult(t, "SendTextWait at Close", closing); !errors.Is(r.err, client.ErrClosed) {
		t.Errorf("SendTextWait at Close: %v, want ErrClosed", r.err)
	}
}

// A Dial that cannot attach before its context ends says so with
// ErrGaveUp, with no need for the failover package's sentinels.
func TestDialGiveUpMatchesErrGaveUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := client.Dial(ctx, deadTCP(t), client.WithUser("alice"), client.WithRetry(fastRetry()))
	if !errors.Is(err, client.ErrGaveUp) || errors.Is(err, client.ErrClosed) {
		t.Errorf("Dial to nothing: %v; want an error matching ErrGaveUp, not ErrClosed", err)
	}
}

// Flush returns at once when nothing waits for an ack, waits while any
// chunk sent before it does (the first ack of two is not enough), returns
// nil once the last of those is acknowledged (not waiting for text sent
// after it), and fails with ErrLeft when the room is left.
func TestFlush(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()))
	join.conn.send(roomState("r", 0))
	awaitEvent(t, s, "the state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	ctx := dialCtx(t)
	if err := s.Flush(ctx, "r"); err != nil {
		t.Fatalf("Flush with nothing unacknowledged = %v", err)
	}
	for _, ch := range []string{"a", "b"} {
		if _, err := s.SendText("r", ch); err != nil {
			t.Fatal(err)
		}
	}
	flushed := async(func() (struct{}, error) { return struct{}{}, s.Flush(ctx, "r") })
	awaitGot(t, a, wire.OpText)
	awaitGot(t, a, wire.OpText)
	join.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 1})
	awaitEvent(t, s, "ack 1", func(e client.Event) bool { return e.Message.Op == wire.OpAck }, nil)
	select {
	case r := <-flushed:
		t.Fatalf("Flush returned %v with chunk 2 unacknowledged", r.err)
	default:
	}
	join.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 2})
	if r := awaitResult(t, "Flush", flushed); r.err != nil {
		t.Fatalf("Flush after the last ack = %v", r.err)
	}

	// Text sent after Flush was called is not waited for: a bridge that
	// keeps relaying can still checkpoint.
	if _, err := s.SendText("r", "c"); err != nil {
		t.Fatal(err)
	}
	flushed = async(func() (struct{}, error) { return struct{}{}, s.Flush(ctx, "r") })
	nodetest.Eventually(t, settle, func() error {
		if n := s.FlushesWaiting("r"); n != 1 {
			return fmt.Errorf("%d flushes waiting, want 1", n)
		}
		return nil
	})
	if _, err := s.SendText("r", "d"); err != nil {
		t.Fatal(err)
	}
	awaitGot(t, a, wire.OpText)
	awaitGot(t, a, wire.OpText)
	join.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 3})
	if r := awaitResult(t, "Flush", flushed); r.err != nil {
		t.Fatalf("Flush after the ack of what came before it = %v", r.err)
	}
	join.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 4})

	if _, err := s.SendText("r", "e"); err != nil {
		t.Fatal(err)
	}
	flushed = async(func() (struct{}, error) { return struct{}{}, s.Flush(ctx, "r") })
	awaitGot(t, a, wire.OpText)
	// Leave ends a Flush waiting, or comes first: either way ErrLeft.
	if err := s.Leave("r"); err != nil {
		t.Fatal(err)
	}
	if r := awaitResult(t, "Flush", flushed); !errors.Is(r.err, client.ErrLeft) {
		t.Fatalf("Flush of a room left = %v, want ErrLeft", r.err)
	}
}

// A chunk the node refuses for good (here too long) is never stored, and
// the ack of a later chunk, which takes it off the queue, must not pass
// for its: the SendTextWait of a text cut into several chunks fails when
// any of them is refused, not only the last, and so does a Flush waiting
// for it, or, when none waited, the next Flush. Before, the waits ended
// with success once the next chunk was acknowledged.
func TestRefusedChunkFailsItsWaits(t *testing.T) {
	a := newFakeNode(t, "a")
	a.limits = &wire.Limits{MaxChunk: 4, ChunkRate: 1000, ChunkBurst: 1000, ByteRate: 1e6, ByteBurst: 1 << 20}
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()))
	join.conn.send(roomState("r", 0))
	awaitEvent(t, s, "the state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	go func() { // nobody else reads the events from here
		for range s.Events() {
		}
	}()
	ctx := dialCtx(t)
	refuse := func(seq uint64) {
		join.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeLimit, Room: "r", Seq: seq, Message: "chunk too long"})
	}
	ack := func(seq uint64) { join.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: seq}) }
	isLimit := func(err error) bool {
		var se *client.ServerError
		return errors.As(err, &se) && se.Code == wire.CodeLimit
	}

	// "abcdefghij" goes as 1 "abcd", 2 "efgh", 3 "ij"; 2 is refused.
	typed := async(func() (uint64, error) { return s.SendTextWait(ctx, "r", "abcdefghij") })
	for want := uint64(1); want <= 3; want++ {
		if m := awaitGot(t, a, wire.OpText); m.m.Seq != want {
			t.Fatalf("node got seq %d, want %d", m.m.Seq, want)
		}
	}
	flushed := async(func() (struct{}, error) { return struct{}{}, s.Flush(ctx, "r") })
	nodetest.Eventually(t, settle, func() error {
		if n := s.FlushesWaiting("r"); n != 1 {
			return fmt.Errorf("%d flushes waiting, want 1", n)
		}
		return nil
	})
	refuse(2)
	ack(3)
	if r := awaitResult(t, "SendTextWait of a text with a chunk refused", typed); !isLimit(r.err) {
		t.Errorf("SendTextWait of a text whose second chunk was refused = %d, %v; want the limit error", r.v, r.err)
	}
	if r := awaitResult(t, "Flush", flushed); !isLimit(r.err) {
		t.Errorf("Flush waiting for a refused chunk = %v, want the limit error", r.err)
	}
	if err := s.Flush(ctx, "r"); err != nil {
		t.Errorf("Flush once the refusal was reported and the rest acknowledged = %v", err)
	}

	// A refusal no Flush waited for is reported by the next.
	for _, ch := range []string{"x", "y"} {
		if _, err := s.SendText("r", ch); err != nil {
			t.Fatal(err)
		}
	}
	awaitGot(t, a, wire.OpText)
	awaitGot(t, a, wire.OpText)
	refuse(4)
	ack(5)
	nodetest.Eventually(t, settle, func() error {
		if n := s.Unacked("r"); n != 0 {
			return fmt.Errorf("%d chunks unacknowledged", n)
		}
		return nil
	})
	if err := s.Flush(ctx, "r"); !isLimit(err) {
		t.Errorf("Flush after a refusal and the next chunk's ack = %v, want the limit error", err)
	}
	if err := s.Flush(ctx, "r"); err != nil {
		t.Errorf("Flush after that = %v, want nil", err)
	}

	// The last chunk refused: no later ack takes it off, and a Flush
	// after the one that reported it has nothing to wait for. Before, it
	// waited until its context ended.
	if _, err := s.SendText("r", "z"); err != nil {
		t.Fatal(err)
	}
	awaitGot(t, a, wire.OpText)
	refuse(6)
	nodetest.Eventually(t, settle, func() error {
		if n := s.Unacked("r"); n != 0 {
			return fmt.Errorf("%d chunks unacknowledged after the last one was refused", n)
		}
		return nil
	})
	if err := s.Flush(ctx, "r"); !isLimit(err) {
		t.Errorf("Flush after the last chunk was refused = %v, want the limit error", err)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Flush(short, "r"); err != nil {
		t.Errorf("Flush after that = %v, want nil at once", err)
	}
}
