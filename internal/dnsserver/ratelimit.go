package dnsserver

import (
	"net/netip"
	"sync"
	"time"
)

// Client networks a rate limit applies to: a UDP source address is counted
// with the others of its IPv4 /24 or IPv6 /56, which one site or one
// attacker's spoofing range usually shares.
const (
	rateLimitBits4 = 24
	rateLimitBits6 = 56
)

// maxRateBuckets bounds the networks a rateLimiter remembers at once.
const maxRateBuckets = 1 << 16

// rateLimiter is a token bucket per client network: rate replies a second,
// up to a burst of one second's worth. It is a pure core: time comes in as
// an argument. Safe for concurrent use.
type rateLimiter struct {
	rate float64 // tokens a second, and the burst
	max  int     // networks remembered at once

	mu        sync.Mutex // guards the fields below
	buckets   map[netip.Prefix]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate int) *rateLimiter {
	return &rateLimiter{rate: float64(rate), max: maxRateBuckets, buckets: make(map[netip.Prefix]*bucket)}
}

// clientNet is the network a client address is counted in.
func clientNet(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := rateLimitBits6
	if a.Is4() {
		bits = rateLimitBits4
	}
	p, _ := a.Prefix(bits)
	return p
}

// allow reports whether the client network p may have one more full reply
// at now, and counts it. When the table is full, networks idle long enough
// to have a full bucket are forgotten, at most once a second; a new network
// that still finds no room is not allowed until then.
func (l *rateLimiter) allow(p netip.Prefix, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[p]
	if b == nil {
		if len(l.buckets) >= l.max {
			if now.Sub(l.lastSweep) < time.Second {
				return false
			}
			l.lastSweep = now
			for q, c := range l.buckets {
				if c.refill(now, l.rate) >= l.rate {
					delete(l.buckets, q)
				}
			}
			if len(l.buckets) >= l.max {
				return false
			}
		}
		b = &bucket{tokens: l.rate, last: now}
		l.buckets[p] = b
	}
	b.tokens = b.refill(now, l.rate)
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// refill returns the bucket's tokens at now, at most rate.
func (b *bucket) refill(now time.Time, rate float64) float64 {
	dt := now.Sub(b.last).Seconds()
	if dt <= 0 {
		return b.tokens
	}
	return min(b.tokens+dt*rate, rate)
}
