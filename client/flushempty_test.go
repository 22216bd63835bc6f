package client_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// An empty chunk holds no bytes, and a Flush waiting for one still ends
// with its refusal when the node refuses it for good, while a Flush
// called before it keeps waiting for the empty chunk ahead of it, until
// that one's ack. Before, a Flush waiting only for empty chunks was not
// told of the refusal and hung until its context ended.
func TestFlushOfRefusedEmptyChunk(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()))
	c := join.conn
	c.send(roomState("r", 0))
	awaitEvent(t, s, "the state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	go func() { // nobody else reads the events from here
		for range s.Events() {
		}
	}()
	ctx := dialCtx(t)
	waiting := func(n int) {
		t.Helper()
		nodetest.Eventually(t, settle, func() error {
			if got := s.FlushesWaiting("r"); got != n {
				return fmt.Errorf("%d flushes waiting, want %d", got, n)
			}
			return nil
		})
	}
	isBadRequest := func(err error) bool {
		var se *client.ServerError
		return errors.As(err, &se) && se.Code == wire.CodeBadRequest
	}

	// 1 "", then a Flush, then 2 "", then a Flush; 2 is refused.
	if _, err := s.SendText("r", ""); err != nil {
		t.Fatal(err)
	}
	first := async(func() (struct{}, error) { return struct{}{}, s.Flush(ctx, "r") })
	waiting(1)
	if _, err := s.SendText("r", ""); err != nil {
		t.Fatal(err)
	}
	second := async(func() (struct{}, error) { return struct{}{}, s.Flush(ctx, "r") })
	waiting(2)
	awaitGot(t, a, wire.OpText)
	awaitGot(t, a, wire.OpText)
	c.send(wire.Message{Op: wire.OpError, Code: wire.CodeBadRequest, Room: "r", Seq: 2, Message: "refused"})
	if r := awaitResult(t, "Flush waiting for the refused empty chunk", second); !isBadRequest(r.err) {
		t.Fatalf("Flush waiting for a refused empty chunk = %v, want the refusal", r.err)
	}
	if n := s.FlushesWaiting("r"); n != 1 {
		t.Fatalf("%d flushes waiting after the refusal, want 1: the one called before the refused chunk", n)
	}
	c.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 1})
	if r := awaitResult(t, "Flush waiting for the first empty chunk", first); r.err != nil {
		t.Fatalf("Flush after the ack of the chunk before it = %v, want nil", r.err)
	}
	if err := s.Flush(ctx, "r"); err != nil {
		t.Errorf("Flush once the refusal was reported and the rest acknowledged = %v", err)
	}
}
