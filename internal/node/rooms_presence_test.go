package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/room"
	"github.com/switchboard/switchboard/wire"
)

// testClock is a clock a test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// step is how far the room clock moves between two presence checks: far
// below the gap that counts as a pause.
const step = 100 * time.Millisecond

// The steward of a room stops hearing its peers' directory entries, as a
// node paused (SIGSTOP) or cut off from the exchange does, while it can
// still store records: it sees the members' nodes down, but never a
// majority of the cluster up, and removes nobody, however long by its
// clock. Once it hears them again and one of them dies for real, it
// removes that node's member after the grace period, measured by the same
// clock, and nobody else.
func TestRoomPresenceNeedsEvidence(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	c.WaitRoomsReady(wait)
	const name = "evidence"
	n1 := c.Nodes[0] // the steward: it holds the lowest ID among the members' nodes
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	leader, err := n1.RoomLeader(ctx, name)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	// The node that dies must not lead the room's stream, so that the
	// steward's leave is stored without waiting for an election.
	peers := []*node.Node{c.Nodes[1], c.Nodes[2]}
	if peers[1].ID() == leader {
		peers[0], peers[1] = peers[1], peers[0]
	}
	survivor, victim := peers[0], peers[1]

	ann := newPeer(t, n1.Addr(), "ann")
	bob := newPeer(t, survivor.Addr(), "bob")
	cat := newPeer(t, victim.Addr(), "cat")
	ann.join(name)
	bob.join(name)
	cat.join(name)
	ann.await("cat joined", func(m wire.Message) bool {
		return m.Op == wire.OpPresence && m.User == "cat" && m.Event == "join"
	})

	clock := &testClock{t: time.Now()}
	n1.SetRoomClock(clock.now)
	reconcile := func() []room.Record {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		recs, err := n1.ReconcileRoom(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}

	// Deaf: everyone else is down in n1's directory.
	hear := n1.DeafenDirectory()
	nodetest.Eventually(t, wait, func() error {
		for _, p := range peers {
			if got := nodetest.StatusOf(n1, p.ID()); got != directory.Down {
				return fmt.Errorf("%s sees %s %q", n1.ID(), p.ID(), got)
			}
		}
		return nil
	})
	for range 300 { // 30 s by the room clock, ten times the grace
		clock.advance(step)
		if recs := reconcile(); len(recs) > 0 {
			t.Fatalf("a steward that cannot see its peers stored %+v", recs)
		}
	}
	if err := hear(); err != nil {
		t.Fatal(err)
	}
	c.WaitAllUp(wait)
	// Nobody left: no one heard a leave before bob's text, stored after
	// the deaf spell.
	bob.acked(name, bob.typeText(name, "!"))
	for _, p := range []*peer{ann, cat} {
		p.await("bob's text", func(m wire.Message) bool { return m.Op == wire.OpText && m.From == "bob" })
	}
	for _, p := range []*peer{ann, bob, cat} {
		if i := slices.IndexFunc(p.kept, func(m wire.Message) bool { return m.Op == wire.OpPresence && m.Event == "leave" }); i >= 0 {
			t.Errorf("%s heard %+v", p.user, p.kept[i])
		}
	}

	// A real crash: the victim's member goes after the grace.
	victim.Halt()
	nodetest.Eventually(t, wait, func() error {
		if got := nodetest.StatusOf(n1, victim.ID()); got != directory.Down {
			return fmt.Errorf("%s sees %s %q", n1.ID(), victim.ID(), got)
		}
		return nil
	})
	seen := clock.now()
	var removed []room.Record
	var at time.Time
	for range 100 {
		at = clock.advance(step)
		if removed = reconcile(); len(removed) > 0 {
			break
		}
	}
	if len(removed) != 1 || removed[0].Op != room.OpLeave || len(removed[0].Keys) != 1 || !strings.HasPrefix(removed[0].Keys[0], victim.ID()+"/") {
		t.Fatalf("after %v down the steward stored %+v; want the leave of cat's session", at.Sub(seen), removed)
	}
	if grace := 3 * time.Second; at.Sub(seen) < grace {
		t.Errorf("cat removed %v after its node was seen down, before the grace of %v", at.Sub(seen), grace)
	}
	ann.await("cat removed", func(m wire.Message) bool {
		return m.Op == wire.OpPresence && m.User == "cat" && m.Event == "leave"
	})
	st := newPeer(t, survivor.Addr(), "dan").join(name)
	if !slices.Equal(st.Users, []string{"ann", "bob", "dan"}) {
		t.Errorf("users %q, want ann, bob and dan", st.Users)
	}
}
