package node

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// The directory line assembled from the cached encoding is byte for byte
// what encoding the whole message would give.
func TestDirectoryLineMatchesEncode(t *testing.T) {
	taken := time.Unix(1000, 0)
	tests := []struct {
		name  string
		nodes []directory.Node
		now   time.Time
	}{
		{"no nodes", nil, taken},
		{"one node, just taken", []directory.Node{{ID: "n1", Addr: "127.0.0.1:7070", Status: directory.Up, Capacity: 10}}, taken},
		{"several, later", []directory.Node{
			{ID: "n1", Addr: "127.0.0.1:7070", HTTP: "127.0.0.1:7071", Group: "eu/a", Status: directory.Up, Users: 3, Capacity: 10, Version: "dev", AgeMS: 12},
			{ID: "n\"2", Addr: "[::1]:7070", Group: "us <&>", Status: directory.Down, Users: 0, Capacity: 5, AgeMS: 900},
			{ID: "n3é", Addr: "h:1", Status: directory.Full, Users: 5, Capacity: 5},
		}, taken.Add(1500 * time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &view{nodes: tt.nodes, taken: taken}
			for range 2 { // the second read uses the cache
				got, err := v.directoryLine("chat.local", "n1", tt.now)
				if err != nil {
					t.Fatal(err)
				}
				nodes := make([]directory.Node, len(tt.nodes))
				for i, n := range tt.nodes {
					n.AgeMS += tt.now.Sub(taken).Milliseconds()
					nodes[i] = n
				}
				want, err := wire.Encode(wire.DirectoryMessage(&wire.Directory{Service: "chat.local", Self: "n1", Nodes: nodes}))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(string(got), string(want)); diff != "" {
					t.Errorf("directory line (-got +want):\n%s", diff)
				}
			}
		})
	}
}
