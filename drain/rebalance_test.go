package drain_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/drain"
)

// loads gives each of users the capacity c.
func loads(c int, users ...int) []drain.Load {
	l := make([]drain.Load, len(users))
	for i, u := range users {
		l[i] = drain.Load{Users: u, Capacity: c}
	}
	return l
}

func TestRebalancer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type check struct {
		at     time.Duration
		self   drain.Load
		asked  int
		others []drain.Load
	}
	self := func(users, capacity int) drain.Load { return drain.Load{Users: users, Capacity: capacity} }
	for _, tt := range []struct {
		name  string
		cfg   drain.RebalanceConfig
		steps []check
		want  []int
	}{
		{
			name:  "off",
			cfg:   drain.RebalanceConfig{},
			steps: []check{{0, self(1000, 2000), 0, loads(2000, 0)}, {10 * time.Second, self(1000, 2000), 0, loads(2000, 0)}},
			want:  []int{0, 0},
		},
		{
			name: "a node joins: the excess must hold 5 s, then sheds at 50/s down to the mean",
			cfg:  drain.RebalanceConfig{Threshold: 0.05},
			steps: []check{
				{0, self(1000, 2000), 0, loads(2000, 1000, 1000, 0)},               // mean 750: excess begins
				{4 * time.Second, self(1000, 2000), 0, loads(2000, 1000, 1000, 0)}, // not held long enough
				{5 * time.Second, self(1000, 2000), 0, loads(2000, 1000, 1000, 0)}, // one second's budget
				{5500 * time.Millisecond, self(1000, 2000), 50, loads(2000, 990, 990, 70)},
				{20 * time.Second, self(925, 2000), 0, loads(2000, 800, 790, 485)}, // mean 750: 175 surplus, budget capped at 50
				{21 * time.Second, self(760, 2000), 0, loads(2000, 750, 750, 740)}, // within 5% of the mean: done
			},
			want: []int{0, 0, 50, 25, 50, 0},
		},
		{
			name: "a passing peak moves nothing",
			cfg:  drain.RebalanceConfig{Threshold: 0.1, Hold: 2 * time.Second},
			steps: []check{
				{0, self(130, 200), 0, loads(200, 100, 70)},
				{time.Second, self(100, 200), 0, loads(200, 100, 100)}, // the excess ended: the hold starts over
				{2500 * time.Millisecond, self(130, 200), 0, loads(200, 100, 70)},
				{4 * time.Second, self(130, 200), 0, loads(200, 100, 70)},
				{4500 * time.Millisecond, self(130, 200), 0, loads(200, 100, 70)},
			},
			want: []int{0, 0, 0, 0, 30},
		},
		{
			name: "at or below the threshold, or alone, never",
			cfg:  drain.RebalanceConfig{Threshold: 0.05, Hold: time.Second},
			steps: []check{
				{0, self(105, 200), 0, loads(200, 100, 95)},
				{5 * time.Second, self(105, 200), 0, loads(200, 100, 95)},
				{10 * time.Second, self(5000, 10000), 0, nil},
				{15 * time.Second, self(5000, 10000), 0, loads(0, 0)}, // another node, but without capacity
			},
			want: []int{0, 0, 0, 0},
		},
		{
			name: "the sessions asked count as gone, until they are enough",
			cfg:  drain.RebalanceConfig{Threshold: 0.05, Hold: time.Second, Rate: 1000},
			steps: []check{
				{0, self(100, 200), 0, loads(200, 0)},
				{time.Second, self(100, 200), 20, loads(200, 10)}, // 80 staying of a mean of 55: 25 more
				{2 * time.Second, self(95, 200), 40, loads(200, 15)},
			},
			want: []int{0, 25, 0},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := drain.NewRebalancer(tt.cfg)
			var got []int
			for _, c := range tt.steps {
				got = append(got, r.Step(t0.Add(c.at), c.self, c.asked, c.others))
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Step (-got +want):\n%s", diff)
			}
		})
	}
}

// With nodes of different capacities the rebalancer compares loads,
// sessions over capacity, as the clients pick: a big node lightly loaded
// never sheds onto a small one nearly full, which sheds down to the mean
// load instead; and the asks never pass the others' spare room.
func TestRebalancerCapacity(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cfg := drain.RebalanceConfig{Threshold: 0.05, Hold: time.Second, Rate: 1000}
	for _, tt := range []struct {
		name   string
		self   drain.Load
		asked  int
		others []drain.Load
		want   int
	}{
		{
			name: "big and lightly loaded (12 of 100) beside small and nearly full (8 of 10): keeps them",
			self: drain.Load{Users: 12, Capacity: 100}, others: []drain.Load{{Users: 8, Capacity: 10}},
			want: 0,
		},
		{
			name: "small and nearly full beside big and lightly loaded: down to the mean, 20/110 of 10, rounded up",
			self: drain.Load{Users: 8, Capacity: 10}, others: []drain.Load{{Users: 12, Capacity: 100}},
			want: 6,
		},
		{
			name: "more sessions than a small node, but a lighter load: keeps them",
			self: drain.Load{Users: 400, Capacity: 1000}, others: loads(100, 50, 50),
			want: 0,
		},
		{
			name: "fewer sessions than a big node, but a heavier load: sheds",
			self: drain.Load{Users: 90, Capacity: 100}, others: loads(1000, 500, 500),
			want: 90 - (1090*100+2099)/2100, // mean 1090/2100, times 100, rounded up: 52
		},
		{
			name: "within the threshold of the mean load",
			self: drain.Load{Users: 52, Capacity: 100}, others: loads(1000, 500, 500),
			want: 0,
		},
		{
			name: "the others' room bounds the asks (the node is past its lowered capacity)",
			self: drain.Load{Users: 120, Capacity: 100}, others: []drain.Load{{Users: 5, Capacity: 10}},
			want: 5,
		},
		{
			name: "the room less the sessions already on their way",
			self: drain.Load{Users: 140, Capacity: 100}, asked: 3, others: []drain.Load{{Users: 5, Capacity: 10}, {Users: 10, Capacity: 10}},
			want: 2, // 7 above the mean, room for 5, 3 of them taken
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := drain.NewRebalancer(cfg)
			r.Step(t0, tt.self, tt.asked, tt.others) // the excess begins
			if got := r.Step(t0.Add(time.Second), tt.self, tt.asked, tt.others); got != tt.want {
				t.Errorf("Step = %d, want %d", got, tt.want)
			}
		})
	}
}
