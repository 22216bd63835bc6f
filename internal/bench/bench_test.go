package bench

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// millisList turns milliseconds into durations, for the tables below.
func millisList(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one value", millisList(7), 0.99, 7 * time.Millisecond},
		{"median of four is the second", millisList(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", millisList(seq(100)...), 0.99, 99 * time.Millisecond},
		{"p99 of 1000 is the 990th", millisList(seq(1000)...), 0.99, 990 * time.Millisecond},
		{"p0 is the smallest", millisList(5, 6), 0, 5 * time.Millisecond},
		{"p100 is the largest", millisList(5, 6), 1, 6 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestMaxMean(t *testing.T) {
	tests := []struct {
		name   string
		values []int
		want   float64
	}{
		{"none", nil, 0},
		{"all zero", []int{0, 0}, 0},
		{"even", []int{1000, 1000, 1000}, 1},
		{"one holds all", []int{3000, 0, 0}, 3},
		{"scale-out by round robin", []int{1250, 1250, 1250, 250}, 1.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaxMean(tt.values); got != tt.want {
				t.Errorf("MaxMean(%v) = %v, want %v", tt.values, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	want := Percentiles{P50: 50, P90: 90, P99: 99, Max: 100}
	if diff := cmp.Diff(Summarize(lat), want); diff != "" {
		t.Errorf("Summarize (-got +want):\n%s", diff)
	}
}
