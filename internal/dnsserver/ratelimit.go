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

// The wide networks a client network is counted in as well: an IPv4 /16,
// an IPv6 /32 (an operator's allocation), which gets wideShare times a
// client network's rate over all its client networks. Without it, spoofed
// queries spread over the client networks of one victim network drew the
// rate of each: 100 replies a second from each of the 65,536 /56s of an
// IPv6 /40, some 22 times the bytes of the queries, all to the victim.
const (
	wideBits4 = 16
	wideBits6 = 32
	wideShare = 16
)

// maxRateBuckets bounds the networks a rateLimiter remembers at once.
const maxRateBuckets = 1 << 16

// rateLimiter is a token bucket per client network: rate replies a second,
// up to a burst of one second's worth, and one per wide network (wideShare
// times that). It is a pure core: time comes in as an argument. Safe for
// concurrent use.
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
	rate   float64 // tokens a second, and the burst
}

func newRateLimiter(rate int) *rateLimiter {
	return &rateLimiter{rate: float64(rate), max: maxRateBuckets, buckets: make(map[netip.Prefix]*bucket)}
}

// clientNet is the network a client address is counted in.
func clientNet(a netip.Addr) netip.Prefix {
	return netOf(a, rateLimitBits4, rateLimitBits6)
}

// wideNet is the wide network a client address is counted in too.
func wideNet(a netip.Addr) netip.Prefix {
	return netOf(a, wideBits4, wideBits6)
}

func netOf(a netip.Addr, bits4, bits6 int) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := bits6
	if a.Is4() {
		bits = bits4
	}
	p, _ := a.Prefix(bits)
	return p
}

// allowClient reports whether the client at a may have one more full
// reply at now: its network and its wide network both have a token left.
// It counts the reply in both.
func (l *rateLimiter) allowClient(a netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketLocked(clientNet(a), l.rate, now)
	w := l.bucketLocked(wideNet(a), l.rate*wideShare, now)
	if b == nil || w == nil || b.tokens < 1 || w.tokens < 1 {
		return false
	}
	b.tokens--
	w.tokens--
	return true
}

// allow reports whether the client network p may have one more full reply
// at now, and counts it, in p's bucket alone.
func (l *rateLimiter) allow(p netip.Prefix, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketLocked(p, l.rate, now)
	if b == nil || b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// bucketLocked returns p's bucket (of rate, made full if p is new) with
// its tokens as of now, or nil when the table is full. When it is full,
// networks idle long enough to have a full bucket are forgotten, at most
// once a second; a new network that still finds no room is not allowed
// until then.
func (l *rateLimiter) bucketLocked(p netip.Prefix, rate float64, now time.Time) *bucket {
	b := l.buckets[p]
	if b == nil {
		if len(l.buckets) >= l.max {
			if now.Sub(l.lastSweep) < time.Second {
				return nil
			}
			l.lastSweep = now
			for q, c := range l.buckets {
				if c.refill(now) >= c.rate {
					delete(l.buckets, q)
				}
			}
			if len(l.buckets) >= l.max {
				return nil
			}
		}
		b = &bucket{tokens: rate, last: now, rate: rate}
		l.buckets[p] = b
	}
	b.tokens = b.refill(now)
	if now.After(b.last) {
		b.last = now
	}
	return b
}

// refill returns the bucket's tokens at now, at most its rate.
func (b *bucket) refill(now time.Time) float64 {
	dt := now.Sub(b.last).Seconds()
	if dt <= 0 {
		return b.tokens
	}
	return min(b.tokens+dt*b.rate, b.rate)
}
