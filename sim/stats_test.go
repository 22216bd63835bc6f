package sim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var approx = cmpopts.EquateApprox(0, 1e-12)

func TestLoadStats(t *testing.T) {
	tests := []struct {
		name  string
		loads []int
		want  Loads
	}{
		{"none", nil, Loads{}},
		{"zeros", []int{0, 0}, Loads{Nodes: 2}},
		{"spread", []int{2, 6, 4}, Loads{Nodes: 3, Min: 2, Max: 6, Mean: 4, MaxMean: 1.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(loadStats(tt.loads), tt.want, approx); diff != "" {
				t.Errorf("loadStats(%v) (-got +want):\n%s", tt.loads, diff)
			}
		})
	}
}
