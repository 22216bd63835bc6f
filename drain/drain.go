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
	start    time.Time     // the drain's start
	from     time.Time     // the spread's start: the drain's, or a Hasten's
	spread   time.Duration // asks are spread over [from, from+spread]
	deadline time.Time
	total    int // sessions when the drain started
	base     int // asked before from: by the schedule Hasten replaced
	left     int // to ask over the spread, after base
}

// New plans the drain of total sessions, started at start, to end by
// start+within. A window of zero or less asks everyone at once and
// expires at once.
func New(start time.Time, within time.Duration, total int) Plan {
	within = max(within, 0)
	total = max(total, 0)
	return Plan{start: start, from: start, spread: within - Tail(within), deadline: start.Add(within), total: total, left: total}
}

// Hasten re-plans the drain at now to end by deadline, when that comes
// before p's deadline (a stop's grace shorter than what is left of an
// operator's drain): asked sessions were asked so far, and the left not
// yet asked are spread over the new window, from now to deadline, as New
// spreads a drain's, with the same tail. Due then counts from asked. A
// deadline at or after p's returns p unchanged; one already passed asks
// everyone at once. The drain's start and Total stay.
func (p Plan) Hasten(now, deadline time.Time, asked, left int) Plan {
	if !deadline.Before(p.deadline) {
		return p
	}
	q := New(now, deadline.Sub(now), left)
	q.start, q.total, q.base = p.start, p.total, max(asked, 0)
	return q
}

// Deadline is when the drain ends: sessions still on the node then are
// closed.
func (p Plan) Deadline() time.Time { return p.deadline }

// Window is the drain's whole window, from its start to its deadline.
func (p Plan) Window() time.Duration { return p.deadline.Sub(p.start) }

// Total is the number of sessions the plan was made for: those attached
// when the drain started.
func (p Plan) Total() int { return p.total }

// Due says how many sessions should have been asked to move by now, in
// all: those asked before a Hasten, plus the ones to ask over the spread
// times the share of it elapsed, rounded up. all is true once the spread
// is over: every session still there (those that attached while the
// drain started included) should be asked.
func (p Plan) Due(now time.Time) (n int, all bool) {
	elapsed := now.Sub(p.from)
	if elapsed >= p.spread {
		return p.base + p.left, true
	}
	if elapsed < 0 {
		return p.base, false
	}
	share := float64(elapsed) / float64(p.spread)
	return p.base + min(p.left, int(math.Ceil(share*float64(p.left)))), false
}

// Expired reports whether the deadline has passed at now.
func (p Plan) Expired(now time.Time) bool { return !now.Before(p.deadline) }

// Tick is how often the caller should call Due: the spread in about 100
// batches, at least every 20 ms and at most every second, and no more
// often than one session per batch needs.
func (p Plan) Tick() time.Duration {
	t := p.spread / 100
	if p.left > 0 && p.spread/time.Duration(p.left) > t {
		t = p.spread / time.Duration(p.left)
	}
	return min(max(t, 20*time.Millisecond), time.Second)
}
