package drain

import "time"

// ReaskAfter is how long after asking a session to move a node may ask
// it again, if it is still attached: the clients' move timeout (10 s,
// client/move.go's moveTimeout and the web page's MOVE_TIMEOUT_MS), plus
// the failover machine's cool-down of the nodes that failed the move
// (5 s, failover.DefaultConfig), plus 5 s for the ask to arrive and the
// failed move to come back to its old connection. A session still there
// by then gave its move up: nowhere to go, a token fetch that failed, or
// every other node cooling down in its failover machine.
const ReaskAfter = 20 * time.Second

// MaxAsks bounds how many times one drain, or the rebalancer between
// two drains, asks one session to move.
const MaxAsks = 3

// Asks remembers which sessions a node asked to move: when it asked each
// last, and how many times. The caller names a session with a key of its
// choice, asks only the sessions Askable allows, records each ask with
// Asked, and forgets the sessions that left with Keep. A drain starts
// with an empty Asks, so that one drain's asks are not the next's. Not
// safe for concurrent use: the loop that asks owns it.
type Asks[K comparable] struct {
	again time.Duration
	most  int
	last  map[K]ask
}

type ask struct {
	at time.Time // the last ask
	n  int       // asks so far
}

// NewAsks returns an empty Asks that lets a session be asked again once
// again has passed since its last ask (ReaskAfter when again is zero or
// less), most times in all (MaxAsks when most is zero or less).
func NewAsks[K comparable](again time.Duration, most int) *Asks[K] {
	if again <= 0 {
		again = ReaskAfter
	}
	if most <= 0 {
		most = MaxAsks
	}
	return &Asks[K]{again: again, most: most, last: map[K]ask{}}
}

// Askable reports whether session k may be asked to move at now: it was
// never asked, or its last ask is stale (again or more ago) and it was
// asked fewer than most times, and up says another node is up for it to
// move to (asking again a session that has nowhere to go would only
// send it on the same failed search).
func (a *Asks[K]) Askable(k K, now time.Time, up bool) bool {
	l, ok := a.last[k]
	if !ok {
		return true
	}
	return up && l.n < a.most && now.Sub(l.at) >= a.again
}

// Asked records that session k was asked to move at now, and returns how
// many times it was asked in all, this one included.
func (a *Asks[K]) Asked(k K, now time.Time) int {
	l := a.last[k]
	l.at, l.n = now, l.n+1
	a.last[k] = l
	return l.n
}

// Times is how many times session k was asked to move.
func (a *Asks[K]) Times(k K) int { return a.last[k].n }

// Pending reports whether session k was asked to move and its last ask is
// not stale at now: as far as the node knows, the session is on its way
// elsewhere. One whose ask is stale, still attached, stays.
func (a *Asks[K]) Pending(k K, now time.Time) bool {
	l, ok := a.last[k]
	return ok && now.Sub(l.at) < a.again
}

// Keep forgets the sessions keep returns false for: those that left.
// keep may read a (Pending, Times), not change it.
func (a *Asks[K]) Keep(keep func(K) bool) {
	for k := range a.last {
		if !keep(k) {
			delete(a.last, k)
		}
	}
}

// Len is how many sessions a remembers.
func (a *Asks[K]) Len() int { return len(a.last) }
