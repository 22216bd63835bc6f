package sim

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var approx = cmpopts.EquateApprox(0, 1e-12)

func TestPercentile(t *testing.T) {
	oneTo101 := make([]float64, 101)
	for i := range oneTo101 {
		oneTo101[i] = float64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one value, p0", []float64{5}, 0, 5},
		{"one value, p50", []float64{5}, 50, 5},
		{"one value, p100", []float64{5}, 100, 5},
		{"median of an even count is the mean of the middle two", []float64{1, 2, 3, 4}, 50, 2.5},
		{"median of an odd count is the middle one", []float64{1, 2, 10}, 50, 2},
		{"p25 interpolates: rank 0.75", []float64{1, 2, 3, 4}, 25, 1.75},
		{"p0 is the smallest", []float64{1, 2, 3, 4}, 0, 1},
		{"p100 is the largest", []float64{1, 2, 3, 4}, 100, 4},
		{"p99 of 1..101 is 100", oneTo101, 99, 100},
		{"p90 of 1..101 is 91", oneTo101, 90, 91},
		{"p99.5 of 1..101", oneTo101, 99.5, 100.5},
		{"two values, p10", []float64{10, 20}, 10, 11},
		{"ties", []float64{7, 7, 7}, 33, 7},
		{"negative p clamps to 0", []float64{1, 2, 3, 4}, -5, 1},
		{"p above 100 clamps to 100", []float64{1, 2, 3, 4}, 150, 4},
		{"NaN p", []float64{1, 2}, math.NaN(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Percentile(tt.sorted, tt.p)
			if diff := cmp.Diff(got, tt.want, approx); diff != "" {
				t.Errorf("Percentile(%v, %v) (-got +want):\n%s", tt.sorted, tt.p, diff)
			}
		})
	}
}

func TestMaxMean(t *testing.T) {
	tests := []struct {
		name  string
		loads []int
		want  float64
	}{
		{"no nodes", nil, 0},
		{"all empty", []int{0, 0, 0}, 0},
		{"one node", []int{7}, 1},
		{"even", []int{3, 3, 3}, 1},
		{"one of two holds three quarters", []int{3, 1}, 1.5},
		{"all on one of four", []int{4, 0, 0, 0}, 4},
		{"mean 3, max 5", []int{2, 2, 5, 3}, 5.0 / 3},
		{"everything on one of 1000 nodes", append(make([]int, 999), 1000), 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(MaxMean(tt.loads), tt.want, approx); diff != "" {
				t.Errorf("MaxMean(%v) (-got +want):\n%s", tt.loads, diff)
			}
		})
	}
}

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
