package rtcfront

import "time"

// A source address may have maxTokenTries tokens refused within
// tokenTriesWindow of the first; its further offers are then refused with
// 429 until the window ends. Tokens the node is judging count with those
// refused: no more than maxTokenTries are judged at once. The node closes a client connection at its
// third refused attach; each offer's member attaches on a connection of
// its own, so without this one address could try token after token, each
// costing the node a connection, a hello and a signature check.
const (
	maxTokenTries    = 3
	tokenTriesWindow = 10 * time.Second
	// maxTokenTriesKept bounds the addresses remembered at once; past it,
	// those whose window has ended are forgotten, and if none has, a new
	// address is not counted (the per-source peer limit still holds).
	maxTokenTriesKept = 10000
)

// tokenTries counts the refused tokens of each source address, and the
// tokens the node is judging (pending): an offer with a token is a try
// from the admit until the node has judged it (begin, settle). Counted
// only once refused, concurrent offers all passed while the first were
// being judged, and one address had the node judge as many tokens at
// once as it may hold peers (MaxPeersPerSource), not maxTokenTries. It
// knows no clock (now is an argument) and no lock (Server.mu guards it).
type tokenTries struct {
	by      map[string]tokenTry
	pending map[string]int // tries begun and not settled, by address
}

// pendingRetry is the wait a try refused for tries pending is told: the
// node judges a token within an attach, a second or so.
const pendingRetry = time.Second

// tokenTry is one address's refusals since the first in its window.
type tokenTry struct {
	n     int
	since time.Time
}

// blocked reports whether src has used its tries as of now: tokens
// refused within the window, and how long until the window ends.
func (t *tokenTries) blocked(src string, now time.Time) (time.Duration, bool) {
	n, left := t.inWindow(src, now)
	return left, n >= maxTokenTries
}

// inWindow returns the tokens of src refused in its window as of now, and
// how long until the window ends (none: 0, 0).
func (t *tokenTries) inWindow(src string, now time.Time) (int, time.Duration) {
	c, ok := t.by[src]
	if !ok {
		return 0, 0
	}
	left := c.since.Add(tokenTriesWindow).Sub(now)
	if left <= 0 {
		return 0, 0
	}
	return c.n, left
}

// begin counts a try of src (an offer with a token) from now until
// settle, unless src has used its tries, those refused within the window
// and those pending together: then it reports how long until src may
// try again, until the window ends, or pendingRetry when pending tries
// fill the rest.
func (t *tokenTries) begin(src string, now time.Time) (time.Duration, bool) {
	n, left := t.inWindow(src, now)
	switch {
	case n >= maxTokenTries:
		return left, false
	case n+t.pending[src] >= maxTokenTries:
		return pendingRetry, false
	}
	if t.pending == nil {
		t.pending = map[string]int{}
	}
	t.pending[src]++
	return 0, true
}

// settle ends a try of src begun, counting it as refused at now if the
// node refused the token.
func (t *tokenTries) settle(src string, now time.Time, refused bool) {
	if n := t.pending[src]; n > 1 {
		t.pending[src] = n - 1
	} else {
		delete(t.pending, src)
	}
	if refused {
		t.refused(src, now)
	}
}

// refused counts a token of src refused at now.
func (t *tokenTries) refused(src string, now time.Time) {
	if t.by == nil {
		t.by = map[string]tokenTry{}
	}
	c, ok := t.by[src]
	if ok && now.Sub(c.since) >= tokenTriesWindow {
		ok = false
	}
	if !ok {
		if len(t.by) >= maxTokenTriesKept {
			t.forget(now)
			if len(t.by) >= maxTokenTriesKept {
				return
			}
		}
		c = tokenTry{since: now}
	}
	c.n++
	t.by[src] = c
}

// forget drops the addresses whose window has ended by now.
func (t *tokenTries) forget(now time.Time) {
	for src, c := range t.by {
		if now.Sub(c.since) >= tokenTriesWindow {
			delete(t.by, src)
		}
	}
}
