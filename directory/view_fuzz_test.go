package directory_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/directory"
)

// FuzzSample builds a directory from the fuzzer's bytes (four a node:
// group, status, users and capacity) and a request, and checks what every
// view must be: sorted distinct indices, at most Max, within Budget by the
// sizes given, every node when all fit, and never an unavailable node
// while an available one that would fit is left out.
func FuzzSample(f *testing.F) {
	f.Add(uint8(3), uint16(0), uint64(1), []byte{0, 1, 5, 10, 1, 1, 0, 10, 2, 4, 3, 3})
	f.Add(uint8(0), uint16(500), uint64(2), []byte{3, 1, 9, 9, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, max uint8, budget uint16, seed uint64, data []byte) {
		groups := []string{"", "eu", "eu/a", "eu/b", "us/a"}
		statuses := []directory.Status{directory.Starting, directory.Up, directory.Up, directory.Draining, directory.Full, directory.Down, directory.Degraded}
		var nodes []directory.Node
		for i := 0; i+4 <= len(data) && len(nodes) < 300; i += 4 {
			nodes = append(nodes, directory.Node{
				ID: string(rune('a'+len(nodes)%26)) + string(rune('a'+len(nodes)/26)), Addr: "h:1",
				Group:  groups[int(data[i])%len(groups)],
				Status: statuses[int(data[i+1])%len(statuses)],
				Users:  int(data[i+2]), Capacity: int(data[i+3]),
			})
		}
		slices.SortFunc(nodes, func(a, b directory.Node) int { return compareStrings(a.ID, b.ID) })
		size := func(i int) int { return 10 + nodes[i].Users%7 }
		req := directory.ViewRequest{Max: int(max % 40), Group: groups[int(seed%uint64(len(groups)))], Budget: int(budget), Size: size}
		idx := directory.Sample(nodes, req, rand.New(rand.NewPCG(seed, seed)))
		if !slices.IsSorted(idx) || len(slices.Compact(slices.Clone(idx))) != len(idx) {
			t.Fatalf("indices not sorted and distinct: %v", idx)
		}
		in := make(map[int]bool, len(idx))
		used := 0
		for _, i := range idx {
			if i < 0 || i >= len(nodes) {
				t.Fatalf("index %d of %d nodes", i, len(nodes))
			}
			in[i] = true
			used += size(i)
		}
		if req.Max > 0 && len(idx) > req.Max {
			t.Fatalf("%d nodes, max %d", len(idx), req.Max)
		}
		total := 0
		for i := range nodes {
			total += size(i)
		}
		if req.Budget > 0 && used > req.Budget {
			t.Fatalf("%d bytes, budget %d", used, req.Budget)
		}
		if (req.Max == 0 || req.Max >= len(nodes)) && (req.Budget == 0 || total <= req.Budget) && len(idx) != len(nodes) {
			t.Fatalf("%d of %d nodes though all fit", len(idx), len(nodes))
		}
		full := req.Max > 0 && len(idx) == req.Max
		for i := range nodes {
			if in[i] || !nodes[i].Available() || full || (req.Budget > 0 && used+size(i) > req.Budget) {
				continue
			}
			for _, j := range idx {
				if !nodes[j].Available() {
					t.Fatalf("unavailable %s is in while available %s, which fits, is out", nodes[j].ID, nodes[i].ID)
				}
			}
		}
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
