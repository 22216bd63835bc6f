package pick

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// sim is a pure-loop model of sessions arriving at a cluster. Each arrival
// picks from a directory snapshot that is refreshed every `every` arrivals
// (so `every` arrivals see the same numbers, as concurrent clients with a
// directory a few ms old do) and whose nodes report AgeMS ageMS.
type sim struct {
	start    []int // users per node at the start
	capacity int
	arrivals int
	every    int
	ageMS    int64
	tracker  bool // share one Tracker among all arrivals
}

// run returns the final users per node and max/mean.
func (s sim) run(t *testing.T, p Policy) ([]int, float64) {
	t.Helper()
	users := append([]int(nil), s.start...)
	var snapshot []directory.Node
	var tr *Tracker
	if s.tracker {
		tr = NewTracker(time.Minute)
	}
	now := epoch
	for i := range s.arrivals {
		if i%s.every == 0 {
			snapshot = make([]directory.Node, len(users))
			for j, u := range users {
				snapshot[j] = directory.Node{
					ID: fmt.Sprintf("n%d", j+1), Group: "eu/a", Status: directory.Up,
					Users: u, Capacity: s.capacity, AgeMS: s.ageMS,
				}
			}
		}
		var res Result
		var err error
		if tr != nil {
			res, err = tr.Pick(p, snapshot, Request{Group: "eu/a"}, now)
		} else {
			res, err = p.Pick(snapshot, Request{Group: "eu/a"})
		}
		if err != nil {
			t.Fatal(err)
		}
		var j int
		fmt.Sscanf(res.Node.ID, "n%d", &j)
		users[j-1]++
		now = now.Add(time.Millisecond)
	}
	total, most := 0, 0
	for _, u := range users {
		total += u
		most = max(most, u)
	}
	return users, float64(most) / (float64(total) / float64(len(users)))
}

// TestScaleOut is the benchmark scenario: three nodes hold 1000 users each,
// an empty fourth joins, and 1000 sessions arrive. With a fresh directory
// the default policy ends within 5% of perfect balance, which plain P2C
// cannot do (the new node is in its sampled pair only half the time). With
// a stale directory the default policy falls back to P2C and so does not
// herd the way least-users does.
func TestScaleOut(t *testing.T) {
	scaleOut := []int{1000, 1000, 1000, 0}
	herd := []int{500, 1000, 1000, 1000}
	tests := []struct {
		name    string
		sim     sim
		policy  string
		atMost  float64 // max/mean must be <= atMost
		atLeast float64 // and >= atLeast (to show a policy does not balance)
	}{
		{"fresh, refresh every arrival: default", sim{start: scaleOut, capacity: 2000, arrivals: 1000, every: 1, ageMS: 5}, "default", 1.05, 0},
		{"fresh, refresh every 10: default", sim{start: scaleOut, capacity: 2000, arrivals: 1000, every: 10, ageMS: 5}, "default", 1.05, 0},
		{"fresh, refresh every 100: default", sim{start: scaleOut, capacity: 2000, arrivals: 1000, every: 100, ageMS: 5}, "default", 1.05, 0},
		{"fresh, huge capacity: default", sim{start: scaleOut, capacity: 100_000, arrivals: 1000, every: 10, ageMS: 5}, "default", 1.05, 0},
		{"fresh, refresh every 10: p2c", sim{start: scaleOut, capacity: 2000, arrivals: 1000, every: 10, ageMS: 5}, "p2c", 1.25, 1.10},
		{"fresh, refresh every 10: random", sim{start: scaleOut, capacity: 2000, arrivals: 1000, every: 10, ageMS: 5}, "random", 1.30, 1.20},
		{"stale, scale-out: default is p2c", sim{start: scaleOut, capacity: 2000, arrivals: 1000, every: 1000, ageMS: 3000}, "default", 1.25, 1.10},
		{"stale, one snapshot: least-users herds", sim{start: herd, capacity: 4000, arrivals: 2000, every: 2000, ageMS: 3000}, "least-users", 2, 1.5},
		{"stale, one snapshot: default does not herd", sim{start: herd, capacity: 4000, arrivals: 2000, every: 2000, ageMS: 3000}, "default", 1.15, 0},
		{"fresh-looking but one snapshot: default herds without a tracker", sim{start: herd, capacity: 4000, arrivals: 2000, every: 2000, ageMS: 5}, "default", 2, 1.5},
		{"one snapshot, shared tracker: default balances", sim{start: herd, capacity: 4000, arrivals: 2000, every: 2000, ageMS: 5, tracker: true}, "default", 1.05, 0},
		{"scale-out, one snapshot, shared tracker: default", sim{start: scaleOut, capacity: 2000, arrivals: 1000, every: 1000, ageMS: 5, tracker: true}, "default", 1.05, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ByName(tt.policy, NewRand(11))
			if err != nil {
				t.Fatal(err)
			}
			users, ratio := tt.sim.run(t, p)
			t.Logf("%s: users %v, max/mean %.3f", tt.policy, users, ratio)
			if ratio > tt.atMost || ratio < tt.atLeast {
				t.Errorf("max/mean = %.3f, want in [%.2f, %.2f] (users %v)", ratio, tt.atLeast, tt.atMost, users)
			}
		})
	}
}
