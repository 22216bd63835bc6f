package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard/switchboard/internal/bus"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/room"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// roomsOpen reads n's gauge of open room feeds. A feed stops counting
// once it has unloaded, its last snapshot written.
func roomsOpen(t *testing.T, n *node.Node) float64 {
	t.Helper()
	families, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "switchboard_rooms_open" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no rooms_open metric")
	return 0
}

// A room's stored snapshot in the format of earlier nodes (version 1)
// loads, and is written again as version 2; one the node cannot use (of a
// newer version here) is ignored, and the room is rebuilt from its stream.
func TestRoomSnapshotFormats(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(wait)
	n := c.Nodes[0]
	const name = "formats"
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	// visit joins the room as user, returns its state and leaves, waiting
	// until the room's feed has unloaded and written its last snapshot.
	visit := func(user string, text string) *wire.RoomState {
		t.Helper()
		p := newPeer(t, n.Addr(), user)
		st := p.join(name)
		if text != "" {
			p.acked(name, p.typeText(name, text))
		}
		p.send(wire.Message{Op: wire.OpLeave, Room: name})
		p.await("own leave", func(m wire.Message) bool {
			return m.Op == wire.OpPresence && m.User == user && m.Event == "leave"
		})
		nodetest.Eventually(t, wait, func() error {
			if got := roomsOpen(t, n); got != 0 {
				return fmt.Errorf("%v rooms open", got)
			}
			return nil
		})
		return st
	}
	snapshot := func() []byte {
		t.Helper()
		data, err := n.RoomSnapshot(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	put := func(data string) {
		t.Helper()
		if err := n.PutRoomSnapshot(ctx, name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	texts := func(st *wire.RoomState) []string {
		var out []string
		for _, l := range st.Lines {
			out = append(out, l.From+": "+l.Text)
		}
		return out
	}

	visit("alice", "hello\n")
	seq, err := room.SnapshotSeq(snapshot())
	if err != nil {
		t.Fatal(err)
	}

	// Version 1, as nodes wrote it before: what it says is what a joiner
	// gets, with the records after it.
	put(fmt.Sprintf(`{"seq":%d,"state":{"Lines":[{"From":"zed","Text":"from v1"}],"Live":{"zed":"typing"},"Seqs":{"zed":4},"PendingCR":{}},"members":{}}`, seq))
	st := visit("bob", "")
	if got, want := texts(st), []string{"zed: from v1"}; !slices.Equal(got, want) {
		t.Errorf("after a v1 snapshot bob sees lines %q, want %q", got, want)
	}
	if st.Live["zed"] != "typing" || st.Seqs["zed"] != 4 {
		t.Errorf("after a v1 snapshot bob sees zed typing %q at seq %d", st.Live["zed"], st.Seqs["zed"])
	}
	if data := snapshot(); !strings.HasPrefix(string(data), `{"v":2,`) {
		t.Errorf("the snapshot written after bob's visit is %s, want version 2", data)
	}

	// A version this node does not know: rebuilt from the stream, which
	// never held zed's line.
	put(fmt.Sprintf(`{"v":99,"seq":%d,"whatever":{}}`, seq+10))
	st = visit("carol", "")
	if got, want := texts(st), []string{"alice: hello"}; !slices.Equal(got, want) {
		t.Errorf("after an unusable snapshot carol sees lines %q, want %q", got, want)
	}

	// One past the stream's last record (a faulty node's): the room would
	// skip every record up to it, and no join would be answered. Rebuilt
	// from the stream.
	put(fmt.Sprintf(`{"v":2,"seq":%d,"lines":[{"from":"zed","text":"from the future"}],"senders":{},"members":{}}`, seq+1_000_000))
	st = visit("dave", "")
	if got, want := texts(st), []string{"alice: hello"}; !slices.Equal(got, want) {
		t.Errorf("after a snapshot past the stream dave sees lines %q, want %q", got, want)
	}
}

// A room whose departed senders left 985 unfinished lines of 4 KiB of
// quotes (8 KiB each in JSON) and 100 completed ones has a state larger
// than the bus carries. Its snapshot is still written, within the bus's
// limit, covering every record; and a joiner once the room is loaded from
// it again sees what a joiner saw before.
func TestRoomSnapshotOfACrowdFits(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(wait)
	n := c.Nodes[0]
	const name = "crowd"
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	quotes := strings.Repeat(`"`, rtt.MaxLineBytes)
	var last uint64
	store := func(recs []room.Record) {
		t.Helper()
		seq, err := n.StoreRoomRecord(ctx, name, room.Record{Op: room.OpBatch, Recs: recs})
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	var batch []room.Record
	for i := range 985 + 100 {
		rec := room.Record{Op: room.OpText, User: fmt.Sprintf("d%04d", i), Key: "n9/1", Seq: 1, T: quotes}
		if i >= 985 {
			rec = room.Record{Op: room.OpText, User: "scribe", Key: "n9/2", Seq: uint64(i - 984), T: quotes + "\n"}
		}
		if batch = append(batch, rec); len(batch) == 64 {
			store(batch)
			batch = nil
		}
	}
	store(batch)

	// visit joins the room as user, returns its state and leaves, waiting
	// until the room's feed has unloaded and written its last snapshot.
	visit := func(user string) *wire.RoomState {
		t.Helper()
		p := newPeer(t, n.Addr(), user)
		// Loading this room is heavy (1,085 senders' lines): on a loaded
		// machine it may outlast a join's store timeout, and the join
		// is retried as a client retries `unavailable`.
		st := p.rejoin(name)
		p.send(wire.Message{Op: wire.OpLeave, Room: name})
		p.await("own leave", func(m wire.Message) bool {
			return m.Op == wire.OpPresence && m.User == user && m.Event == "leave"
		})
		nodetest.Eventually(t, wait, func() error {
			if got := roomsOpen(t, n); got != 0 {
				return fmt.Errorf("%v rooms open", got)
			}
			return nil
		})
		return st
	}
	before := visit("alice")
	data, err := n.RoomSnapshot(ctx, name)
	if err != nil {
		t.Fatalf("no snapshot of the crowded room: %v", err)
	}
	if limit := bus.MaxPayload - 4096; len(data) > limit {
		t.Fatalf("snapshot of %d bytes, more than the %d the bus carries", len(data), limit)
	}
	seq, err := room.SnapshotSeq(data)
	if err != nil {
		t.Fatal(err)
	}
	if seq <= last {
		t.Errorf("the snapshot covers the stream up to %d, want past the last text, %d (and alice's join and leave)", seq, last)
	}

	after := visit("bob")
	for _, st := range []*wire.RoomState{before, after} {
		delete(st.Live, "alice")
		delete(st.Live, "bob")
		delete(st.Seqs, "alice")
		delete(st.Seqs, "bob")
		st.Users = nil
	}
	if diff := cmp.Diff(after, before, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("bob's state after the reload differs from alice's before it (-got +want):\n%s", diff)
	}
	if len(before.Lines) == 0 || before.Seqs["d0000"] != 1 || before.Seqs["d0984"] != 1 {
		t.Errorf("alice's state holds %d lines and seqs %d and %d of the first and last departed senders; want some lines, and seqs 1",
			len(before.Lines), before.Seqs["d0000"], before.Seqs["d0984"])
	}
}
