package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// The chat view shows what it types at once, under the seq the chunk has
// when typed. A chunk held for the node's limits is renumbered above text
// the user's other session stores under that seq meanwhile, so the view's
// own line ("ab", then "ab\uFFFDc" with the gap the renumbering left) was
// no longer the room's ("aXb") until the next state, which came only with
// a failover. The view now asks for the room's state once its text is
// all acknowledged, and shows the room's line.
func TestChatOwnLineFollowsTheRoomAfterAnotherDevicesText(t *testing.T) {
	t.Parallel()
	// A chunk every five seconds after the first: the second waits in the
	// session.
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.ChunkRate = 0.2
		cfg.ChunkBurst = 2
	}})
	c.WaitRoomsReady(60 * time.Second)
	addr := c.Nodes[0].Addr()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s, v, printed := annsChatView(ctx, t, addr)

	// Ann's other device, a raw connection.
	phone, err := client.DialConn(ctx, nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	for _, m := range []wire.Message{
		{Op: wire.OpHello, V: 1, Client: "phone/1"},
		{Op: wire.OpAttach, User: "ann", Device: "phone"},
		{Op: wire.OpJoin, Room: "lobby"},
	} {
		if err := phone.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	recvOp(t, phone, wire.OpRoom)

	// "a" goes out; "b" waits for the node's limits.
	if _, err := v.typed("a"); err != nil {
		t.Fatal(err)
	}
	await(t, 30*time.Second, func(context.Context) error {
		if n := len(s.UnackedText("lobby")); n > 0 {
			return fmt.Errorf("%d chunks unacknowledged, want the first acknowledged", n)
		}
		return nil
	})
	if _, err := v.typed("b"); err != nil {
		t.Fatal(err)
	}
	held := s.UnackedText("lobby")
	if len(held) != 1 {
		t.Fatalf("unacknowledged after b: %v, want b alone", held)
	}
	// The phone stores "X" under b's seq.
	if err := phone.Send(wire.Message{Op: wire.OpText, Room: "lobby", Seq: held[0].Seq, T: "X"}); err != nil {
		t.Fatal(err)
	}
	if m := recvOp(t, phone, wire.OpAck, wire.OpError); m.Op != wire.OpAck || m.Seq != held[0].Seq {
		t.Fatalf("the phone's chunk: %+v, want its ack", m)
	}

	// Once b is stored (above X), the view shows the room's line.
	await(t, 30*time.Second, func(context.Context) error {
		v.mu.Lock()
		defer v.mu.Unlock()
		if got := v.text.Live("ann"); got != "aXb" || v.resyncing {
			return fmt.Errorf("ann's own line in the view: %q (resyncing %v), want %q", got, v.resyncing, "aXb")
		}
		return nil
	})
	if lines := printed(); !slices.Contains(lines, "* own text resynchronised with lobby") {
		t.Errorf("the view printed %q, want a line saying it resynchronised", lines)
	}
}

// A chunk the node refuses for good is dropped by the session, but the
// view showed it as typed: the view takes its own line from the room's
// state once nothing waits for an ack. (The Go client cuts its text to
// the node's limits, so the refusal is handed to the view here, for a
// chunk the view shows and the session does not hold.)
func TestChatOwnLineDropsTextRefusedForGood(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, v, _ := annsChatView(ctx, t, c.Nodes[0].Addr())
	await(t, 30*time.Second, func(context.Context) error {
		v.mu.Lock()
		defer v.mu.Unlock()
		if !slices.Contains(v.users, "ann") {
			return fmt.Errorf("the view has not taken the room's state: users %q", v.users)
		}
		return nil
	})
	if _, err := v.typed("hi"); err != nil {
		t.Fatal(err)
	}
	await(t, 30*time.Second, func(context.Context) error {
		if n := len(s.UnackedText("lobby")); n > 0 {
			return fmt.Errorf("%d chunks unacknowledged, want none", n)
		}
		return nil
	})
	v.mu.Lock()
	refused := v.text.Seq("ann") + 1
	v.text.Apply("ann", refused, " lost") // shown as typed
	v.mu.Unlock()
	v.handle(client.Event{Kind: client.Received, Message: wire.Message{Op: wire.OpError, Code: wire.CodeLimit, Room: "lobby", Seq: refused, Message: "chunk too long"}})
	await(t, 30*time.Second, func(context.Context) error {
		v.mu.Lock()
		defer v.mu.Unlock()
		if got := v.text.Live("ann"); got != "hi" || v.resyncing {
			return fmt.Errorf("ann's own line in the view: %q (resyncing %v), want %q", got, v.resyncing, "hi")
		}
		return nil
	})
}

// annsChatView dials the node at addr as ann, joins lobby, and returns
// her session and a chat view of lobby that handles its events, with
// what the view printed so far.
func annsChatView(ctx context.Context, t *testing.T, addr string) (*client.Session, *chatView, func() []string) {
	t.Helper()
	s := annInLobby(t, addr)
	v := &chatView{s: s, room: "lobby", text: rtt.NewRoom(0)}
	var mu sync.Mutex
	var printed []string
	go func() {
		for e := range s.Events() {
			lines := v.handle(e)
			mu.Lock()
			printed = append(printed, lines...)
			mu.Unlock()
		}
	}()
	return s, v, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(printed)
	}
}
