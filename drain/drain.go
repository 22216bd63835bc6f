package drain

import (
	"math"
	"time"
)

// MaxTail bounds the part of the window kept after the last ask.
const MaxTail = 5 * time.Second

// Tail is the part of a window of within kept after the last ask:
// min(within/4, MaxTail).
func Tail(within time.Duration) time.Duration { return min(within/4, MaxTail) }

// Plan is one drain's schedule. The zero value is not usable; make one
// with New. A Plan is a value: the caller owns it.
type Plan struct {
	start    time.Time
	spread   time.Duration // asks are spread over [start, start+spread]
	deadline time.Time
	total    int
}

// New plans the drain of total sessions, started at start, to end by
// start+within. A window of zero or less asks everyone at once and
// expires at once.
func New(start time.Time, within time.Duration, total int) Plan {
	within = max(within, 0)
	return Plan{start: start, spread: within - Tail(within), deadline: start.Add(within), total: max(total, 0)}
}

// Deadline is when the drain ends: sessions still on the node then are
// closed.
func (p Plan) Deadline() time.Time { return p.deadline }

// Window is the drain's whole window, from its start to its deadline.
func (p Plan) Window() time.Duration { return p.deadline.Sub(p.start) }

// Total is the number of sessions the plan was made for.
func (p Plan) Total() int { return p.total }

// Due says how many sessions should have been asked to move by now, in
// all: total times the share of the spread elapsed, rounded up. all is
// true once the spread is over: every session still there (those that
// attached while the drain started included) should be asked.
func (p Plan) Due(now time.Time) (n int, all bool) {
	elapsed := now.Sub(p.start)
	if elapsed >= p.spread {
		return p.total, true
	}
	if elapsed < 0 {
		return 0, false
	}
	share := float64(elapsed) / float64(p.spread)
	return min(p.total, int(math.Ceil(share*float64(p.total)))), false
}

// Expired reports whether the deadline has passed at now.
func (p Plan) Expired(now time.Time) bool { return !now.Before(p.deadline) }

// Tick is how often the caller should call Due: the spread in about 100
// batches, at least every 20 ms and at most every second, and no more
// often than one session per batch needs.
func (p Plan) Tick() time.Duration {
	t := p.spread / 100
	if p.total > 0 && p.spread/time.Duration(p.total) > t {
		t = p.spread / time.Duration(p.total)
	}
	return min(max(t, 20*time.Millisecond), time.Second)
}
