package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/wire"
)

// lockedBuffer collects the nodes' logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// homeNode picks node id while it is available, else the default policy.
func homeNode(id string) pick.Policy {
	fallback := pick.Default(pick.DefaultRand())
	return pick.PolicyFunc(func(nodes []directory.Node, req pick.Request) (pick.Result, error) {
		for _, n := range nodes {
			if n.ID == id && n.Available() && (req.Exclude == nil || !req.Exclude(id)) {
				return pick.Result{Node: n, Reason: "test: " + id}, nil
			}
		}
		return fallback.Pick(nodes, req)
	})
}

// SIGTERM with a grace (serve's default, --drain-grace 20s) empties the
// node before it exits: its session in a room moves to another node
// without a drop, the member on another node sees no presence change,
// and the text typed before and after the stop is all acknowledged.
func TestSIGTERMMovesSessionsBeforeExit(t *testing.T) {
	var logs lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 3, Service: "chat.test", Output: &logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	const room = "stop"
	dial := func(user, home string) *client.Session {
		t.Helper()
		s, err := client.Dial(ctx, strings.Join(c.Addrs(), ","), client.WithUser(user), client.WithPolicy(homeNode(home)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if s.Node().ID != home {
			t.Fatalf("%s on %s, want %s", user, s.Node().ID, home)
		}
		return s
	}
	ann := dial("ann", "n1")
	bob := dial("bob", "n2")
	// bob's events, read from here on: presence about ann is churn.
	churn := make(chan string, 16)
	bobJoined := make(chan struct{})
	go func() {
		once := sync.OnceFunc(func() { close(bobJoined) })
		for e := range bob.Events() {
			if e.Kind != client.Received {
				continue
			}
			switch m := e.Message; {
			case m.Op == wire.OpRoom && m.Room == room:
				once()
			case m.Op == wire.OpPresence && m.User == "ann":
				churn <- m.Event
			}
		}
	}()
	if err := bob.Join(room); err != nil {
		t.Fatal(err)
	}
	<-bobJoined
	annEvents := make(chan client.Event, 256)
	go func() {
		for e := range ann.Events() {
			if e.Kind != client.Received && e.Kind != client.DirectoryPushed {
				annEvents <- e
			}
		}
		close(annEvents)
	}()
	if _, err := ann.JoinWait(ctx, room); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-churn:
		if ev != "join" {
			t.Fatalf("bob saw ann %s, want join", ev)
		}
	case <-time.After(settle):
		t.Fatal("bob did not see ann join")
	}
	if _, err := ann.SendTextWait(ctx, room, "before the stop\n"); err != nil {
		t.Fatal(err)
	}

	if err := c.Terminate(0); err != nil { // waits for the exit
		t.Fatal(err)
	}
	select {
	case e := <-annEvents:
		if e.Kind != client.Moved || e.Node.ID == "n1" {
			t.Fatalf("ann's first event after the stop: %v to %s (%v); want moved off n1", e.Kind, e.Node.ID, e.Err)
		}
	case <-time.After(settle):
		t.Fatal("ann did not move")
	}
	if _, err := ann.SendTextWait(ctx, room, "after it\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-annEvents:
		t.Errorf("ann had another event: %v %s %v", e.Kind, e.Node.ID, e.Err)
	case ev := <-churn:
		t.Errorf("bob saw ann %s; she only moved", ev)
	default:
	}
	found := false
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "drain ended") && strings.Contains(line, "node=n1") && strings.Contains(line, "reason=empty") {
			found = true
		}
	}
	if !found {
		t.Errorf("n1 did not log that its drain ended empty; the nodes' log:\n%s", logs.String())
	}
}
