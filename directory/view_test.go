package directory_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/directory"
)

// viewCluster is n nodes in three regions of two zones each, every tenth
// one unavailable (full, draining or down in turn), users growing with i.
func viewCluster(n int) []directory.Node {
	groups := []string{"eu/a", "eu/b", "us/a", "us/b", "ap/a", "ap/b"}
	nodes := make([]directory.Node, n)
	for i := range nodes {
		nodes[i] = directory.Node{
			ID: fmt.Sprintf("n%05d", i), Addr: fmt.Sprintf("10.0.%d.%d:7070", i/250, i%250),
			Group: groups[i%len(groups)], Status: directory.Up, Users: i % 900, Capacity: 1000, Version: "1.0.0",
		}
		if i%10 == 9 {
			nodes[i].Status = []directory.Status{directory.Full, directory.Draining, directory.Down}[(i/10)%3]
		}
	}
	return nodes
}

// The view's promises, checked for many requests against a direct count:
// sorted indices of distinct nodes, at most Max, within Budget; whole when
// everything fits; the client's group first (as many of its available
// nodes as the view holds but for its outside share); unavailable nodes
// only when every available one is in.
func TestSampleProperties(t *testing.T) {
	nodes := viewCluster(600)
	r := rand.New(rand.NewPCG(7, 7))
	sizes := make([]int, len(nodes))
	total := 0
	for i, n := range nodes {
		sizes[i] = directory.EncodedSize(n)
		total += sizes[i]
	}
	for _, req := range []directory.ViewRequest{
		{}, {Max: 600}, {Max: 1000, Group: "eu/a"}, {Budget: total},
		{Max: 64, Group: "eu/a"}, {Max: 64, Group: "us"}, {Max: 64}, {Max: 1}, {Max: 2, Group: "ap/b"},
		{Max: 500, Group: "eu/b"}, {Budget: 16 << 10, Group: "eu/a"}, {Max: 64, Budget: 1000, Group: "us/b"},
		{Max: 590, Group: "eu/a"},
	} {
		t.Run(fmt.Sprintf("max=%d,group=%s,budget=%d", req.Max, req.Group, req.Budget), func(t *testing.T) {
			for range 20 {
				idx := directory.Sample(nodes, req, r)
				if !slices.IsSorted(idx) || len(slices.Compact(slices.Clone(idx))) != len(idx) {
					t.Fatalf("indices not sorted and distinct: %v", idx)
				}
				whole := (req.Max == 0 || req.Max >= len(nodes)) && (req.Budget == 0 || req.Budget >= total)
				if whole {
					if len(idx) != len(nodes) {
						t.Fatalf("%d of %d nodes, want all: they fit", len(idx), len(nodes))
					}
					continue
				}
				limit := len(nodes)
				if req.Max > 0 {
					limit = req.Max
				}
				used := 0
				var own, outside, unavailable int
				for _, i := range idx {
					used += sizes[i]
					n := nodes[i]
					switch {
					case !n.Available():
						unavailable++
					case req.Group != "" && n.Region() == regionOf(req.Group):
						own++
					default:
						outside++
					}
				}
				if len(idx) > limit || (req.Budget > 0 && used > req.Budget) {
					t.Fatalf("%d nodes of %d bytes, past max %d or budget %d", len(idx), used, req.Max, req.Budget)
				}
				if req.Budget == 0 && len(idx) != limit {
					t.Fatalf("%d nodes, want %d", len(idx), limit)
				}
				availAll, availOwn := 0, 0
				for _, n := range nodes {
					if n.Available() {
						availAll++
						if req.Group != "" && n.Region() == regionOf(req.Group) {
							availOwn++
						}
					}
				}
				if unavailable > 0 && own+outside < availAll {
					t.Fatalf("%d unavailable nodes in a view that lacks available ones", unavailable)
				}
				if req.Group != "" && req.Budget == 0 {
					wantOwn := min(limit-max(limit/directory.OutsideShare, 1), availOwn)
					if own < wantOwn {
						t.Fatalf("%d nodes of the client's region, want at least %d", own, wantOwn)
					}
					if outside == 0 {
						t.Fatal("no node outside the client's region")
					}
				}
			}
		})
	}
}

func regionOf(group string) string {
	for i := range len(group) {
		if group[i] == '/' {
			return group[:i]
		}
	}
	return group
}

// Within the client's zone, nodes are drawn by spare capacity: over many
// views of one node from two candidates, the emptier is drawn about as
// much more often as it has more room.
func TestSampleWeightsBySpare(t *testing.T) {
	nodes := []directory.Node{
		{ID: "a", Addr: "a:1", Group: "eu/a", Status: directory.Up, Users: 900, Capacity: 1000}, // 100 spare
		{ID: "b", Addr: "b:1", Group: "eu/a", Status: directory.Up, Users: 700, Capacity: 1000}, // 300 spare
		{ID: "c", Addr: "c:1", Group: "eu/a", Status: directory.Full, Users: 1000, Capacity: 1000},
	}
	r := rand.New(rand.NewPCG(1, 1))
	count := map[string]int{}
	const trials = 20000
	for range trials {
		v := directory.View(nodes, directory.ViewRequest{Max: 1, Group: "eu/a"}, r)
		if len(v) != 1 {
			t.Fatalf("view of %d nodes, want 1", len(v))
		}
		count[v[0].ID]++
	}
	if count["c"] != 0 {
		t.Errorf("the full node was drawn %d times while others had room", count["c"])
	}
	// Expected 3/4 for b; 20,000 draws put it within 0.73..0.77 all but surely.
	if share := float64(count["b"]) / trials; share < 0.73 || share > 0.77 {
		t.Errorf("b (three times a's room) drawn %.3f of the time, want about 0.75", share)
	}
}

// Views drawn for different clients differ: clients with one stale
// directory do not all see the same few nodes.
func TestSampleVariesByClient(t *testing.T) {
	nodes := viewCluster(1000)
	r := rand.New(rand.NewPCG(3, 3))
	seen := map[int]bool{}
	for range 50 {
		for _, i := range directory.Sample(nodes, directory.ViewRequest{Max: 32, Group: "eu/a"}, r) {
			seen[i] = true
		}
	}
	if len(seen) < 200 {
		t.Errorf("50 views of 32 covered only %d nodes", len(seen))
	}
}

// A view of 1,000 nodes for a client that asks for 64 encodes within the
// 16 KiB a hello's answer may take at that size.
func TestViewOfAThousandFitsSixteenKiB(t *testing.T) {
	nodes := make([]directory.Node, 1000)
	for i := range nodes {
		nodes[i] = directory.Node{
			ID: fmt.Sprintf("node-%04d", i), Addr: fmt.Sprintf("10.1.%d.%d:7070", i/250, i%250),
			HTTP: fmt.Sprintf("10.1.%d.%d:7071", i/250, i%250), Group: "eu/a", Status: directory.Up,
			Users: 1234, Capacity: 10000, Version: "1.4.2", AgeMS: 199,
		}
	}
	view := directory.View(nodes, directory.ViewRequest{Max: 64, Group: "eu/a"}, rand.New(rand.NewPCG(1, 1)))
	data, err := json.Marshal(view)
	if err != nil {
		t.Fatal(err)
	}
	if len(view) != 64 || len(data) > 16<<10 {
		t.Fatalf("%d nodes in %d bytes, want 64 within 16 KiB", len(view), len(data))
	}
}

// The share kept for elsewhere holds when the line's budget, not the
// client's max, bounds the view: a client whose region holds more nodes
// than fit in a line (a v1 client, which sends no max, in a large
// cluster; or entries long enough that 64 do not fit) still gets about
// a quarter of its view outside its region, and about three quarters
// in it. Before, the region's nodes took the whole budget and the view
// held none elsewhere: a client whose region failed knew nowhere to go.
func TestSampleKeepsElsewhereWithinBudget(t *testing.T) {
	cluster := func(n, own int, pad int) []directory.Node {
		nodes := make([]directory.Node, n)
		for i := range nodes {
			group := "us/a"
			if i < own {
				group = []string{"eu/a", "eu/b"}[i%2]
			}
			nodes[i] = directory.Node{
				ID: fmt.Sprintf("node-%04d", i), Addr: fmt.Sprintf("10.1.%d.%d:7070", i/250, i%250) + strings.Repeat("x", pad),
				Group: group, Status: directory.Up, Users: i % 100, Capacity: 1000, Version: "1.4.2",
			}
		}
		return nodes
	}
	tests := []struct {
		name  string
		nodes []directory.Node
		req   directory.ViewRequest
	}{
		{"a v1 client, 900 of 1,000 nodes in its region", cluster(1000, 900, 0), directory.ViewRequest{Group: "eu/a", Budget: 60 << 10}},
		{"a v1 client, its zone alone fills the line", cluster(2000, 1800, 0), directory.ViewRequest{Group: "eu/b", Budget: 60 << 10}},
		{"64 asked, long entries", cluster(500, 400, 1500), directory.ViewRequest{Max: 64, Group: "eu", Budget: 60 << 10}},
	}
	r := rand.New(rand.NewPCG(5, 5))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			used, own, elsewhere := 0, 0, 0
			idx := directory.Sample(tt.nodes, tt.req, r)
			for _, i := range idx {
				used += directory.EncodedSize(tt.nodes[i])
				if tt.nodes[i].Region() == regionOf(tt.req.Group) {
					own++
				} else {
					elsewhere++
				}
			}
			if used > tt.req.Budget || (tt.req.Max > 0 && len(idx) > tt.req.Max) {
				t.Fatalf("%d nodes of %d bytes, past the max %d or the budget %d", len(idx), used, tt.req.Max, tt.req.Budget)
			}
			quarter := len(idx) / directory.OutsideShare
			if elsewhere < max(1, quarter-1) || own < len(idx)-quarter-1 {
				t.Fatalf("%d nodes in the client's region and %d elsewhere, want about %d elsewhere", own, elsewhere, quarter)
			}
		})
	}
}

// A view chosen from a Draw is the view Sample gives with the same
// random numbers, for any max and budget; and clients whose groups have
// the same GroupKey (a zone no node is in counts as its region, a group
// matching nothing as none) get the same view from the same numbers, so
// that a push may draw once for all of them.
func TestDrawChoosesAsSample(t *testing.T) {
	nodes := viewCluster(600)
	nodes = append(nodes, directory.Node{ID: "z-eu", Addr: "z:1", Group: "eu", Status: directory.Up, Capacity: 10})
	groups := directory.NewGroups(nodes)
	for _, tt := range []struct {
		group string
		alike []string // groups with its key
		key   directory.GroupKey
	}{
		{"eu/a", nil, directory.GroupKey{Zone: "eu/a", Region: "eu"}},
		{"eu", nil, directory.GroupKey{Zone: "eu", Region: "eu"}},
		{"us/zz", []string{"us", "us/", "us/yy/xx"}, directory.GroupKey{Region: "us"}},
		{"", []string{"made-up", "/", "mars/a", "xx/eu"}, directory.GroupKey{}},
	} {
		if got := groups.Key(tt.group); got != tt.key {
			t.Errorf("Key(%q) = %+v, want %+v", tt.group, got, tt.key)
		}
		for _, req := range []directory.ViewRequest{{Max: 1}, {Max: 64}, {Max: 599}, {Budget: 16 << 10}, {Max: 64, Budget: 2000}} {
			req.Group = tt.group
			want := directory.Sample(nodes, req, rand.New(rand.NewPCG(9, 9)))
			got := directory.NewDraw(nodes, tt.group, rand.New(rand.NewPCG(9, 9))).Choose(req)
			if !slices.Equal(got, want) {
				t.Errorf("group %q, max %d, budget %d: Choose %v, Sample %v", tt.group, req.Max, req.Budget, got, want)
			}
			for _, g := range tt.alike {
				if k := groups.Key(g); k != tt.key {
					t.Errorf("Key(%q) = %+v, want %+v as %q's", g, k, tt.key, tt.group)
				}
				req.Group = g
				if alike := directory.Sample(nodes, req, rand.New(rand.NewPCG(9, 9))); !slices.Equal(alike, want) {
					t.Errorf("group %q, max %d, budget %d: %v, but %q with the same key got %v", g, req.Max, req.Budget, alike, tt.group, want)
				}
			}
		}
	}
	if _, ok := directory.Whole(nodes[:10], directory.ViewRequest{Max: 10}); !ok {
		t.Errorf("10 nodes do not fit a view of 10")
	}
	if _, ok := directory.Whole(nodes[:10], directory.ViewRequest{Max: 9}); ok {
		t.Error("10 nodes fit a view of 9")
	}
}
