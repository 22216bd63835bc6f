package drain_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/drain"
)

func TestTail(t *testing.T) {
	for _, tt := range []struct {
		within, want time.Duration
	}{
		{0, 0},
		{2 * time.Second, 500 * time.Millisecond},
		{20 * time.Second, 5 * time.Second},
		{2 * time.Minute, 5 * time.Second},
	} {
		if got := drain.Tail(tt.within); got != tt.want {
			t.Errorf("Tail(%v) = %v, want %v", tt.within, got, tt.want)
		}
	}
}

func TestDue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type due struct {
		N   int
		All bool
	}
	for _, tt := range []struct {
		name   string
		within time.Duration
		total  int
		at     []time.Duration
		want   []due
	}{
		{
			name:   "30 s for 3,000: spread over 25 s, the last 5 s kept",
			within: 30 * time.Second, total: 3000,
			at:   []time.Duration{-time.Second, 0, time.Millisecond, 5 * time.Second, 12500 * time.Millisecond, 25 * time.Second, 29 * time.Second},
			want: []due{{0, false}, {0, false}, {1, false}, {600, false}, {1500, false}, {3000, true}, {3000, true}},
		},
		{
			name:   "2 s for 3: a quarter kept",
			within: 2 * time.Second, total: 3,
			at:   []time.Duration{0, 100 * time.Millisecond, 500 * time.Millisecond, 501 * time.Millisecond, 1499 * time.Millisecond, 1500 * time.Millisecond},
			want: []due{{0, false}, {1, false}, {1, false}, {2, false}, {3, false}, {3, true}},
		},
		{
			name:   "no window: everyone at once",
			within: 0, total: 10,
			at:   []time.Duration{0},
			want: []due{{10, true}},
		},
		{
			name:   "no sessions",
			within: time.Second, total: 0,
			at:   []time.Duration{0, 500 * time.Millisecond, time.Second},
			want: []due{{0, false}, {0, false}, {0, true}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := drain.New(t0, tt.within, tt.total)
			var got []due
			for _, d := range tt.at {
				n, all := p.Due(t0.Add(d))
				got = append(got, due{n, all})
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Due (-got +want):\n%s", diff)
			}
		})
	}
}

// Due never goes down as time passes, and reaches the total by the end
// of the spread: every session is asked before the tail.
func TestDueMonotone(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, total := range []int{1, 7, 100, 3001} {
		for _, within := range []time.Duration{time.Second, 30 * time.Second, 2 * time.Minute} {
			p := drain.New(t0, within, total)
			last := 0
			for at := time.Duration(0); at <= within; at += p.Tick() {
				n, _ := p.Due(t0.Add(at))
				if n < last || n > total {
					t.Fatalf("total %d within %v: Due at %v = %d after %d", total, within, at, n, last)
				}
				last = n
			}
			if n, all := p.Due(t0.Add(within - drain.Tail(within))); n != total || !all {
				t.Errorf("total %d within %v: at the end of the spread Due = %d, %v", total, within, n, all)
			}
		}
	}
}

func TestExpiredAndTick(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := drain.New(t0, 30*time.Second, 3000)
	if p.Expired(t0.Add(29 * time.Second)) {
		t.Error("expired before the deadline")
	}
	if !p.Expired(t0.Add(30 * time.Second)) {
		t.Error("not expired at the deadline")
	}
	if got, want := p.Tick(), 250*time.Millisecond; got != want {
		t.Errorf("Tick = %v, want %v", got, want)
	}
	if got, want := drain.New(t0, 30*time.Second, 5).Tick(), time.Second; got != want {
		t.Errorf("Tick for 5 sessions = %v, want %v", got, want)
	}
	if got, want := drain.New(t0, 200*time.Millisecond, 5000).Tick(), 20*time.Millisecond; got != want {
		t.Errorf("Tick for a short window = %v, want %v", got, want)
	}
}

// A stop whose grace ends before an operator's slow drain re-plans the
// sessions not yet asked over the grace: all of them are asked before
// its tail, counting on from those already asked.
func TestHasten(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type due struct {
		N   int
		All bool
	}
	slow := drain.New(t0, 10*time.Minute, 20) // 20 over 9m55s
	for _, tt := range []struct {
		name         string
		at, deadline time.Duration // of the stop, from t0
		asked, left  int
		checks       []time.Duration // from t0
		want         []due
		wantDeadline time.Duration
		wantTick     time.Duration
	}{
		{
			name: "a stop with a 2 s grace after 30 s: the 18 left over 1.5 s, the last 0.5 s kept",
			at:   30 * time.Second, deadline: 32 * time.Second, asked: 2, left: 18,
			checks:       []time.Duration{30 * time.Second, 30*time.Second + 1, 30750 * time.Millisecond, 31499 * time.Millisecond, 31500 * time.Millisecond, 32 * time.Second},
			want:         []due{{2, false}, {3, false}, {11, false}, {20, false}, {20, true}, {20, true}},
			wantDeadline: 32 * time.Second, wantTick: 1500 * time.Millisecond / 18,
		},
		{
			name: "a grace already over: everyone at once",
			at:   30 * time.Second, deadline: 29 * time.Second, asked: 2, left: 18,
			checks:       []time.Duration{30 * time.Second},
			want:         []due{{20, true}},
			wantDeadline: 30 * time.Second, wantTick: 20 * time.Millisecond,
		},
		{
			name: "a grace longer than what is left: the schedule stays",
			at:   9 * time.Minute, deadline: 11 * time.Minute, asked: 18, left: 2,
			checks:       []time.Duration{9 * time.Minute, 9*time.Minute + 55*time.Second},
			want:         []due{{19, false}, {20, true}},
			wantDeadline: 10 * time.Minute, wantTick: time.Second,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := slow.Hasten(t0.Add(tt.at), t0.Add(tt.deadline), tt.asked, tt.left)
			var got []due
			for _, at := range tt.checks {
				n, all := p.Due(t0.Add(at))
				got = append(got, due{n, all})
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Due (-got +want):\n%s", diff)
			}
			if got, want := p.Deadline(), t0.Add(tt.wantDeadline); !got.Equal(want) {
				t.Errorf("Deadline = %v, want %v", got, want)
			}
			if got := p.Tick(); got != tt.wantTick {
				t.Errorf("Tick = %v, want %v", got, tt.wantTick)
			}
			if p.Total() != 20 || !p.Deadline().Add(-p.Window()).Equal(t0) {
				t.Errorf("Total %d, start %v; want the drain's, 20 and %v", p.Total(), p.Deadline().Add(-p.Window()), t0)
			}
		})
	}
}
