package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// Chunks queued behind a store that fails are not stored ahead of the
// failed ones, even once their resends have passed the hold: the writer
// takes them first (they came before the resends), and storing one would
// make the resends duplicates. Seq 6 waits behind a held writer while
// 4 and 5 fail (the rooms' streams take no record that big for a
// moment: refused at once, and JetStream itself stays up, so the node
// does not step aside), 4 and 5 are resent, and
// only then does the writer take 6: it must refuse it.
func TestQueuedChunksWaitForFailedOnes(t *testing.T) {
	ns := externalNATS(t, t.TempDir())
	c := nodetest.Start(t, 1, nodetest.Options{Configure: onBus(ns.ClientURL(), func(cfg *node.Config) {
		cfg.StoreTimeout = time.Second
	})})
	c.WaitRoomsReady(wait)
	n := c.Nodes[0]
	const room = "queued"
	alice := newPeer(t, n.Addr(), "alice")
	alice.join(room)
	alice.acked(room, alice.typeText(room, "abc"))
	answer := func(seq uint64) wire.Message {
		return alice.await(fmt.Sprintf("the answer to seq %d", seq), func(m wire.Message) bool {
			return m.Room == room && m.Seq == seq && (m.Op == wire.OpAck || m.Op == wire.OpError)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	hold := func() func() {
		release, err := n.HoldRoomWriter(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		return release
	}
	// The node answers a ping after the lines before it: the chunks
	// sent before it have been checked and handed to the writer.
	handed := func() {
		t.Helper()
		alice.send(wire.Message{Op: wire.OpPing})
		alice.await("pong", func(m wire.Message) bool { return m.Op == wire.OpPong })
	}

	limitRecords(ctx, t, ns.ClientURL(), 16) // smaller than any record
	first := hold()
	alice.typeText(room, "de") // 4 and 5
	handed()
	second := hold()
	alice.typeText(room, "f") // 6, admitted before 4 and 5 fail
	handed()
	first() // 4 and 5 go to the writer, and fail
	for _, seq := range []uint64{4, 5} {
		if m := answer(seq); m.Op != wire.OpError || m.Code != wire.CodeUnavailable {
			t.Fatalf("seq %d with records limited to 16 bytes: %+v, want unavailable", seq, m)
		}
	}
	limitRecords(ctx, t, ns.ClientURL(), -1)
	// The resends pass the hold: 4 on to 5, 5 past the last refused.
	alice.send(wire.Message{Op: wire.OpText, Room: room, Seq: 4, T: "d"})
	alice.send(wire.Message{Op: wire.OpText, Room: room, Seq: 5, T: "e"})
	handed() // behind 6
	second()
	if m := answer(6); m.Op != wire.OpError || m.Code != wire.CodeUnavailable {
		t.Fatalf("seq 6, queued behind the failed 4 and 5 and taken after their resends passed the hold: %+v, want unavailable", m)
	}
	for _, seq := range []uint64{4, 5} {
		if m := answer(seq); m.Op != wire.OpAck {
			t.Fatalf("resent seq %d: %+v, want ack", seq, m)
		}
	}
	alice.send(wire.Message{Op: wire.OpText, Room: room, Seq: 6, T: "f"})
	if m := answer(6); m.Op != wire.OpAck {
		t.Fatalf("seq 6 resent after 4 and 5: %+v, want ack", m)
	}
}

// limitRecords sets the largest record the rooms' streams on the NATS
// server at url take (-1: no limit of their own).
func limitRecords(ctx context.Context, t *testing.T, url string, size int32) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		if !strings.Contains(name, "_ROOMS_") {
			continue
		}
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.MaxMsgSize = size
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("limiting the records of %s: %v", name, err)
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
}

// A chunk queued behind a store that fails is answered `unavailable` at
// once, not after a store of its own that would most likely fail too: a
// chunk waits for at most the store under way and its own. Alice's 64
// chunks fill the first batch and bob's waits behind it; the streams take
// no record that big, and one store is tried, not two.
func TestChunksBehindAFailedStoreFailWithIt(t *testing.T) {
	ns := externalNATS(t, t.TempDir())
	c := nodetest.Start(t, 1, nodetest.Options{Configure: onBus(ns.ClientURL(), nil)})
	c.WaitRoomsReady(wait)
	n := c.Nodes[0]
	const room = "behind"
	alice := newPeer(t, n.Addr(), "alice")
	bob := newPeer(t, n.Addr(), "bob")
	alice.join(room)
	bob.join(room)
	alice.acked(room, alice.typeText(room, "a"))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	release, err := n.HoldRoomWriter(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	// A pong comes after the lines before it were handed to the writer.
	handed := func(p *peer) {
		t.Helper()
		p.send(wire.Message{Op: wire.OpPing})
		p.await("pong", func(m wire.Message) bool { return m.Op == wire.OpPong })
	}
	many := alice.typeText(room, strings.Repeat("x", 64))
	handed(alice)
	lone := bob.typeText(room, "y")
	handed(bob)
	limitRecords(ctx, t, ns.ClientURL(), 16) // smaller than any record
	before := n.RoomTextStores()
	release()
	answered := func(p *peer, seq uint64) {
		t.Helper()
		m := p.await(fmt.Sprintf("%s's answer to seq %d", p.user, seq), func(m wire.Message) bool {
			return m.Room == room && m.Seq == seq && (m.Op == wire.OpAck || m.Op == wire.OpError)
		})
		if m.Op != wire.OpError || m.Code != wire.CodeUnavailable {
			t.Fatalf("%s's seq %d with records limited to 16 bytes: %+v, want unavailable", p.user, seq, m)
		}
	}
	for _, seq := range many {
		answered(alice, seq)
	}
	answered(bob, lone[0])
	if tried := n.RoomTextStores() - before; tried != 1 {
		t.Errorf("%d stores tried for 64 chunks and one behind them after the first failed; want 1", tried)
	}
}

// A leave the streams refuse, from the node's last session in the room,
// leaves a membership that only this node removes (its peers see it up):
// the room's feed stays after the session has gone, and its cleanup
// stores the leave once the streams take records again. Then the feed
// goes. Before, the feed stopped with the session and the room listed
// alice for good.
func TestRefusedLeaveIsCleanedUp(t *testing.T) {
	ns := externalNATS(t, t.TempDir())
	// The feed stays a store timeout at least: a shorter one keeps the
	// test short.
	c := nodetest.Start(t, 2, nodetest.Options{Configure: onBus(ns.ClientURL(), func(cfg *node.Config) { cfg.StoreTimeout = 3 * time.Second })})
	c.WaitRoomsReady(wait)
	const room = "refused"
	alice := newPeer(t, c.Nodes[0].Addr(), "alice")
	bob := newPeer(t, c.Nodes[1].Addr(), "bob")
	alice.join(room)
	bob.join(room)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	limitRecords(ctx, t, ns.ClientURL(), 16) // smaller than any record
	alice.send(wire.Message{Op: wire.OpLeave, Room: room})
	alice.await("alice's leave", func(m wire.Message) bool {
		return m.Room == room && m.Op == wire.OpPresence && m.User == "alice" && m.Event == "leave"
	})
	if n := c.Nodes[0].OpenRooms(); n != 1 {
		t.Fatalf("%s holds %d rooms after a leave the streams refused; want 1: the room's feed stays to clean up", c.Nodes[0].ID(), n)
	}
	limitRecords(ctx, t, ns.ClientURL(), -1)
	bob.await("alice's leave, stored by the cleanup", func(m wire.Message) bool {
		return m.Room == room && m.Op == wire.OpPresence && m.User == "alice" && m.Event == "leave"
	})
	waitFor(t, "feed stopping once the room lists nobody of "+c.Nodes[0].ID(), func() bool { return c.Nodes[0].OpenRooms() == 0 })
	carol := newPeer(t, c.Nodes[1].Addr(), "carol")
	if st := carol.join(room); slices.Contains(st.Users, "alice") {
		t.Errorf("the room lists alice after her leave was stored: %v", st.Users)
	}
}

// A session that ends while its room's feed is too busy to take its
// detach within its wait, and whose leave is not stored, releases the
// feed still registered. The feed drops such a registration and its
// cleanup stores the leave; then the feed goes. Before, a registered
// member was never taken for stale: the room listed alice, and the node
// kept its feed, until the node stopped.
func TestDetachGivenUpIsCleanedUp(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.StoreTimeout = 3 * time.Second }})
	c.WaitRoomsReady(wait)
	const room = "busy"
	n0 := c.Nodes[0]
	bob := leaveWhileStalled(t, c, room)
	bob.await("alice's leave, stored by the cleanup", func(m wire.Message) bool {
		return m.Room == room && m.Op == wire.OpPresence && m.User == "alice" && m.Event == "leave"
	})
	waitFor(t, "feed stopping once the room lists nobody of "+n0.ID(), func() bool { return n0.OpenRooms() == 0 })
}

// A node that stops gracefully publishes the leave of every member it has
// in a room, not only of the sessions it still holds: a member whose
// session went while its detach gave up is left for the node's own
// cleanup, which does not run while it stops. The room clocks are frozen,
// so that neither that cleanup nor the peers' (after the stopped node's
// grace) can store the leave: bob sees alice leave only if the stopping
// node says so.
func TestGracefulStopLeavesForLingeringMembers(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.StoreTimeout = 3 * time.Second }})
	c.WaitRoomsReady(wait)
	frozen := time.Now()
	for _, n := range c.Nodes {
		n.SetRoomClock(func() time.Time { return frozen })
	}
	const room = "lingering"
	n0 := c.Nodes[0]
	bob := leaveWhileStalled(t, c, room)
	if n0.OpenRooms() != 1 {
		t.Fatalf("%s holds %d rooms, want the lingering one", n0.ID(), n0.OpenRooms())
	}
	if err := n0.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	bob.await("alice's leave, published by her node as it stopped", func(m wire.Message) bool {
		return m.Room == room && m.Op == wire.OpPresence && m.User == "alice" && m.Event == "leave"
	})
}

// leaveWhileStalled joins room as alice on c's first node and as bob on
// its second, then closes alice's session while her node's feed of the
// room is stalled: her detach waits for the feed until its wait ends, and
// her leave, tried with that wait spent, is not stored. It returns bob
// once the feed runs again.
func leaveWhileStalled(t *testing.T, c *nodetest.Cluster, room string) (bob *peer) {
	t.Helper()
	n0 := c.Nodes[0]
	alice := newPeer(t, n0.Addr(), "alice")
	bob = newPeer(t, c.Nodes[1].Addr(), "bob")
	alice.join(room)
	bob.join(room)
	resume := n0.StallRoom(room)
	defer resume()
	alice.conn.Close()
	waitFor(t, "alice's session releasing the room", func() bool { return n0.RoomHolders(room) == 0 })
	return bob
}

// A re-join waits for the session's text on its way to storage before it
// asks the room for its state. A store slower than the join's timeout
// used to spend that timeout: the re-join then failed (unavailable)
// although the room was healthy, or got the state and unavailable both.
// Each join gets one answer (docs/protocol.md, "Join"): here the state.
func TestRejoinAfterSlowStoreGetsOneAnswer(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.StoreTimeout = time.Second }})
	c.WaitRoomsReady(wait)
	n := c.Nodes[0]
	const room = "slow"
	alice := newPeer(t, n.Addr(), "alice")
	alice.join(room)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	release, err := n.HoldRoomWriter(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	seqs := alice.typeText(room, "a")
	alice.send(wire.Message{Op: wire.OpJoin, Room: room})
	// The store takes longer than the join's timeout: the time passing is
	// the scenario, not a wait for an event.
	time.Sleep(1200 * time.Millisecond)
	release()
	alice.acked(room, seqs)
	// The node answers the ping after the join: its answers are in.
	alice.send(wire.Message{Op: wire.OpPing})
	alice.await("pong", func(m wire.Message) bool { return m.Op == wire.OpPong })
	var answers []wire.Message
	for _, m := range alice.kept {
		if m.Room == room && (m.Op == wire.OpRoom || m.Op == wire.OpError && m.Seq == 0) {
			answers = append(answers, m)
		}
	}
	if len(answers) != 1 || answers[0].Op != wire.OpRoom {
		t.Fatalf("the re-join after a slow store got %+v; want the room's state alone", answers)
	}
}

// A room's consumer on a node stalls (as after a stream leader's death),
// then the node's last session in the room closes: its leave is stored,
// but the feed applies nothing more, so the room lists that member until
// the feed replaces its consumer. The stall checks ran only while a
// session held the feed: it then kept the room and stored the member's
// leave again every 2 s until the node stopped. Now it replaces the
// consumer, applies the leave and goes.
func TestUnheldFeedRecoversAStalledConsumer(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(wait)
	const room = "stalled"
	n1 := c.Nodes[1]
	alice := newPeer(t, c.Nodes[0].Addr(), "alice")
	bob := newPeer(t, n1.Addr(), "bob")
	alice.join(room)
	bob.join(room)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := n1.StopRoomConsumer(ctx, room); err != nil {
		t.Fatal(err)
	}
	bob.conn.Close()
	alice.await("bob's leave", func(m wire.Message) bool {
		return m.Room == room && m.Op == wire.OpPresence && m.User == "bob" && m.Event == "leave"
	})
	waitFor(t, n1.ID()+" releasing the room once it applied bob's leave", func() bool { return n1.OpenRooms() == 0 })
}

// A node that stops gracefully stores the leaves of its members, then
// closes its sessions; in between, a session may still send a join. Such
// a join is refused: stored after the node's leaves, it listed the
// session, whose node then said nothing more, until its peers' grace
// passed (with the room clocks frozen here, for good).
func TestJoinWhileStoppingIsRefused(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.StoreTimeout = 3 * time.Second }})
	c.WaitRoomsReady(wait)
	n0 := c.Nodes[0]
	alice := newPeer(t, n0.Addr(), "alice")
	alice.join("busy")
	// The stop waits for this room's stalled feed (up to 2 s) before it
	// closes the sessions: the window in which alice's join comes.
	resume := n0.StallRoom("busy")
	defer resume()
	stopped := make(chan error, 1)
	go func() { stopped <- n0.Shutdown(context.Background()) }()
	waitFor(t, n0.ID()+" beginning to stop its rooms", n0.RoomsStopping)
	alice.send(wire.Message{Op: wire.OpJoin, Room: "late"})
	m := alice.await("the answer to the join", func(m wire.Message) bool {
		return m.Room == "late" && (m.Op == wire.OpRoom || m.Op == wire.OpError)
	})
	if m.Op != wire.OpError || m.Code != wire.CodeUnavailable {
		t.Errorf("a join while the node stops: %+v; want unavailable", m)
	}
	resume()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// A session with a device holds a room after a chunk of its was refused;
// meanwhile another device of the same user stores text under the next
// seqs, so the room's state shows the user's seq above the chunk held.
// For a device the state is no ack (docs/rooms.md): its re-join keeps
// the hold, so a new chunk sent before the resend of the held one is
// refused, not stored ahead of it (the resend would then be taken for a
// duplicate and its text lost). Before, the state's seq lifted the hold.
func TestRejoinKeepsTheHoldOfADevice(t *testing.T) {
	ns := externalNATS(t, t.TempDir())
	c := nodetest.Start(t, 1, nodetest.Options{Configure: onBus(ns.ClientURL(), func(cfg *node.Config) {
		cfg.StoreTimeout = time.Second
	})})
	c.WaitRoomsReady(wait)
	const room = "devices"
	addr := c.Nodes[0].Addr()
	a := newDevicePeer(t, addr, "alice", "AAAAAAAAAAAAAAAAAAAAAAAAAA")
	b := newDevicePeer(t, addr, "alice", "BBBBBBBBBBBBBBBBBBBBBBBBBB")
	a.join(room)
	b.join(room)
	a.acked(room, a.typeText(room, "x")) // 1
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	limitRecords(ctx, t, ns.ClientURL(), 16) // smaller than any record
	a.seq++
	a.send(wire.Message{Op: wire.OpText, Room: room, Seq: a.seq, T: "y"}) // 2, refused
	if m := a.await("the answer to seq 2", func(m wire.Message) bool {
		return m.Room == room && m.Seq == 2 && (m.Op == wire.OpAck || m.Op == wire.OpError)
	}); m.Op != wire.OpError {
		t.Fatalf("seq 2 with records limited to 16 bytes: %+v, want a refusal", m)
	}
	limitRecords(ctx, t, ns.ClientURL(), -1)
	b.seq = 1
	b.acked(room, b.typeText(room, "bcde")) // 2 to 5, the other device's
	// Acked once stored; in the room's state once its feed has applied
	// them, which a member sees as their delivery (or, here, as a state
	// the feed sends the device whose own seqs the other's text took). A
	// rejoin answered before that has the state as it was, and the
	// chunks follow it.
	a.await("the other device's seq 5", func(m wire.Message) bool {
		return m.Room == room && (m.Op == wire.OpText && m.From == "alice" && m.Seq == 5 ||
			m.Op == wire.OpRoom && m.State != nil && m.State.Seqs["alice"] >= 5)
	})
	if st := a.rejoin(room); st.Seqs["alice"] != 5 {
		t.Fatalf("the state after the other device's text shows alice at %d, want 5", st.Seqs["alice"])
	}
	a.send(wire.Message{Op: wire.OpText, Room: room, Seq: 6, T: "z"})
	if m := a.await("the answer to seq 6", func(m wire.Message) bool {
		return m.Room == room && m.Seq == 6 && (m.Op == wire.OpAck || m.Op == wire.OpError)
	}); m.Op != wire.OpError || m.Code != wire.CodeUnavailable {
		t.Fatalf("a chunk sent ahead of the resend of the held one: %+v; want unavailable", m)
	}
}
