package drain_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/drain"
)

func TestRebalancer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type check struct {
		at    time.Duration
		self  int
		loads []int
	}
	for _, tt := range []struct {
		name  string
		cfg   drain.RebalanceConfig
		steps []check
		want  []int
	}{
		{
			name:  "off",
			cfg:   drain.RebalanceConfig{},
			steps: []check{{0, 1000, []int{1000, 0}}, {10 * time.Second, 1000, []int{1000, 0}}},
			want:  []int{0, 0},
		},
		{
			name: "a node joins: the excess must hold 5 s, then sheds at 50/s down to the mean",
			cfg:  drain.RebalanceConfig{Threshold: 0.05},
			steps: []check{
				{0, 1000, []int{1000, 1000, 1000, 0}},               // mean 750: excess begins
				{4 * time.Second, 1000, []int{1000, 1000, 1000, 0}}, // not held long enough
				{5 * time.Second, 1000, []int{1000, 1000, 1000, 0}}, // one second's budget
				{5500 * time.Millisecond, 950, []int{950, 990, 990, 70}},
				{20 * time.Second, 925, []int{925, 800, 790, 485}}, // mean 750: 175 surplus, budget capped at 50
				{21 * time.Second, 760, []int{760, 750, 750, 740}}, // within 5% of the mean: done
			},
			want: []int{0, 0, 50, 25, 50, 0},
		},
		{
			name: "a passing peak moves nothing",
			cfg:  drain.RebalanceConfig{Threshold: 0.1, Hold: 2 * time.Second},
			steps: []check{
				{0, 130, []int{130, 100, 70}},
				{time.Second, 100, []int{100, 100, 100}}, // the excess ended: the hold starts over
				{2500 * time.Millisecond, 130, []int{130, 100, 70}},
				{4 * time.Second, 130, []int{130, 100, 70}},
				{4500 * time.Millisecond, 130, []int{130, 100, 70}},
			},
			want: []int{0, 0, 0, 0, 30},
		},
		{
			name: "at or below the threshold, or alone, never",
			cfg:  drain.RebalanceConfig{Threshold: 0.05, Hold: time.Second},
			steps: []check{
				{0, 105, []int{105, 100, 95}},
				{5 * time.Second, 105, []int{105, 100, 95}},
				{10 * time.Second, 5000, []int{5000}},
			},
			want: []int{0, 0, 0},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := drain.NewRebalancer(tt.cfg)
			var got []int
			for _, c := range tt.steps {
				got = append(got, r.Step(t0.Add(c.at), c.self, c.loads))
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Step (-got +want):\n%s", diff)
			}
		})
	}
}
