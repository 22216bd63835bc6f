package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/room"
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
}
