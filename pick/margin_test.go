package pick

import (
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
