package pick

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/directory"
)

// Above the slack, the connected node is kept with a probability that
// falls over the margin: a draw low in [0, 2^20) leaves it, a high one
// keeps it; past the margin, or with no margin, it is always left.
func TestBalancedMargin(t *testing.T) {
	nodes := []directory.Node{
		{ID: "n1", Status: directory.Up, Capacity: 1000, Users: 500},
		{ID: "n2", Status: directory.Up, Capacity: 1000, Users: 512}, // 48% into the margin
		{ID: "n3", Status: directory.Up, Capacity: 1000, Users: 700},
	}
	tests := []struct {
		name    string
		b       Balanced
		self    string
		answers []int
		want    string
	}{
		{"low draw leaves", Balanced{}, "n2", []int{0}, "n1"},
		{"high draw stays", Balanced{}, "n2", []int{1<<20 - 1}, "n2"},
		{"just under the leave probability leaves", Balanced{}, "n2", []int{490000}, "n1"},
		{"just over it stays", Balanced{}, "n2", []int{520000}, "n2"},
		{"past the margin always leaves", Balanced{}, "n3", nil, "n1"},
		{"no margin: always leaves", Balanced{Margin: -1}, "n2", nil, "n1"},
		{"a wider margin keeps more", Balanced{Margin: 0.5}, "n3", []int{1<<20 - 1}, "n3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			s := &script{t: t, answers: tt.answers}
			b.Rand = s
			got, err := b.Pick(nodes, Request{Self: tt.self})
			if err != nil {
				t.Fatal(err)
			}
			if got.Node.ID != tt.want {
				t.Errorf("picked %s (%s), want %s", got.Node.ID, got.Reason, tt.want)
			}
			if len(s.answers) != 0 {
				t.Errorf("%d draws left unused", len(s.answers))
			}
			if kept := strings.Contains(got.Reason, "into the margin"); kept != (got.Node.ID == tt.self) {
				t.Errorf("reason %q does not say whether the connected node was kept in the margin", got.Reason)
			}
		})
	}
}

// Without a connected node among the candidates, each is picked with a
// weight: 1 within the slack, 1 less how far into the margin it is
// above that (n2, 48% into it: 0.52), 0 past it (n3). One draw in
// [0, 2^20) falls on n1 below 2^20/1.52, on n2 above.
func TestBalancedSpreads(t *testing.T) {
	nodes := []directory.Node{
		{ID: "n1", Status: directory.Up, Capacity: 1000, Users: 500},
		{ID: "n2", Status: directory.Up, Capacity: 1000, Users: 512},
		{ID: "n3", Status: directory.Up, Capacity: 1000, Users: 700},
	}
	tests := []struct {
		name    string
		b       Balanced
		self    string
		answers []int
		want    string
		reason  string
	}{
		{"low draw: the least loaded", Balanced{}, "", []int{0}, "n1", "balanced: n1 (load 0.50), 1 of 3 near the least load (age 0s)"},
		{"just under its share", Balanced{}, "", []int{691000}, "n1", ""},
		{"just over it: the one in the margin", Balanced{}, "", []int{692000}, "n2", "balanced: n2 (load 0.51, 48% into the margin above the least load), 1 of 3 near the least load (age 0s)"},
		{"past the margin: never", Balanced{}, "", []int{1<<20 - 1}, "n2", ""},
		{"connected elsewhere counts as none", Balanced{}, "n9", []int{692000}, "n2", ""},
		{"no margin: the least loaded", Balanced{Margin: -1}, "", nil, "n1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			s := &script{t: t, answers: tt.answers}
			b.Rand = s
			got, err := b.Pick(nodes, Request{Self: tt.self})
			if err != nil {
				t.Fatal(err)
			}
			if got.Node.ID != tt.want {
				t.Errorf("picked %s (%s), want %s", got.Node.ID, got.Reason, tt.want)
			}
			if tt.reason != "" && got.Reason != tt.reason {
				t.Errorf("Reason = %q, want %q", got.Reason, tt.reason)
			}
			if len(s.answers) != 0 {
				t.Errorf("%d draws left unused", len(s.answers))
			}
		})
	}
}

// Affinity narrows 30 nodes to the 3 of the client's zone, so Balanced
// compares them all, but the common address spreads hellos over all 30:
// the connected node is seldom among them. 300 clients of the zone
// arrive within one propagation delay and read the same numbers, the
// zone's nodes at 500, 510 and 520 users of 1000. The margin must spread
// them as it does when the connected node is a candidate: taking the
// least loaded, as before, sent 296 of them to the first node.
func TestBalancedSpreadsACrowdInASmallZone(t *testing.T) {
	var nodes []directory.Node
	for i := range 30 {
		g := fmt.Sprintf("eu/%c", 'b'+i%3)
		if i < 3 {
			g = "eu/a"
		}
		nodes = append(nodes, directory.Node{ID: fmt.Sprintf("n%02d", i), Group: g, Status: directory.Up, Users: 500 + 10*(i%3), Capacity: 1000, HeartbeatMS: 200, AgeMS: 50})
	}
	p := Default(NewRand(7))
	got := map[string]int{}
	const clients = 300
	for c := range clients {
		res, err := p.Pick(nodes, Request{Group: "eu/a", Self: nodes[c%len(nodes)].ID})
		if err != nil {
			t.Fatal(err)
		}
		got[res.Node.ID]++
	}
	t.Logf("n00 (500 users) %d, n01 (510) %d, n02 (520) %d", got["n00"], got["n01"], got["n02"])
	for id, n := range got {
		if n > clients*3/4 {
			t.Errorf("%s took %d of %d picks, want at most three quarters: %v", id, n, clients, got)
		}
	}
}
