package client

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

func TestApplyDelta(t *testing.T) {
	node := func(id string, status directory.Status, age int64) directory.Node {
		return directory.Node{ID: id, Addr: id + ":7070", Status: status, AgeMS: age}
	}
	held := &wire.Directory{Service: "s", Self: "a", Nodes: []directory.Node{
		node("a", directory.Up, 10), node("b", directory.Up, 20), node("c", directory.Up, 30),
	}}
	tests := []struct {
		name    string
		held    *wire.Directory
		delta   *wire.Directory
		max     int
		want    *wire.Directory
		wantOld []directory.Node // held afterwards: never changed
	}{{
		name:  "a status change replaces the entry, the others age",
		held:  held,
		delta: &wire.Directory{Service: "s", Self: "a", Delta: true, Total: 3, Nodes: []directory.Node{node("b", directory.Down, 5)}},
		max:   64,
		want: &wire.Directory{Service: "s", Self: "a", Nodes: []directory.Node{
			node("a", directory.Up, 1010), node("b", directory.Down, 5), node("c", directory.Up, 1030),
		}},
	}, {
		name:  "a newcomer is added while there is room, gone ones dropped",
		held:  held,
		delta: &wire.Directory{Service: "s", Self: "a", Delta: true, Total: 3, Nodes: []directory.Node{node("d", directory.Starting, 1)}, Gone: []string{"c"}},
		max:   64,
		want: &wire.Directory{Service: "s", Self: "a", Nodes: []directory.Node{
			node("a", directory.Up, 1010), node("b", directory.Up, 1020), node("d", directory.Starting, 1),
		}},
	}, {
		name:  "a full view takes no newcomer and says it is a view",
		held:  held,
		delta: &wire.Directory{Service: "s", Self: "a", Delta: true, Total: 4, Nodes: []directory.Node{node("d", directory.Up, 1), node("a", directory.Draining, 2)}},
		max:   3,
		want: &wire.Directory{Service: "s", Self: "a", Total: 4, Nodes: []directory.Node{
			node("a", directory.Draining, 2), node("b", directory.Up, 1020), node("c", directory.Up, 1030),
		}},
	}, {
		name:  "nothing held: the changes are the directory",
		held:  nil,
		delta: &wire.Directory{Service: "s", Self: "a", Delta: true, Total: 5, Nodes: []directory.Node{node("d", directory.Up, 1)}},
		max:   64,
		want:  &wire.Directory{Service: "s", Self: "a", Total: 5, Nodes: []directory.Node{node("d", directory.Up, 1)}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []directory.Node
			if tt.held != nil {
				before = append(before, tt.held.Nodes...)
			}
			got := applyDelta(tt.held, time.Second, tt.delta, tt.max)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("applyDelta (-want +got):\n%s", diff)
			}
			if tt.held != nil {
				if diff := cmp.Diff(before, tt.held.Nodes); diff != "" {
					t.Errorf("held changed (-before +after):\n%s", diff)
				}
			}
		})
	}
}

// Large pushes take the indexed path; it gives what the plain one does.
func TestApplyDeltaLarge(t *testing.T) {
	nodes := func(from, to int, status directory.Status) []directory.Node {
		var out []directory.Node
		for i := from; i < to; i++ {
			out = append(out, directory.Node{ID: fmt.Sprintf("n%d", i), Status: status, AgeMS: int64(i)})
		}
		return out
	}
	held := &wire.Directory{Nodes: nodes(0, 3000, directory.Up)}
	var gone []string
	for i := 0; i < 3000; i += 3 {
		gone = append(gone, fmt.Sprintf("n%d", i))
	}
	d := &wire.Directory{Delta: true, Nodes: nodes(1500, 4500, directory.Full), Gone: gone}
	if len(d.Nodes)*len(held.Nodes) <= linearDelta || len(gone)*len(held.Nodes) <= linearDelta {
		t.Fatal("the push is too small to take the indexed path")
	}
	for _, max := range []int{0, 2500} {
		got := applyDelta(held, 0, d, max)
		// The plain rule, one node at a time.
		var want []directory.Node
		for _, n := range held.Nodes {
			if !slices.Contains(gone, n.ID) {
				want = append(want, n)
			}
		}
		for _, n := range d.Nodes {
			if i := slices.IndexFunc(want, func(h directory.Node) bool { return h.ID == n.ID }); i >= 0 {
				want[i] = n
			} else if max <= 0 || len(want) < max {
				want = append(want, n)
			}
		}
		if diff := cmp.Diff(want, got.Nodes); diff != "" {
			t.Errorf("max %d: applyDelta (-want +got):\n%s", max, diff)
		}
	}
}
