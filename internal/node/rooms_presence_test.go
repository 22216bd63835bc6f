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
	leader := roomLeader(t, n1, name)
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
	isCatsLeave := func(recs []room.Record) bool {
		return len(recs) == 1 && recs[0].Op == room.OpLeave && len(recs[0].Keys) == 1 && strings.HasPrefix(recs[0].Keys[0], victim.ID()+"/")
	}
	if !isCatsLeave(removed) {
		t.Fatalf("after %v down the steward stored %+v; want the leave of cat's session", at.Sub(seen), removed)
	}
	if grace := 3 * time.Second; at.Sub(seen) < grace {
		t.Errorf("cat removed %v after its node was seen down, before the grace of %v", at.Sub(seen), grace)
	}
	// The leave is stored in the background, and may fail while the
	// survivors elect a new leader for the room's stream (its 5 s
	// publish deadline has passed on a loaded machine): the steward then
	// asks again after Retry by the room clock, which this test moves.
	isCatGone := func(m wire.Message) bool {
		return m.Op == wire.OpPresence && m.User == "cat" && m.Event == "leave"
	}
	for try := 1; ; try++ {
		if _, ok := ann.awaitWithin(wait/4, isCatGone); ok {
			break
		}
		if try == 4 {
			t.Fatalf("ann: cat's leave, asked %d times, never came; got %+v", try, ann.kept)
		}
		// In steps, as the node's own reconciles go: a longer gap would
		// void the evidence.
		var again []room.Record
		for range 2 * room.DefaultConfig("", 0).Retry / step {
			clock.advance(step)
			if again = reconcile(); len(again) > 0 {
				break
			}
		}
		if !isCatsLeave(again) {
			t.Fatalf("asking again, the steward stored %+v; want the leave of cat's session", again)
		}
	}
	st := newPeer(t, survivor.Addr(), "dan").join(name)
	if !slices.Equal(st.Users, []string{"ann", "bob", "dan"}) {
		t.Errorf("users %q, want ann, bob and dan", st.Users)
	}
}

// A node that restarts within the grace period (a new incarnation under
// the same ID) has its earlier sessions removed on its own word: the
// steward reads the newer incarnation in the node's directory entry and
// stores their leave at once. The steward's room clock stands still, so
// the grace can never run out: only the incarnation can remove them. The
// restarted node holds no session in the room, so it does not remove
// them itself either.
func TestRestartedNodesMembersLeaveOnItsWord(t *testing.T) {
	var dataDirs []string
	c := nodetest.Start(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		dataDirs = append(dataDirs, cfg.DataDir)
	}})
	c.WaitRoomsReady(wait)
	const name = "reborn"
	n1 := c.Nodes[0] // the steward: it holds the lowest ID among the members' nodes
	leader := roomLeader(t, n1, name)
	// The node that restarts must not lead the room's stream, so that the
	// steward's leave is stored without waiting for an election.
	victim := 2
	if c.Nodes[victim].ID() == leader {
		victim = 1
	}
	survivor := c.Nodes[3-victim]
	frozen := time.Now()
	n1.SetRoomClock(func() time.Time { return frozen })

	ann := newPeer(t, n1.Addr(), "ann")
	bob := newPeer(t, survivor.Addr(), "bob")
	cat := newPeer(t, c.Nodes[victim].Addr(), "cat")
	ann.join(name)
	bob.join(name)
	cat.join(name)
	ann.await("cat joined", func(m wire.Message) bool {
		return m.Op == wire.OpPresence && m.User == "cat" && m.Event == "join"
	})

	id := c.Nodes[victim].ID()
	c.Nodes[victim].Halt()
	reborn := c.Add(func(i int, cfg *node.Config) {
		cfg.ID, cfg.DataDir = id, dataDirs[victim]
	})
	nodetest.Eventually(t, settle, func() error {
		if e, ok := nodetest.Lookup(n1, id); !ok || e.Addr != reborn.Addr() {
			return fmt.Errorf("%s sees %s as %+v, want it at %s", n1.ID(), id, e, reborn.Addr())
		}
		return nil
	})
	isCatGone := func(m wire.Message) bool {
		return m.Op == wire.OpPresence && m.User == "cat" && m.Event == "leave"
	}
	for _, p := range []*peer{ann, bob} {
		if _, ok := p.awaitWithin(wait, isCatGone); !ok {
			t.Fatalf("%s: no leave of cat's session from before the restart; got %+v", p.user, p.kept)
		}
	}
}

// A session whose membership the cluster removed while its node was cut
// off is joined again by its node; if the room filled meanwhile, that
// join is refused. The session is then out of the room, and is told: it
// gets a removed error about the room, its text is refused as not in the
// room, and a join of its own is a first join.
// Before, it stayed in the room on its node (receiving, typing) without
// being a member.
func TestSessionThatLostItsPlaceIsToldAndOut(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.MaxParticipants = 2 }})
	c.WaitRoomsReady(wait)
	const name = "filled"
	n0, n1 := c.Nodes[0], c.Nodes[1]
	alice := newPeer(t, n0.Addr(), "alice")
	alice.join(name)
	// n0 applies nothing meanwhile: its feed sees the leave and both
	// joins before it checks presence again.
	resume := n0.StallRoom(name)
	defer resume()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := n1.StoreRoomLeave(ctx, name, alice.node, alice.session); err != nil {
		t.Fatal(err)
	}
	bob := newPeer(t, n1.Addr(), "bob")
	bob.join(name)
	carol := newPeer(t, n1.Addr(), "carol")
	carol.join(name)
	waitFor(t, n0.ID()+" receiving the leave and both joins", func() bool { return n0.RoomBacklog(name) >= 3 })
	resume()

	m := alice.await("the room telling alice she is out", func(m wire.Message) bool { return m.Op == wire.OpError && m.Room == name })
	if m.Code != wire.CodeRemoved || m.Seq != 0 {
		t.Fatalf("alice got %+v; want a removed error about the room", m)
	}
	alice.send(wire.Message{Op: wire.OpText, Room: name, Seq: alice.seq + 1, T: "x"})
	m = alice.await("the answer to alice's text", func(m wire.Message) bool { return m.Room == name && (m.Op == wire.OpAck || m.Op == wire.OpError) })
	if m.Op != wire.OpError || m.Code != wire.CodeBadRequest {
		t.Fatalf("alice's text after she lost her place: %+v; want bad_request (not in the room)", m)
	}
	alice.send(wire.Message{Op: wire.OpJoin, Room: name})
	m = alice.await("the answer to alice's join", func(m wire.Message) bool { return m.Room == name && (m.Op == wire.OpRoom || m.Op == wire.OpError) })
	if m.Op != wire.OpError || m.Code != wire.CodeLimit {
		t.Fatalf("alice's join of the full room: %+v; want limit", m)
	}
	waitFor(t, n0.ID()+" releasing the room", func() bool { return n0.RoomHolders(name) == 0 })
}
