package node

import (
	"sync"
	"time"
)

// A connection's views bucket (ViewRate, ViewBurst) bounds what one
// connection may ask, but a stranger closing and opening connections
// gets a full bucket with each: ViewBurst views, at 2,000 nodes about
// 5 ms of the node's CPU, for each connection it opens. So the views drawn for one source address (addrKey's keys,
// as MaxConnsPerIP counts them) share a bucket too, across its
// connections and after they close: ViewSourceBurstPer times
// MaxConnsPerIP at once (512 at the default of 256: every connection a
// source may hold can say hello and have an attach refused together,
// as after a failover behind a NAT), refilled at MaxConnsPerIP divided
// by ViewSourceRateDiv a second (64 at the default). Connections not
// counted per address (the node's own fronts, a proxy beside it) have
// no source bucket.
const (
	ViewSourceBurstPer = 2
	ViewSourceRateDiv  = 4
)

// maxViewSources bounds the sources whose buckets are kept. A source
// whose bucket has refilled is forgotten when room is needed (at most
// one sweep a second); while every bucket held is in use, a new source
// is not held back by one (it still has its connection's bucket), so
// that strangers spread over many addresses cannot lock out newcomers.
const maxViewSources = 1 << 16

// The buckets a view can be refused by: the values of the bucket label
// of switchboard_views_refused_total.
const (
	viewBucketConnection = "connection"
	viewBucketSource     = "source"
)

var viewBuckets = []string{viewBucketConnection, viewBucketSource}

// sourceBuckets are the views buckets of source addresses. Its mutex
// guards it, and is never held across I/O.
type sourceBuckets struct {
	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

// take takes one view from key's bucket, whose burst and rate follow
// perIP (MaxConnsPerIP, read at each call so that a reload applies at
// once), and reports whether it had one.
func (b *sourceBuckets) take(key string, perIP int64, now time.Time) bool {
	rate, burst := float64(perIP)/ViewSourceRateDiv, int(perIP)*ViewSourceBurstPer
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, ok := b.buckets[key]
	if !ok {
		if b.buckets == nil {
			b.buckets = make(map[string]*bucket)
		}
		if len(b.buckets) >= maxViewSources {
			b.sweepLocked(now)
		}
		if len(b.buckets) >= maxViewSources {
			return true
		}
		fresh := newBucket(rate, burst)
		bk = &fresh
		b.buckets[key] = bk
	}
	bk.rate, bk.burst = rate, float64(burst)
	bk.refill(now)
	bk.tokens = min(bk.tokens, bk.burst) // a burst lowered by a reload
	if bk.tokens < 1 {
		return false
	}
	bk.tokens--
	return true
}

// sweepLocked forgets the sources whose buckets have refilled, at most
// once a second.
func (b *sourceBuckets) sweepLocked(now time.Time) {
	if now.Sub(b.lastSweep) < time.Second {
		return
	}
	b.lastSweep = now
	for key, bk := range b.buckets {
		bk.refill(now)
		if bk.tokens >= bk.burst {
			delete(b.buckets, key)
		}
	}
}
