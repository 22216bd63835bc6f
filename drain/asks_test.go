package drain_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/drain"
)

// A session still attached after its ask is asked again once the ask is
// stale and another node is up, at most MaxAsks times; an ask in flight
// is pending until then.
func TestAsks(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		at  time.Duration
		op  string // "ask": ask key if Askable; "leave": key left
		up  bool
		key string
	}
	type result struct {
		Askable, Pending bool
		Times            int
	}
	for _, tt := range []struct {
		name  string
		steps []step
		want  []result
	}{
		{
			name: "asked again once stale, while another node is up, at most three times",
			steps: []step{
				{0, "ask", false, "s"},                      // the first ask needs no other node
				{19 * time.Second, "ask", true, "s"},        // not yet stale
				{20 * time.Second, "ask", false, "s"},       // stale, but nowhere to go
				{25 * time.Second, "ask", true, "s"},        // again
				{44 * time.Second, "ask", true, "s"},        // not yet stale
				{45 * time.Second, "ask", true, "s"},        // the third ask
				{time.Hour, "ask", true, "s"},               // no more
				{time.Hour + time.Second, "ask", true, "t"}, // another session
			},
			want: []result{
				{true, true, 1},
				{false, true, 1},
				{false, false, 1},
				{true, true, 2},
				{false, true, 2},
				{true, true, 3},
				{false, false, 3},
				{true, true, 1},
			},
		},
		{
			name: "a session that left is forgotten",
			steps: []step{
				{0, "ask", true, "s"},
				{time.Second, "leave", true, "s"},
				{2 * time.Second, "ask", true, "s"},
			},
			want: []result{{true, true, 1}, {true, false, 0}, {true, true, 1}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := drain.NewAsks[string](0, 0) // ReaskAfter, MaxAsks
			var got []result
			for _, s := range tt.steps {
				now := t0.Add(s.at)
				if s.op == "leave" {
					a.Keep(func(k string) bool { return k != s.key })
				}
				r := result{Askable: a.Askable(s.key, now, s.up)}
				if s.op == "ask" && r.Askable {
					a.Asked(s.key, now)
				}
				r.Pending, r.Times = a.Pending(s.key, now), a.Times(s.key)
				got = append(got, r)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}
