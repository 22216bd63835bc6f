package sipfront

import (
	"net/netip"
	"testing"
	"time"
)

// TestLimits drives the call limits through admissions, answers, ACKs
// and ends, step by step.
func TestLimits(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := time.Unix(1_000_000, 0)
	type step struct {
		name    string
		do      func(l *limits, places map[string]*place) (refused string, evicted *place)
		refused string
		evicted string // the place expected evicted, by name
	}
	admit := func(name string, src netip.Addr, at time.Duration) func(*limits, map[string]*place) (string, *place) {
		return func(l *limits, places map[string]*place) (string, *place) {
			p, evicted, refused := l.admit(src, t0.Add(at))
			if p != nil {
				places[name] = p
			}
			return refused, evicted
		}
	}
	answered := func(name string, at time.Duration) func(*limits, map[string]*place) (string, *place) {
		return func(l *limits, places map[string]*place) (string, *place) {
			l.answered(places[name], nil, t0.Add(at))
			return "", nil
		}
	}
	confirm := func(name string) func(*limits, map[string]*place) (string, *place) {
		return func(l *limits, places map[string]*place) (string, *place) {
			l.confirm(places[name])
			return "", nil
		}
	}
	free := func(name string) func(*limits, map[string]*place) (string, *place) {
		return func(l *limits, places map[string]*place) (string, *place) {
			l.free(places[name])
			return "", nil
		}
	}
	for _, tt := range []struct {
		name     string
		maxCalls int // with 2 per source, 2 unconfirmed, a grace of 1 s
		steps    []step
	}{
		{"confirmed calls fill the node", 3, []step{
			{name: "a1", do: admit("a1", a, 0)}, {name: "answer", do: answered("a1", 0)}, {name: "ack", do: confirm("a1")},
			{name: "b1", do: admit("b1", b, 0)}, {name: "answer", do: answered("b1", 0)}, {name: "ack", do: confirm("b1")},
			{name: "b2", do: admit("b2", b, 0)}, {name: "answer", do: answered("b2", 0)}, {name: "ack", do: confirm("b2")},
			{name: "a2 over the total", do: admit("a2", a, time.Hour), refused: refusedTotal},
			{name: "b1 ends", do: free("b1")},
			{name: "a2", do: admit("a2", a, time.Hour)},
		}},
		{"unconfirmed calls have a pool of their own", 3, []step{
			{name: "a1", do: admit("a1", a, 0)},
			{name: "a2 being set up meanwhile", do: admit("a2", b, 0)},
			{name: "a3 over the unconfirmed", do: admit("a3", b, 0), refused: refusedUnconfirmed},
			{name: "answer a1", do: answered("a1", 0)}, {name: "ack a1", do: confirm("a1")},
			{name: "a3", do: admit("a3", b, 0)},
		}},
		{"the oldest past the grace gives its place up", 3, []step{
			{name: "a1", do: admit("a1", a, 0)}, {name: "answer a1", do: answered("a1", 0)},
			{name: "b1", do: admit("b1", b, 0)}, {name: "answer b1", do: answered("b1", 500*time.Millisecond)},
			{name: "b2 within the grace", do: admit("b2", b, 900*time.Millisecond), refused: refusedUnconfirmed},
			{name: "b2 past a1's grace", do: admit("b2", b, time.Second), evicted: "a1"},
			{name: "a1's ACK, late", do: func(l *limits, places map[string]*place) (string, *place) {
				if l.confirm(places["a1"]) {
					t.Error("a1 confirmed after it gave its place up")
				}
				return "", nil
			}},
			{name: "a1 ends", do: free("a1")},
			{name: "b3 past b1's grace", do: admit("b3", b, 2*time.Second), evicted: "b1"},
		}},
		{"a source at its limit evicts its own calls only", 10, []step{
			{name: "a1", do: admit("a1", a, 0)}, {name: "answer a1", do: answered("a1", 0)},
			{name: "b1", do: admit("b1", b, 0)}, {name: "answer b1", do: answered("b1", 0)}, {name: "ack b1", do: confirm("b1")},
			{name: "b2", do: admit("b2", b, 0)}, {name: "answer b2", do: answered("b2", time.Second)},
			{name: "b3 over b's limit, a1 not b's", do: admit("b3", b, 1500*time.Millisecond), refused: refusedPerSource},
			{name: "b3 past b2's grace", do: admit("b3", b, 2*time.Second), evicted: "b2"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimits(tt.maxCalls, 2, 2, time.Second)
			places := map[string]*place{}
			for _, st := range tt.steps {
				refused, evicted := st.do(l, places)
				if refused != st.refused {
					t.Fatalf("%s: refused %q, want %q", st.name, refused, st.refused)
				}
				var got string
				for name, p := range places {
					if evicted != nil && p == evicted {
						got = name
					}
				}
				if got != st.evicted {
					t.Fatalf("%s: evicted %q, want %q", st.name, got, st.evicted)
				}
			}
			for _, p := range places {
				l.free(p)
			}
			if l.calls != 0 || l.unconfirmed != 0 || len(l.bySource) != 0 || len(l.waiting) != 0 {
				t.Errorf("all freed, the limits still count %d calls, %d unconfirmed, %d sources, %d waiting",
					l.calls, l.unconfirmed, len(l.bySource), len(l.waiting))
			}
		})
	}
}
