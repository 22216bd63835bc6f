package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// longNode is a node whose ID, addresses, group and version are as long
// as directory.DefaultLimits lets a peer's entry make them.
func longNode(i int) directory.Node {
	field := directory.DefaultLimits().MaxField
	pad := func(s string) string { return s + strings.Repeat("x", field-len(s)) }
	return directory.Node{
		ID: pad(fmt.Sprintf("n%03d-", i)), Addr: pad(fmt.Sprintf("h%03d-", i)), HTTP: pad(fmt.Sprintf("w%03d-", i)),
		Group: pad("eu/"), Status: directory.Draining, Users: 1, Capacity: 10, Version: pad("v"), HeartbeatMS: 60000,
	}
}

// A push of changes never passes the line a client can read: when the
// changed entries (or the IDs gone) would make a line past wire.MaxLine,
// deltaLine gives none and the sessions get views, which Sample bounds;
// when they fit, the line is the delta. Before, 64 changed entries of
// the longest fields the directory holds made a line of about 100 KiB,
// which every client asking for deltas refuses with line_too_long and
// closes: all of a node's sessions would fail over at once.
func TestDeltaLineFitsALine(t *testing.T) {
	taken := time.Unix(1000, 0)
	tests := []struct {
		name      string
		nodes     int // in the view, all of them longNode
		changed   int // of those, the first changed
		gone      int // IDs of the longest kind no longer listed
		wantDelta bool
	}{
		{"one long entry changed", 100, 1, 0, true},
		{"ten long entries changed", 100, 10, 0, true},
		{"64 long entries changed", 100, deltaMax, 0, false},
		{"64 long IDs gone", 0, 0, deltaMax, true}, // about 19 KiB: fits
		{"40 long entries changed and 24 gone", 100, 40, 24, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := make([]directory.Node, tt.nodes)
			for i := range nodes {
				nodes[i] = longNode(i)
			}
			v := &view{nodes: nodes, taken: taken}
			changed := map[string]struct{}{}
			for i := range tt.changed {
				changed[nodes[i].ID] = struct{}{}
			}
			for i := range tt.gone {
				changed[longNode(1000+i).ID] = struct{}{}
			}
			line, err := v.deltaLine("chat.example.com", "self", taken.Add(time.Second), changed)
			if err != nil {
				t.Fatal(err)
			}
			if line == nil {
				if tt.wantDelta {
					t.Fatal("no delta, want one: the changes fit a line")
				}
				return
			}
			if len(line)-1 > wire.MaxLine {
				t.Fatalf("a delta of %d bytes, past the %d a client reads", len(line)-1, wire.MaxLine)
			}
			if !tt.wantDelta {
				t.Fatalf("a delta of %d bytes, want none", len(line)-1)
			}
			m, err := wire.Decode(line[:len(line)-1])
			if err != nil {
				t.Fatal(err)
			}
			if !m.Delta || len(m.Nodes) != tt.changed || len(m.Gone) != tt.gone {
				t.Fatalf("delta with %d nodes and %d gone, want %d and %d", len(m.Nodes), len(m.Gone), tt.changed, tt.gone)
			}
		})
	}
}
