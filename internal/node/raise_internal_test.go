package node

import (
	"sync"
	"sync/atomic"
	"testing"
)

// raiseTo keeps the largest value stored, whatever the order of the
// stores: a replaced consumer's late report of missed heartbeats must not
// hide its successor's (rooms_feed.go, missedGen).
func TestRaiseToKeepsTheLargest(t *testing.T) {
	var a atomic.Uint64
	for _, v := range []uint64{3, 1, 7, 7, 2} {
		raiseTo(&a, v)
	}
	if got := a.Load(); got != 7 {
		t.Fatalf("after 3, 1, 7, 7, 2: %d; want 7", got)
	}
	var b atomic.Uint64
	var wg sync.WaitGroup
	for v := range uint64(64) {
		wg.Go(func() { raiseTo(&b, v) })
	}
	wg.Wait()
	if got := b.Load(); got != 63 {
		t.Fatalf("after 0-63 at once: %d; want 63", got)
	}
}
