package sipfront

import (
	"net/netip"
	"time"
)

// Reasons a call is refused for a limit, besides refusedTotal and
// refusedPerSource (metrics.go), as the metrics label them.
const refusedUnconfirmed = "unconfirmed" // MaxUnconfirmedCalls reached

// limits counts the calls a front holds against its call limits: each
// call, from its admission to its end, against MaxCalls and
// MaxCallsPerSource; and while it is unconfirmed (being set up, or
// answered with a 200 that its caller has not acknowledged) against
// MaxUnconfirmedCalls as well.
//
// A 200 that nobody acknowledges costs its sender one datagram, from any
// source address it cares to write: the front sends the 200 again until
// the ACK comes, for 64*T1 (32 s) as RFC 3261 (section 13.3.1.4) says,
// and such calls used to hold their places all that time, so that a few
// packets every 32 s kept every caller out. Now they can take at most
// MaxUnconfirmedCalls places, and once one has waited grace for its ACK
// it gives its place up to a new call that finds a limit reached: the
// oldest such call is evicted (admit). An honest caller's ACK comes
// within a round trip, or a retransmission or two of the 200 later, and
// nobody takes the place of a call whose ACK is late while no limit is
// reached.
//
// limits does no I/O and reads no clock (admit and answered take now);
// Server.mu guards it.
type limits struct {
	maxCalls, maxPerSource, maxUnconfirmed int
	grace                                  time.Duration

	calls       int                  // places held
	unconfirmed int                  // places of calls not confirmed
	bySource    map[netip.Addr]int   // places held, by source
	waiting     map[*place]time.Time // answered and not confirmed: when answered
}

// place is one call's hold on the limits.
type place struct {
	src       netip.Addr
	call      *call // the call holding it, once answered
	confirmed bool  // the caller acknowledged the 200
	freed     bool
}

func newLimits(maxCalls, maxPerSource, maxUnconfirmed int, grace time.Duration) *limits {
	return &limits{maxCalls: maxCalls, maxPerSource: maxPerSource, maxUnconfirmed: maxUnconfirmed, grace: grace,
		bySource: map[netip.Addr]int{}, waiting: map[*place]time.Time{}}
}

// admit takes a place at now for a call from src, or returns the limit
// that refuses it (refusedTotal, refusedPerSource or refusedUnconfirmed,
// in that order when several are reached). When a limit is reached and
// an answered call has waited at least grace for its ACK (a call from
// src, when src's own limit is one reached), the one that has waited
// longest gives its place up: it is returned as evicted, its place
// freed, and the caller of admit ends its call.
func (l *limits) admit(src netip.Addr, now time.Time) (p, evicted *place, refused string) {
	total := l.calls >= l.maxCalls
	perSource := l.bySource[src] >= l.maxPerSource
	unconfirmed := l.unconfirmed >= l.maxUnconfirmed
	if total || perSource || unconfirmed {
		evicted = l.oldestWaiting(now, src, perSource)
		switch {
		case evicted != nil:
			l.free(evicted)
		case total:
			return nil, nil, refusedTotal
		case perSource:
			return nil, nil, refusedPerSource
		default:
			return nil, nil, refusedUnconfirmed
		}
	}
	l.calls++
	l.unconfirmed++
	l.bySource[src]++
	return &place{src: src}, evicted, ""
}

// oldestWaiting is the answered call that has waited longest for its
// ACK, if it has waited at least grace (and is from src when sameSource
// is set); else nil.
func (l *limits) oldestWaiting(now time.Time, src netip.Addr, sameSource bool) *place {
	var oldest *place
	var since time.Time
	for p, at := range l.waiting {
		if now.Sub(at) < l.grace || sameSource && p.src != src {
			continue
		}
		if oldest == nil || at.Before(since) {
			oldest, since = p, at
		}
	}
	return oldest
}

// answered notes that the 200 to p's call c goes out at now.
func (l *limits) answered(p *place, c *call, now time.Time) {
	if p.freed || p.confirmed {
		return
	}
	p.call = c
	l.waiting[p] = now
}

// confirm notes that p's caller acknowledged the 200: p counts no
// longer against MaxUnconfirmedCalls, and is evicted no more. False when
// p was freed (evicted) first.
func (l *limits) confirm(p *place) bool {
	if p.freed {
		return false
	}
	if !p.confirmed {
		p.confirmed = true
		l.unconfirmed--
		delete(l.waiting, p)
	}
	return true
}

// free gives p back; once.
func (l *limits) free(p *place) {
	if p.freed {
		return
	}
	p.freed = true
	l.calls--
	if l.bySource[p.src]--; l.bySource[p.src] <= 0 {
		delete(l.bySource, p.src)
	}
	if !p.confirmed {
		l.unconfirmed--
		delete(l.waiting, p)
	}
}
