package pick

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/switchboard/switchboard/directory"
)

// This file checks the policies against deliberately simple brute-force
// versions (as raft checks its quorum code). The policies are random, so we
// compare exact probability distributions: enumerate runs a policy once for
// every sequence of answers its Rand can give, weighting each run by the
// probability of that sequence, and the brute force computes the same
// distribution from the definition.

type choice struct{ v, n int }

// replay answers IntN from a recorded path and extends it with zeros.
type replay struct {
	path []choice
	pos  int
}

func (r *replay) IntN(n int) int {
	if r.pos < len(r.path) {
		c := r.path[r.pos]
		if c.n != n {
			panic(fmt.Sprintf("replay: IntN(%d) where the path had IntN(%d)", n, c.n))
		}
		r.pos++
		return c.v
	}
	r.path = append(r.path, choice{0, n})
	r.pos++
	return 0
}

// enumerate returns the exact distribution of f's result over all the
// answers its Rand may give.
func enumerate(f func(r Rand) string) map[string]float64 {
	dist := map[string]float64{}
	var path []choice
	for {
		r := &replay{path: path}
		out := f(r)
		path = r.path[:r.pos]
		p := 1.0
		for _, c := range path {
			p /= float64(c.n)
		}
		dist[out] += p
		// Advance the path like an odometer, last draw first.
		for len(path) > 0 && path[len(path)-1].v+1 == path[len(path)-1].n {
			path = path[:len(path)-1]
		}
		if len(path) == 0 {
			return dist
		}
		path = append([]choice(nil), path...)
		path[len(path)-1].v++
	}
}

// bruteP2C: every unordered pair is equally likely; the lower load wins,
// a tie is a coin toss.
func bruteP2C(nodes []directory.Node) map[string]float64 {
	dist := map[string]float64{}
	n := len(nodes)
	if n == 1 {
		dist[nodes[0].ID] = 1
		return dist
	}
	pairs := float64(n * (n - 1) / 2)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			a, b := nodes[i], nodes[j]
			switch {
			case a.Load() < b.Load():
				dist[a.ID] += 1 / pairs
			case b.Load() < a.Load():
				dist[b.ID] += 1 / pairs
			default:
				dist[a.ID] += 0.5 / pairs
				dist[b.ID] += 0.5 / pairs
			}
		}
	}
	return dist
}

// uniform spreads probability 1 evenly over the nodes ok accepts.
func uniform(nodes []directory.Node, ok func(directory.Node) bool) map[string]float64 {
	var in []string
	for _, n := range nodes {
		if ok(n) {
			in = append(in, n.ID)
		}
	}
	dist := map[string]float64{}
	for _, id := range in {
		dist[id] += 1 / float64(len(in))
	}
	return dist
}

func leastLoad(nodes []directory.Node) float64 {
	least := 2.0
	for _, n := range nodes {
		if n.Load() < least {
			least = n.Load()
		}
	}
	return least
}

// bruteTiers is group affinity written as three plain filters tried in turn.
func bruteTiers(nodes []directory.Node, group string) (kept []directory.Node, tier string) {
	regionOf := func(g string) string { return strings.SplitN(g, "/", 2)[0] }
	filter := func(ok func(directory.Node) bool) []directory.Node {
		var out []directory.Node
		for _, n := range nodes {
			if ok(n) {
				out = append(out, n)
			}
		}
		return out
	}
	if group == "" {
		return nodes, "anywhere"
	}
	if strings.Contains(group, "/") {
		if z := filter(func(n directory.Node) bool { return n.Group == group }); len(z) > 0 {
			return z, "zone"
		}
	}
	if r := filter(func(n directory.Node) bool { return regionOf(n.Group) == regionOf(group) }); len(r) > 0 {
		return r, "region"
	}
	return nodes, "anywhere"
}

var groups = []string{"", "eu", "eu/a", "eu/b", "us", "us/a", "us/b"}

// randomTable makes a table with many load ties and a mix of statuses.
func randomTable(r *rand.Rand, n int) []directory.Node {
	statuses := []directory.Status{directory.Up, directory.Up, directory.Up, directory.Draining, directory.Down}
	caps := []int{1, 2, 4, 10}
	nodes := make([]directory.Node, n)
	for i := range nodes {
		c := caps[r.IntN(len(caps))]
		nodes[i] = directory.Node{
			ID: fmt.Sprintf("n%d", i), Group: groups[r.IntN(len(groups))],
			Status: statuses[r.IntN(len(statuses))], Users: r.IntN(c + 1), Capacity: c,
		}
	}
	return nodes
}

var approx = cmpopts.EquateApprox(0, 1e-9)

func TestBruteForceChoosers(t *testing.T) {
	src := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		nodes := randomTable(src, 1+src.IntN(7))
		pickID := func(p Policy) func(Rand) string {
			return func(r Rand) string {
				res, err := p.Pick(nodes, Request{})
				if err != nil {
					return "error"
				}
				return res.Node.ID
			}
		}
		least := leastLoad(nodes)
		tests := []struct {
			name string
			got  map[string]float64
			want map[string]float64
		}{
			{"p2c", enumerate(func(r Rand) string { return pickID(P2C(r))(r) }), bruteP2C(nodes)},
			{"random", enumerate(func(r Rand) string { return pickID(Random(r))(r) }), uniform(nodes, func(directory.Node) bool { return true })},
			{"least-users", enumerate(func(r Rand) string { return pickID(LeastUsers(r))(r) }), uniform(nodes, func(n directory.Node) bool { return n.Load() == least })},
			{
				// Margin off: with no connected node among them, a node
				// just above the slack gets a part of the picks (spread),
				// drawn from 2^20 values, too many to enumerate;
				// TestBalancedSpreads checks that part.
				"balanced fresh",
				enumerate(func(r Rand) string { return pickID(Balanced{Rand: r, Slack: 0.25, Margin: -1})(r) }),
				uniform(nodes, func(n directory.Node) bool { return n.Load() <= least*1.25+1/float64(n.Capacity) }),
			},
		}
		for _, tt := range tests {
			if diff := cmp.Diff(tt.got, tt.want, approx); diff != "" {
				t.Fatalf("trial %d, %s on %v (-got +want):\n%s", trial, tt.name, nodes, diff)
			}
		}
	}
}

func TestBruteForceAffinity(t *testing.T) {
	src := rand.New(rand.NewPCG(3, 4))
	for trial := range 2000 {
		nodes := randomTable(src, src.IntN(8))
		group := groups[src.IntN(len(groups))]
		if src.IntN(10) == 0 {
			group = "ap/x" // a region no node is in
		}
		kept, note := Affinity(nodes, Request{Group: group})
		wantKept, wantTier := bruteTiers(nodes, group)
		if diff := cmp.Diff(ids(kept), ids(wantKept)); diff != "" {
			t.Fatalf("trial %d, group %q on %v (-got +want):\n%s", trial, group, nodes, diff)
		}
		if !strings.HasPrefix(note, "group: "+wantTier) {
			t.Fatalf("trial %d, group %q: note %q, want tier %q", trial, group, note, wantTier)
		}
	}
}

// TestBruteForceGroupPolicy checks the whole "group" policy (status, then
// tiers, then uniform) against the brute force, exclusions included.
func TestBruteForceGroupPolicy(t *testing.T) {
	src := rand.New(rand.NewPCG(5, 6))
	for trial := range 500 {
		nodes := randomTable(src, src.IntN(8))
		group := groups[src.IntN(len(groups))]
		excluded := fmt.Sprintf("n%d", src.IntN(8))
		req := Request{Group: group, Exclude: func(id string) bool { return id == excluded }}

		var avail []directory.Node
		for _, n := range nodes {
			if n.Status == directory.Up && n.Users < n.Capacity && n.ID != excluded {
				avail = append(avail, n)
			}
		}
		want := map[string]float64{"error": 1}
		if len(avail) > 0 {
			tier, _ := bruteTiers(avail, group)
			want = uniform(tier, func(directory.Node) bool { return true })
		}
		got := enumerate(func(r Rand) string {
			p, _ := ByName("group", r)
			res, err := p.Pick(nodes, req)
			if err != nil {
				return "error"
			}
			return res.Node.ID
		})
		if diff := cmp.Diff(got, want, approx); diff != "" {
			t.Fatalf("trial %d, group %q, excluding %s, on %v (-got +want):\n%s", trial, group, excluded, nodes, diff)
		}
	}
}

// bruteSampled: Balanced comparing k of nodes (Margin off): every k-subset
// that holds self (when self is among nodes) is equally likely; within
// it, self if it is within the slack of the subset's least load, else
// uniformly among those within it.
func bruteSampled(nodes []directory.Node, k int, self string, slack float64) map[string]float64 {
	dist := map[string]float64{}
	if len(nodes) <= k {
		k = len(nodes)
	}
	var subsets [][]directory.Node
	var walk func(i int, cur []directory.Node)
	walk = func(i int, cur []directory.Node) {
		if len(cur) == k {
			subsets = append(subsets, append([]directory.Node(nil), cur...))
			return
		}
		for j := i; j < len(nodes); j++ {
			walk(j+1, append(cur, nodes[j]))
		}
	}
	walk(0, nil)
	var kept [][]directory.Node
	for _, s := range subsets {
		has := self == ""
		for _, n := range s {
			has = has || n.ID == self
		}
		if has || !slices.ContainsFunc(nodes, func(n directory.Node) bool { return n.ID == self }) {
			kept = append(kept, s)
		}
	}
	for _, s := range kept {
		least := leastLoad(s)
		near := func(n directory.Node) bool { return n.Load() <= least*(1+slack)+1/float64(n.Capacity) }
		if slices.ContainsFunc(s, func(n directory.Node) bool { return n.ID == self && near(n) }) {
			dist[self] += 1 / float64(len(kept))
			continue
		}
		for id, p := range uniform(s, near) {
			dist[id] += p / float64(len(kept))
		}
	}
	return dist
}

// TestBruteForceBalancedSample checks a fresh Balanced that compares a
// sample against every subset it may draw, with and without a connected
// node.
func TestBruteForceBalancedSample(t *testing.T) {
	src := rand.New(rand.NewPCG(3, 4))
	for trial := range 100 {
		nodes := randomTable(src, 4+src.IntN(4))
		for i := range nodes {
			nodes[i].Status, nodes[i].AgeMS = directory.Up, 0
		}
		self := ""
		if trial%2 == 1 {
			self = nodes[src.IntN(len(nodes))].ID
		}
		got := enumerate(func(r Rand) string {
			res, err := Balanced{Rand: r, Slack: 0.25, Sample: 3}.Pick(nodes, Request{Self: self})
			if err != nil {
				return "error"
			}
			return res.Node.ID
		})
		if diff := cmp.Diff(got, bruteSampled(nodes, 3, self, 0.25), approx); diff != "" {
			t.Fatalf("trial %d, self %q, on %v (-got +want):\n%s", trial, self, nodes, diff)
		}
	}
}

// TestBalancedLeavesOutSilentNodes: fresh, a node whose entry is older
// than half of FreshAge (it may have died, its count frozen) is not
// picked as the least loaded while others were heard from; when none
// was, the numbers are all there is.
func TestBalancedLeavesOutSilentNodes(t *testing.T) {
	nodes := []directory.Node{
		{ID: "n1", Status: directory.Up, Users: 50, Capacity: 100, AgeMS: 5},
		{ID: "n2", Status: directory.Up, Users: 10, Capacity: 100, AgeMS: 700},
		{ID: "n3", Status: directory.Up, Users: 30, Capacity: 100, AgeMS: 5},
	}
	res, err := Balanced{Rand: NewRand(1)}.Pick(nodes, Request{})
	if err != nil || res.Node.ID != "n3" {
		t.Errorf("picked %s (%v, %s), want n3: n2 was not heard from for 700 ms", res.Node.ID, err, res.Reason)
	}
	for i := range nodes {
		nodes[i].AgeMS = 700
	}
	if res, err := (Balanced{Rand: NewRand(1)}).Pick(nodes, Request{}); err != nil || res.Node.ID != "n2" {
		t.Errorf("all silent: picked %s (%v), want n2, the least loaded", res.Node.ID, err)
	}
}

// A node that stopped sending (paused, or dead and not yet marked down)
// shows its last count, which soon looks least loaded, and its entry
// ages. Balanced leaves it out before it judges how old the numbers are:
// it neither turns every pick to p2c nor is picked by it. (Judged first,
// its age made the directory stale, and p2c picked it in about 3% of the
// picks, more the older it was.)
func TestBalancedNeverPicksASilentNode(t *testing.T) {
	var nodes []directory.Node
	for i := range 64 {
		nodes = append(nodes, directory.Node{ID: fmt.Sprintf("n%02d", i), Status: directory.Up, Users: 500, Capacity: 1000, HeartbeatMS: 2000, AgeMS: 100})
	}
	nodes[7].Users, nodes[7].AgeMS = 300, 3500
	for _, age := range []time.Duration{0, 2 * time.Second} {
		p := Default(NewRand(1))
		picked := 0
		for range 20_000 {
			res, err := p.Pick(nodes, Request{Age: age})
			if err != nil {
				t.Fatal(err)
			}
			if res.Node.ID == "n07" {
				picked++
			}
		}
		if picked > 0 {
			t.Errorf("directory held %v: the silent node was picked %d times of 20,000", age, picked)
		}
	}
}

// When most entries are old, the age tells of the directory, not of its
// nodes: a session's copy kept up to date by pushes of changes shows the
// entries a push carried lately fresh, and the others as old as its last
// whole view. Leaving the old ones out as silent would send every
// session of a node that dies to the node whose join was pushed last.
func TestBalancedKeepsOldEntriesWhenMostAreOld(t *testing.T) {
	var nodes []directory.Node
	for i := range 64 {
		nodes = append(nodes, directory.Node{ID: fmt.Sprintf("n%02d", i), Status: directory.Up, Users: 500, Capacity: 1000, HeartbeatMS: 2000, AgeMS: 300_000})
	}
	nodes[63].Users, nodes[63].AgeMS = 0, 50 // joined, pushed lately
	p := Default(NewRand(1))
	picked := 0
	const picks = 20_000
	for range picks {
		res, err := p.Pick(nodes, Request{Age: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Node.ID == "n63" {
			picked++
		}
	}
	// p2c over all 64: the joined node wins each pair it is in, 2 of 64.
	if picked > picks/10 {
		t.Errorf("the node pushed lately took %d of %d picks, want about 2 in 64", picked, picks)
	}
}

// TestBruteForceBalancedLeavesOutSilent checks the picks among the nodes
// heard from, a sample of them or p2c when stale, against the brute
// force over those nodes alone.
func TestBruteForceBalancedLeavesOutSilent(t *testing.T) {
	src := rand.New(rand.NewPCG(7, 8))
	for trial := range 100 {
		nodes := randomTable(src, 5+src.IntN(4))
		var heard []directory.Node
		for i := range nodes {
			nodes[i].Status, nodes[i].AgeMS = directory.Up, 0
			if i < 2 && src.IntN(2) == 0 {
				nodes[i].AgeMS = 900 // silent: past half of FreshAge
			} else {
				heard = append(heard, nodes[i])
			}
		}
		self := ""
		if trial%2 == 1 {
			self = nodes[src.IntN(len(nodes))].ID
		}
		for _, age := range []time.Duration{0, 2 * time.Second} {
			got := enumerate(func(r Rand) string {
				// Margin off, as in TestBruteForceChoosers: three or
				// fewer heard from are compared whole.
				res, err := Balanced{Rand: r, Slack: 0.25, Sample: 3, Margin: -1}.Pick(nodes, Request{Self: self, Age: age})
				if err != nil {
					return "error"
				}
				return res.Node.ID
			})
			want := bruteSampled(heard, 3, self, 0.25)
			if age > 0 {
				want = bruteP2C(heard)
			}
			if diff := cmp.Diff(got, want, approx); diff != "" {
				t.Fatalf("trial %d, age %v, self %q, on %v (-got +want):\n%s", trial, age, self, nodes, diff)
			}
		}
	}
}

// A Sample past maxSample compares maxSample nodes, not all of them: 80
// candidates and Sample 100 compare 64, drawn, as the reason says.
// Before, the bound applied only once more candidates than Sample were
// left, so 80 were compared (and copied) for each pick.
func TestBalancedSampleIsBounded(t *testing.T) {
	var nodes []directory.Node
	for i := range 80 {
		nodes = append(nodes, directory.Node{ID: fmt.Sprintf("n%02d", i), Status: directory.Up, Users: 500, Capacity: 1000})
	}
	res, err := Balanced{Rand: NewRand(1), Sample: 100}.Pick(nodes, Request{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Reason, fmt.Sprintf(" of %d compared", maxSample)) {
		t.Errorf("Sample 100 of 80 candidates: %q, want %d compared", res.Reason, maxSample)
	}
}
