package rtcfront

import "time"

// A source address may have maxTokenTries tokens refused within
// tokenTriesWindow of the first; its further offers are then refused with
// 429 until the window ends. The node closes a client connection at its
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

// tokenTries counts the refused tokens of each source address. It knows
// no clock (now is an argument) and no lock (Server.mu guards it).
type tokenTries struct {
	by map[string]tokenTry
}

// tokenTry is one address's refusals since the first in its window.
type tokenTry struct {
	n     int
	since time.Time
}

// blocked reports whether src has used its tries as of now, and how long
// until its window ends.
func (t *tokenTries) blocked(src string, now time.Time) (time.Duration, bool) {
	c, ok := t.by[src]
	if !ok || c.n < maxTokenTries {
		return 0, false
	}
	left := c.since.Add(tokenTriesWindow).Sub(now)
	return left, left > 0
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
