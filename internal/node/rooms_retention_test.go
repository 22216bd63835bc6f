package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// Under a retention a room nobody is in is forgotten, records and
// snapshot, and a room with a member keeps everything however quiet it
// stays: its steward writes the snapshot again before anything it needs
// expires. The retention is 4 s here: the snapshot, kept 1.25 times
// that and written again every quarter of it, then outlives a steward
// stalled for up to about 4 s on a loaded machine (2 s at a retention of
// 2 s). Both rooms are watched until their records have left the
// stream. The quiet room is then joined on the
// other node, whose feed loads it from storage.
func TestRoomRetention(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.RoomRetention = 4 * time.Second
	}})
	c.WaitRoomsReady(wait)
	n, other := c.Nodes[0], c.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 4*wait)
	defer cancel()
	lines := func(st *wire.RoomState) []string {
		var out []string
		for _, l := range st.Lines {
			out = append(out, l.From+": "+l.Text)
		}
		return out
	}
	recordsGone := func(name string) func() error {
		return func() error {
			left, err := n.RoomRecords(ctx, name)
			if err != nil {
				return err
			}
			if left > 0 {
				return fmt.Errorf("room %s: %d records left in its stream", name, left)
			}
			return nil
		}
	}

	// "quiet": alice stays in it, and types nothing after her first line.
	alice := newPeer(t, n.Addr(), "alice")
	alice.join("quiet")
	alice.acked("quiet", alice.typeText("quiet", "still here\n"))

	// "left": carol types and leaves; nobody is in it then.
	carol := newPeer(t, n.Addr(), "carol")
	carol.join("left")
	carol.acked("left", carol.typeText("left", "gone soon\n"))
	carol.send(wire.Message{Op: wire.OpLeave, Room: "left"})
	carol.await("own leave", func(m wire.Message) bool {
		return m.Op == wire.OpPresence && m.User == "carol" && m.Event == "leave"
	})

	nodetest.Eventually(t, wait, recordsGone("quiet"))
	nodetest.Eventually(t, wait, recordsGone("left"))
	nodetest.Eventually(t, wait, func() error {
		_, err := n.RoomSnapshot(ctx, "left")
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return fmt.Errorf("the snapshot of the room nobody is in is still there (%v)", err)
	})

	bob := newPeer(t, other.Addr(), "bob")
	st := bob.join("quiet")
	if got, want := lines(st), []string{"alice: still here"}; !slices.Equal(got, want) {
		t.Errorf("bob joins the quiet room after its records expired and sees lines %q, want %q", got, want)
	}
	if !slices.Contains(st.Users, "alice") || st.Seqs["alice"] == 0 {
		t.Errorf("bob sees users %q and alice's seq %d; want alice in the room, with her seq", st.Users, st.Seqs["alice"])
	}
	dave := newPeer(t, n.Addr(), "dave")
	st = dave.join("left")
	if len(st.Lines) > 0 || len(st.Seqs) > 0 {
		t.Errorf("dave joins the forgotten room and sees lines %q, seqs %v; want none", lines(st), st.Seqs)
	}
}

// gauge reads n's unlabelled gauge name.
func gauge(t *testing.T, n *node.Node, name string) float64 {
	t.Helper()
	families, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s metric", name)
	return 0
}

// A cluster that grows raises its rooms' replicas, the snapshot bucket's
// among them, whose stream allows the snapshots' TTLs: raising must keep
// that (JetStream refuses to turn it off), as it keeps everything but the
// replicas. The streams began with two copies here, so three come only
// from raising them.
func TestReplicasRaisedKeepTheRetention(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(wait)
	if got := gauge(t, c.Nodes[0], "switchboard_room_replicas"); got > 2 {
		t.Fatalf("two nodes made rooms' streams of %v replicas", got)
	}
	c.Add(nil)
	c.WaitRoomsReady(wait)
	nodetest.Eventually(t, wait, func() error {
		for _, n := range c.Nodes {
			if got := gauge(t, n, "switchboard_room_replicas"); got != 3 {
				return fmt.Errorf("%s's rooms have %v replicas, want 3", n.ID(), got)
			}
		}
		return nil
	})
}
