package pick

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/switchboard/switchboard/directory"
)

// script is a Rand that returns the given answers in order and fails the
// test if one is out of range or the script runs out.
type script struct {
	t       *testing.T
	answers []int
}

func (s *script) IntN(n int) int {
	s.t.Helper()
	if len(s.answers) == 0 {
		s.t.Fatalf("script: IntN(%d) called with no answers left", n)
	}
	v := s.answers[0]
	s.answers = s.answers[1:]
	if v < 0 || v >= n {
		s.t.Fatalf("script: answer %d out of range for IntN(%d)", v, n)
	}
	return v
}

// node builds an up node in group g with users u of capacity c.
func node(id, g string, u, c int) directory.Node {
	return directory.Node{ID: id, Addr: id + ":7000", Group: g, Status: directory.Up, Users: u, Capacity: c}
}

func withStatus(n directory.Node, s directory.Status) directory.Node {
	n.Status = s
	return n
}

func ids(nodes []directory.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

func TestChoosers(t *testing.T) {
	three := []directory.Node{node("n1", "eu/a", 50, 100), node("n2", "eu/a", 10, 100), node("n3", "eu/b", 10, 100)}
	tests := []struct {
		name    string
		policy  func(Rand) Policy
		nodes   []directory.Node
		answers []int
		want    Result
	}{
		{
			name: "random takes the drawn index", policy: Random, nodes: three, answers: []int{2},
			want: Result{Node: three[2], Reason: "random: n3 of 3"},
		},
		{
			name: "least-users breaks the tie n2/n3 by reservoir: second kept", policy: LeastUsers, nodes: three, answers: []int{0},
			want: Result{Node: three[2], Reason: "least-users: n3 (load 0.10), 2 of 3 tied"},
		},
		{
			name: "least-users breaks the tie n2/n3 by reservoir: first kept", policy: LeastUsers, nodes: three, answers: []int{1},
			want: Result{Node: three[1], Reason: "least-users: n2 (load 0.10), 2 of 3 tied"},
		},
		{
			name: "least-users compares load, not users", policy: LeastUsers,
			nodes: []directory.Node{node("big", "", 40, 100), node("small", "", 5, 10)},
			want:  Result{Node: node("big", "", 40, 100), Reason: "least-users: big (load 0.40), 1 of 2 tied"},
		},
		{
			name: "p2c takes the lower load of the pair", policy: P2C, nodes: three, answers: []int{0, 0},
			// i=0 (n1), j=0 -> 1 after skipping i (n2).
			want: Result{Node: three[1], Reason: "p2c: n2 (load 0.10) over n1 (load 0.50)"},
		},
		{
			name: "p2c: second draw skips the first", policy: P2C, nodes: three, answers: []int{1, 1, 0},
			// i=1 (n2), j=1 -> 2 (n3); tie broken by the third draw.
			want: Result{Node: three[1], Reason: "p2c: n2 (load 0.10) tied with n3 (load 0.10)"},
		},
		{
			name: "p2c tie the other way", policy: P2C, nodes: three, answers: []int{1, 1, 1},
			want: Result{Node: three[2], Reason: "p2c: n3 (load 0.10) tied with n2 (load 0.10)"},
		},
		{
			name: "p2c with one node draws nothing", policy: P2C, nodes: three[:1],
			want: Result{Node: three[0], Reason: "p2c: n1, the only candidate"},
		},
		{
			name: "balanced fresh takes the least loaded even when far apart", policy: func(r Rand) Policy { return Balanced{Rand: r} },
			nodes:   []directory.Node{node("old1", "", 1000, 2000), node("new", "", 0, 2000), node("old2", "", 1000, 2000)},
			answers: nil,
			want:    Result{Node: node("new", "", 0, 2000), Reason: "balanced: new (load 0.00), 1 of 3 near the least load (age 0s)"},
		},
		{
			// No margin: without a connected node, 507, just above the
			// slack, would get a part of the picks (TestBalancedSpreads).
			name: "balanced fresh: within 1% of the least load is a tie", policy: func(r Rand) Policy { return Balanced{Rand: r, Margin: -1} },
			// least 0.500; limit 0.500*1.01 + 1/1000 = 0.506: 505 ties, 507 does not.
			nodes:   []directory.Node{node("a", "", 507, 1000), node("b", "", 500, 1000), node("c", "", 505, 1000)},
			answers: []int{0},
			want:    Result{Node: node("c", "", 505, 1000), Reason: "balanced: c (load 0.51), 2 of 3 near the least load (age 0s)"},
		},
		{
			// Every entry old (one alone that old would be left out as
			// silent: the next cases).
			name: "balanced stale falls back to p2c", policy: func(r Rand) Policy { return Balanced{Rand: r} },
			nodes: []directory.Node{
				{ID: "a", Status: directory.Up, Users: 10, Capacity: 100, AgeMS: 1200},
				{ID: "b", Status: directory.Up, Users: 20, Capacity: 100, AgeMS: 1500},
				{ID: "c", Status: directory.Up, Users: 0, Capacity: 100, AgeMS: 1100},
			},
			answers: []int{0, 0},
			want: Result{
				Node:   directory.Node{ID: "a", Status: directory.Up, Users: 10, Capacity: 100, AgeMS: 1200},
				Reason: "balanced: stale (age 1.5s > 1s), p2c: a (load 0.10) over b (load 0.20)",
			},
		},
		{
			// A cluster of 100 sends heartbeats every 2 s: 1.5 s without
			// word is no news, and the numbers are fresh.
			name: "balanced: silence within a node's heartbeat is fresh", policy: func(r Rand) Policy { return Balanced{Rand: r} },
			nodes: []directory.Node{
				{ID: "a", Status: directory.Up, Users: 10, Capacity: 100, HeartbeatMS: 2000, AgeMS: 200},
				{ID: "b", Status: directory.Up, Users: 20, Capacity: 100, HeartbeatMS: 2000, AgeMS: 1500},
				{ID: "c", Status: directory.Up, Users: 0, Capacity: 100, HeartbeatMS: 2000, AgeMS: 1900},
			},
			want: Result{
				Node:   directory.Node{ID: "c", Status: directory.Up, Users: 0, Capacity: 100, HeartbeatMS: 2000, AgeMS: 1900},
				Reason: "balanced: c (load 0.00), 1 of 3 near the least load (age 0s)",
			},
		},
		{
			// b is 1.5 s past its heartbeat: silent, perhaps dead. It is
			// left out before the age of the numbers is judged, so it
			// neither makes the others' numbers stale nor is picked.
			// (It used to turn the pick to p2c, which then picked b in
			// one pair of three.)
			name: "balanced: a node overdue past its heartbeat by more than FreshAge is left out", policy: func(r Rand) Policy { return Balanced{Rand: r} },
			nodes: []directory.Node{
				{ID: "a", Status: directory.Up, Users: 10, Capacity: 100, HeartbeatMS: 2000, AgeMS: 200},
				{ID: "b", Status: directory.Up, Users: 20, Capacity: 100, HeartbeatMS: 2000, AgeMS: 3500},
				{ID: "c", Status: directory.Up, Users: 0, Capacity: 100, HeartbeatMS: 2000},
			},
			want: Result{
				Node:   directory.Node{ID: "c", Status: directory.Up, Users: 0, Capacity: 100, HeartbeatMS: 2000},
				Reason: "balanced: c (load 0.00), 1 of 2 compared of 3 near the least load (age 0s, 1 silent left out)",
			},
		},
		{
			// Fresh, but c is 700 ms past its heartbeat: it may have died
			// with its count frozen, so the others are compared.
			name: "balanced: a node overdue by half of FreshAge is left out", policy: func(r Rand) Policy { return Balanced{Rand: r} },
			nodes: []directory.Node{
				{ID: "a", Status: directory.Up, Users: 10, Capacity: 100, HeartbeatMS: 2000, AgeMS: 1900},
				{ID: "b", Status: directory.Up, Users: 20, Capacity: 100, HeartbeatMS: 2000, AgeMS: 100},
				{ID: "c", Status: directory.Up, Users: 0, Capacity: 100, HeartbeatMS: 2000, AgeMS: 2700},
			},
			want: Result{
				Node:   directory.Node{ID: "a", Status: directory.Up, Users: 10, Capacity: 100, HeartbeatMS: 2000, AgeMS: 1900},
				Reason: "balanced: a (load 0.10), 1 of 2 compared of 3 near the least load (age 0s, 1 silent left out)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &script{t: t, answers: tt.answers}
			got, err := tt.policy(r).Pick(tt.nodes, Request{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Pick (-got +want):\n%s", diff)
			}
			if len(r.answers) != 0 {
				t.Errorf("%d scripted answers left unused", len(r.answers))
			}
		})
	}
}

func TestBalancedRequestAge(t *testing.T) {
	nodes := []directory.Node{node("a", "", 10, 100), node("b", "", 20, 100)}
	nodes[0].AgeMS = 300
	// 300 ms + 800 ms held by the caller is older than the 1 s default.
	got, err := Balanced{Rand: &script{t: t, answers: []int{1, 0}}}.Pick(nodes, Request{Age: 800e6})
	if err != nil {
		t.Fatal(err)
	}
	if want := "balanced: stale (age 1.1s > 1s), p2c: a (load 0.10) over b (load 0.20)"; got.Reason != want {
		t.Errorf("Reason = %q, want %q", got.Reason, want)
	}
	// A negative FreshAge always uses p2c.
	got, err = Balanced{Rand: &script{t: t, answers: []int{1, 0}}, FreshAge: -1}.Pick(nodes[1:], Request{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "balanced: stale (age 0s > 0s), p2c: b, the only candidate"; got.Reason != want {
		t.Errorf("Reason = %q, want %q", got.Reason, want)
	}
	// An age past what a Duration holds (a forged entry) is stale, not
	// wrapped round to fresh. Both entries say it: one alone that old
	// would be left out as silent, and the other picked fresh.
	nodes[0].AgeMS, nodes[1].AgeMS = 1<<62, 1<<62
	got, err = Balanced{Rand: &script{t: t, answers: []int{1, 0}}}.Pick(nodes, Request{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Reason, "balanced: stale") {
		t.Errorf("Reason = %q with an age of 2^62 ms, want a stale pick", got.Reason)
	}
	nodes[1].AgeMS = 0
	got, err = Balanced{Rand: &script{t: t}}.Pick(nodes, Request{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "balanced: b (load 0.20), 1 of 1 compared of 2 near the least load (age 0s, 1 silent left out)"; got.Reason != want {
		t.Errorf("Reason = %q with one entry 2^62 ms old, want %q", got.Reason, want)
	}
}

func TestAvailable(t *testing.T) {
	all := []directory.Node{
		node("up", "", 1, 10),
		withStatus(node("starting", "", 0, 10), directory.Starting),
		withStatus(node("draining", "", 0, 10), directory.Draining),
		withStatus(node("full", "", 10, 10), directory.Full),
		withStatus(node("down", "", 0, 10), directory.Down),
		node("at-capacity", "", 10, 10),
		node("over-capacity", "", 11, 10),
		node("no-capacity", "", 0, 0),
		node("up2", "", 9, 10),
	}
	tests := []struct {
		name     string
		nodes    []directory.Node
		exclude  []string
		wantIDs  []string
		wantNote string
	}{
		{
			name: "only up with room", nodes: all,
			wantIDs: []string{"up", "up2"}, wantNote: "status: 2 of 9 available",
		},
		{
			name: "exclude honoured", nodes: all, exclude: []string{"up2"},
			wantIDs: []string{"up"}, wantNote: "status: 1 of 9 available",
		},
		{
			name: "all excluded or unavailable says why", nodes: all, exclude: []string{"up", "up2"},
			wantIDs:  []string{},
			wantNote: "status: 0 of 9 available (excluded 2, full 4, draining 1, starting 1, down 1)",
		},
		{
			name: "empty directory", nodes: nil,
			wantIDs: []string{}, wantNote: "status: 0 of 0 available (empty directory)",
		},
		{
			name: "all available returns them all", nodes: all[:1],
			wantIDs: []string{"up"}, wantNote: "status: 1 of 1 available",
		},
		{
			// No node sends such numbers (directory.Node.Validate refuses
			// them); an entry that has them is broken or forged, and a
			// negative count would look emptier than any real node.
			name: "negative users or capacity", nodes: []directory.Node{node("up", "", 1, 10), node("negative-users", "", -5, 10), node("negative-capacity", "", -5, -1)},
			wantIDs: []string{"up"}, wantNote: "status: 1 of 3 available",
		},
		{
			name: "only negative numbers says why", nodes: []directory.Node{node("negative-users", "", -5, 10), node("negative-capacity", "", -5, -1)},
			wantIDs: []string{}, wantNote: "status: 0 of 2 available (other 2)",
		},
		{
			// A node without an ID cannot be excluded once it fails
			// (package failover): a forged directory listing one would
			// have the client pick it again and again, never backing off.
			name: "no ID", nodes: []directory.Node{node("up", "", 1, 10), node("", "", 0, 10)},
			wantIDs: []string{"up"}, wantNote: "status: 1 of 2 available",
		},
		{
			name: "only no ID says why", nodes: []directory.Node{node("", "", 0, 10)}, exclude: []string{""},
			wantIDs: []string{}, wantNote: "status: 0 of 1 available (other 1)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Exclude: func(id string) bool { return contains(tt.exclude, id) }}
			kept, note := Available(tt.nodes, req)
			if diff := cmp.Diff(ids(kept), tt.wantIDs); diff != "" {
				t.Errorf("kept (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(note, tt.wantNote); diff != "" {
				t.Errorf("note (-got +want):\n%s", diff)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestNamedPoliciesPickOnlyAvailable draws many times from every named
// policy on a table where most nodes must never be picked.
func TestNamedPoliciesPickOnlyAvailable(t *testing.T) {
	nodes := []directory.Node{
		withStatus(node("starting", "eu/a", 0, 10), directory.Starting),
		withStatus(node("draining", "eu/a", 0, 10), directory.Draining),
		withStatus(node("full", "eu/a", 0, 10), directory.Full),
		withStatus(node("down", "eu/a", 0, 10), directory.Down),
		withStatus(node("degraded", "eu/a", 0, 10), directory.Degraded),
		withStatus(node("later", "eu/a", 0, 10), "resting"), // a later version's status
		node("at-capacity", "eu/a", 10, 10),
		node("over-capacity", "eu/a", 12, 10),
		node("excluded", "eu/a", 0, 10),
		node("ok1", "eu/b", 9, 10),
		node("ok2", "us/a", 5, 10),
	}
	req := Request{Group: "eu/a", Exclude: func(id string) bool { return id == "excluded" }}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			p, err := ByName(name, NewRand(7))
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for range 2000 {
				res, err := p.Pick(nodes, req)
				if err != nil {
					t.Fatal(err)
				}
				seen[res.Node.ID]++
			}
			for id := range seen {
				if id != "ok1" && id != "ok2" {
					t.Errorf("picked %s, which is not available", id)
				}
			}
		})
	}
}

func TestAffinity(t *testing.T) {
	nodes := []directory.Node{
		node("a1", "eu/a", 0, 10),
		node("a2", "eu/a", 0, 10),
		node("b1", "eu/b", 0, 10),
		node("eu", "eu", 0, 10),
		node("us", "us/a", 0, 10),
		node("none", "", 0, 10),
	}
	tests := []struct {
		name     string
		nodes    []directory.Node
		group    string
		wantIDs  []string
		wantNote string
	}{
		{
			name: "same zone", nodes: nodes, group: "eu/a",
			wantIDs: []string{"a1", "a2"}, wantNote: "group: zone eu/a (2 of 6)",
		},
		{
			name: "zone empty falls back to region", nodes: nodes, group: "eu/c",
			wantIDs: []string{"a1", "a2", "b1", "eu"}, wantNote: "group: region eu (4 of 6), none in zone eu/c",
		},
		{
			name: "region-only client starts at region", nodes: nodes, group: "eu",
			wantIDs: []string{"a1", "a2", "b1", "eu"}, wantNote: "group: region eu (4 of 6)",
		},
		{
			name: "region empty falls back to anywhere", nodes: nodes, group: "ap/a",
			wantIDs: []string{"a1", "a2", "b1", "eu", "us", "none"}, wantNote: "group: anywhere (6), none in region ap",
		},
		{
			name: "no client group means anywhere", nodes: nodes, group: "",
			wantIDs: []string{"a1", "a2", "b1", "eu", "us", "none"}, wantNote: "group: anywhere (no client group)",
		},
		{
			name: "zone tier is exact, not a prefix", nodes: []directory.Node{node("x", "eu/ab", 0, 1), node("y", "eu/a", 0, 1)}, group: "eu/a",
			wantIDs: []string{"y"}, wantNote: "group: zone eu/a (1 of 2)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, note := Affinity(tt.nodes, Request{Group: tt.group})
			if diff := cmp.Diff(ids(kept), tt.wantIDs); diff != "" {
				t.Errorf("kept (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(note, tt.wantNote); diff != "" {
				t.Errorf("note (-got +want):\n%s", diff)
			}
		})
	}
}

// TestGroupTierInReason checks that the Reason of the default policy says
// which tier was used, as availability moves the pick out of the zone.
func TestGroupTierInReason(t *testing.T) {
	tests := []struct {
		name     string
		nodes    []directory.Node
		wantID   string
		wantTier string
	}{
		{
			name:   "zone",
			nodes:  []directory.Node{node("z", "eu/a", 5, 10), node("r", "eu/b", 0, 10), node("w", "us/a", 0, 10)},
			wantID: "z", wantTier: "group: zone eu/a (1 of 3)",
		},
		{
			name:   "zone node draining: region",
			nodes:  []directory.Node{withStatus(node("z", "eu/a", 5, 10), directory.Draining), node("r", "eu/b", 0, 10), node("w", "us/a", 0, 10)},
			wantID: "r", wantTier: "group: region eu (1 of 2), none in zone eu/a",
		},
		{
			name:   "region full too: anywhere",
			nodes:  []directory.Node{withStatus(node("z", "eu/a", 5, 10), directory.Draining), node("r", "eu/b", 10, 10), node("w", "us/a", 0, 10)},
			wantID: "w", wantTier: "group: anywhere (1), none in region eu",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Default(NewRand(1)).Pick(tt.nodes, Request{Group: "eu/a"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Node.ID != tt.wantID {
				t.Errorf("picked %s, want %s", res.Node.ID, tt.wantID)
			}
			if !strings.Contains(res.Reason, "; "+tt.wantTier+"; ") {
				t.Errorf("Reason %q does not contain %q", res.Reason, tt.wantTier)
			}
		})
	}
}

func TestNoNode(t *testing.T) {
	tests := []struct {
		name    string
		nodes   []directory.Node
		exclude func(string) bool
		wantMsg string
	}{
		{name: "empty directory", wantMsg: "pick: no server available (status: 0 of 0 available (empty directory))"},
		{
			name:    "nothing up",
			nodes:   []directory.Node{withStatus(node("a", "", 0, 1), directory.Starting), withStatus(node("b", "", 0, 1), directory.Down)},
			wantMsg: "pick: no server available (status: 0 of 2 available (starting 1, down 1))",
		},
		{
			name:    "degraded counted",
			nodes:   []directory.Node{withStatus(node("a", "", 0, 1), directory.Degraded), withStatus(node("b", "", 0, 1), directory.Degraded), withStatus(node("c", "", 0, 1), directory.Draining)},
			wantMsg: "pick: no server available (status: 0 of 3 available (draining 1, degraded 2))",
		},
		{
			name:    "the only one excluded",
			nodes:   []directory.Node{node("a", "", 0, 1)},
			exclude: func(string) bool { return true },
			wantMsg: "pick: no server available (status: 0 of 1 available (excluded 1))",
		},
	}
	for _, tt := range tests {
		for _, name := range Names() {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				p, err := ByName(name, NewRand(1))
				if err != nil {
					t.Fatal(err)
				}
				_, err = p.Pick(tt.nodes, Request{Group: "eu/a", Exclude: tt.exclude})
				if !errors.Is(err, ErrNoNode) {
					t.Fatalf("err = %v, want ErrNoNode", err)
				}
				if diff := cmp.Diff(err.Error(), tt.wantMsg); diff != "" {
					t.Errorf("message (-got +want):\n%s", diff)
				}
			})
		}
	}
	// The bare choosers too.
	for name, p := range map[string]Policy{"random": Random(nil), "least-users": LeastUsers(nil), "p2c": P2C(nil), "balanced": Balanced{}} {
		if _, err := p.Pick(nil, Request{}); !errors.Is(err, ErrNoNode) {
			t.Errorf("%s on no nodes: err = %v, want ErrNoNode", name, err)
		}
	}
}

func TestChainCustomFilterAndPolicyFunc(t *testing.T) {
	onlyV2 := Filter(func(nodes []directory.Node, _ Request) ([]directory.Node, string) {
		var kept []directory.Node
		for _, n := range nodes {
			if n.Version == "2" {
				kept = append(kept, n)
			}
		}
		return kept, fmt.Sprintf("version 2: %d", len(kept))
	})
	first := PolicyFunc(func(nodes []directory.Node, _ Request) (Result, error) {
		return Result{Node: nodes[0], Reason: "first: " + nodes[0].ID}, nil
	})
	a, b := node("a", "", 0, 1), node("b", "", 0, 1)
	b.Version = "2"
	res, err := Chain(first, Available, onlyV2).Pick([]directory.Node{a, b}, Request{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(res, Result{Node: b, Reason: "status: 2 of 2 available; version 2: 1; first: b"}); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	_, err = Chain(first, Available, onlyV2).Pick([]directory.Node{a}, Request{})
	if want := "pick: no server available (status: 1 of 1 available; version 2: 0)"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	// A chooser's own error passes through unchanged.
	boom := errors.New("boom")
	_, err = Chain(PolicyFunc(func([]directory.Node, Request) (Result, error) { return Result{}, boom })).Pick([]directory.Node{a}, Request{})
	if err != boom {
		t.Errorf("err = %v, want boom", err)
	}
}

func TestFiltersDoNotModifyInput(t *testing.T) {
	nodes := []directory.Node{
		node("a", "eu/a", 1, 10), withStatus(node("b", "eu/a", 0, 10), directory.Down),
		node("c", "eu/b", 0, 10), node("d", "us/a", 0, 10),
	}
	before := append([]directory.Node(nil), nodes...)
	for _, name := range Names() {
		p, _ := ByName(name, NewRand(3))
		for range 100 {
			if _, err := p.Pick(nodes, Request{Group: "eu/a", Exclude: func(id string) bool { return id == "a" }}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if diff := cmp.Diff(nodes, before); diff != "" {
		t.Errorf("nodes modified (-got +want):\n%s", diff)
	}
}

func TestByName(t *testing.T) {
	if diff := cmp.Diff(Names(), []string{"default", "p2c", "least-users", "random", "group"}); diff != "" {
		t.Errorf("Names (-got +want):\n%s", diff)
	}
	for _, name := range Names() {
		if p, err := ByName(name, nil); err != nil || p == nil {
			t.Errorf("ByName(%q) = %v, %v", name, p, err)
		}
		if Describe(name) == "" {
			t.Errorf("Describe(%q) is empty", name)
		}
	}
	_, err := ByName("fastest", nil)
	want := `pick: unknown policy "fastest" (valid: default, p2c, least-users, random, group, dns-only)`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	if Describe("fastest") != "" {
		t.Error("Describe of an unknown name is not empty")
	}
}

// TestP2CBalance draws 100,000 times from a fixed skewed table: P2C must
// pick the k-th least loaded of n nodes with probability 2(n-1-k)/(n(n-1))
// (0.4, 0.3, 0.2, 0.1, 0 for five nodes), each within 0.01.
func TestP2CBalance(t *testing.T) {
	nodes := []directory.Node{
		node("n90", "", 90, 100), node("n10", "", 10, 100), node("n30", "", 30, 100),
		node("n45", "", 45, 100), node("n20", "", 20, 100),
	}
	want := map[string]float64{"n10": 0.4, "n20": 0.3, "n30": 0.2, "n45": 0.1, "n90": 0}
	const draws = 100_000
	p := P2C(NewRand(42))
	counts := map[string]int{}
	for range draws {
		res, err := p.Pick(nodes, Request{})
		if err != nil {
			t.Fatal(err)
		}
		counts[res.Node.ID]++
	}
	for id, w := range want {
		got := float64(counts[id]) / draws
		if got < w-0.01 || got > w+0.01 {
			t.Errorf("%s picked %.4f of the time, want %.2f ± 0.01", id, got, w)
		}
	}
	if counts["n90"] != 0 {
		t.Errorf("the most loaded node was picked %d times; p2c never picks it", counts["n90"])
	}
}

func TestDefaultRandAndNewRand(t *testing.T) {
	a, b := NewRand(9), NewRand(9)
	for range 100 {
		if x, y := a.IntN(1000), b.IntN(1000); x != y {
			t.Fatalf("same seed, different draws: %d, %d", x, y)
		}
	}
	if v := DefaultRand().IntN(3); v < 0 || v >= 3 {
		t.Fatalf("DefaultRand().IntN(3) = %d", v)
	}
}

// TestConcurrentPicks runs every named policy from many goroutines on one
// shared Rand and one shared directory; -race checks the rest.
func TestConcurrentPicks(t *testing.T) {
	nodes := []directory.Node{node("a", "eu/a", 1, 10), node("b", "eu/a", 2, 10), node("c", "eu/b", 0, 10)}
	r := NewRand(5)
	tr := NewTracker(0)
	var wg sync.WaitGroup
	for _, name := range Names() {
		p, _ := ByName(name, r)
		for range 4 {
			wg.Go(func() {
				for range 200 {
					if _, err := p.Pick(nodes, Request{Group: "eu/a"}); err != nil {
						t.Error(err)
						return
					}
					if _, err := tr.Pick(p, nodes, Request{Group: "eu/a"}, epoch); err != nil && !errors.Is(err, ErrNoNode) {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

func TestAnswerer(t *testing.T) {
	nodes := []directory.Node{
		{ID: "n1", Status: directory.Up, Capacity: 10},
		{ID: "n2", Status: directory.Up, Capacity: 10, Users: 9},
		{ID: "n3", Status: directory.Draining, Capacity: 10},
	}
	p, err := ByName(DNSOnly, NewRand(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, self, want string
	}{
		{"answering node", "n2", "n2"},
		{"answering node draining", "n3", ""},
		{"unknown answerer", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.Pick(nodes, Request{Self: tt.self})
			if tt.want == "" {
				if !errors.Is(err, ErrNoNode) {
					t.Fatalf("Pick = %v, %v; want ErrNoNode", res.Node.ID, err)
				}
				return
			}
			if err != nil || res.Node.ID != tt.want {
				t.Fatalf("Pick = %v, %v; want %s", res.Node.ID, err, tt.want)
			}
		})
	}
}

func TestBalancedPrefersTheConnectedNodeWhenItIsAsGood(t *testing.T) {
	nodes := []directory.Node{
		{ID: "n1", Status: directory.Up, Capacity: 1000, Users: 500},
		{ID: "n2", Status: directory.Up, Capacity: 1000, Users: 503},
		{ID: "n3", Status: directory.Up, Capacity: 1000, Users: 700},
	}
	tests := []struct {
		name, self, want string
	}{
		{"connected node within the slack", "n2", "n2"},
		{"connected node too loaded", "n3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Balanced{Rand: NewRand(3)}
			for range 200 {
				res, err := b.Pick(nodes, Request{Self: tt.self})
				if err != nil {
					t.Fatal(err)
				}
				if tt.want != "" && res.Node.ID != tt.want {
					t.Fatalf("picked %s, want the connected %s", res.Node.ID, tt.want)
				}
				if tt.want == "" && res.Node.ID == tt.self {
					t.Fatalf("picked the connected %s although it is far above the least load", tt.self)
				}
			}
		})
	}
}
