package node

import (
	"slices"
	"testing"
	"time"
)

// sendAway over rounds, as checkMajority runs them every moveAfter: a
// transcript of which sessions a degraded node asks to move and which it
// closes, with the asks it carries from one round to the next.
func TestSendAway(t *testing.T) {
	const after = 20 * time.Second
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	answered := map[string]bool{"a": true, "b": true, "c": true, "new": false}
	isAnswered := func(s string) bool { return answered[s] }
	type round struct {
		at        time.Duration // after t0
		present   []string
		canMove   bool
		ask, shut []string
	}
	for _, tc := range []struct {
		name   string
		rounds []round
	}{
		{"moves asked, then closed once the ask is stale", []round{
			{0, []string{"a", "b", "new"}, true, []string{"a", "b"}, []string{"new"}}, // not answered yet: closed
			{10 * time.Second, []string{"a"}, true, nil, nil},                         // b moved; a's ask is fresh
			{20 * time.Second, []string{"a"}, true, nil, []string{"a"}},               // a ignored it
		}},
		{"no other node to move to: all closed", []round{
			{0, []string{"a", "b"}, false, nil, []string{"a", "b"}},
		}},
		{"the node can no longer move them: those asked are closed too", []round{
			{0, []string{"a"}, true, []string{"a"}, nil},
			{10 * time.Second, []string{"a", "c"}, false, nil, []string{"a", "c"}},
			{20 * time.Second, []string{"b"}, true, []string{"b"}, nil}, // asks begin afresh
		}},
		{"a session that arrives between rounds is asked at the next", []round{
			{0, []string{"a"}, true, []string{"a"}, nil},
			{10 * time.Second, []string{"a", "c"}, true, []string{"c"}, nil},
			{20 * time.Second, []string{"a", "c"}, true, nil, []string{"a"}},
			{30 * time.Second, []string{"c"}, true, nil, []string{"c"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked map[string]time.Time
			for i, r := range tc.rounds {
				ask, shut, next := sendAway(r.present, isAnswered, asked, t0.Add(r.at), r.canMove, after)
				slices.Sort(ask)
				slices.Sort(shut)
				if !slices.Equal(ask, r.ask) || !slices.Equal(shut, r.shut) {
					t.Errorf("round %d (%v): asked %v and closed %v, want asked %v and closed %v", i, r.at, ask, shut, r.ask, r.shut)
				}
				asked = next
			}
		})
	}
}
