package node

import (
	"fmt"
	"testing"
	"time"
)

// A source's bucket holds twice MaxConnsPerIP and refills at a quarter of
// it a second; sources are held apart; at maxViewSources the refilled
// ones are forgotten (at most one sweep a second), and while every one
// held is in use a new source is not held back.
func TestSourceBuckets(t *testing.T) {
	var b sourceBuckets
	t0 := time.Unix(1000, 0)
	takes := func(key string, n int, at time.Time) int {
		ok := 0
		for range n {
			if b.take(key, 4, at) {
				ok++
			}
		}
		return ok
	}
	if got := takes("10.0.0.1", 20, t0); got != 8 {
		t.Errorf("a fresh source took %d views at once, want 8", got)
	}
	if got := takes("10.0.0.2", 20, t0); got != 8 {
		t.Errorf("another source took %d, want its own 8", got)
	}
	if got := takes("10.0.0.1", 20, t0.Add(2*time.Second)); got != 2 {
		t.Errorf("2 s later the first took %d, want 2 (1 a second)", got)
	}
	// A reload to a lower MaxConnsPerIP lowers the burst at once.
	if !b.take("10.0.0.3", 100, t0) {
		t.Fatal("a fresh source refused")
	}
	if b.take("10.0.0.3", 1, t0); b.buckets["10.0.0.3"].tokens > 2 {
		t.Errorf("after a reload to 1 a source holds %v views, want at most 2", b.buckets["10.0.0.3"].tokens)
	}

	// Fill the table with sources that spent their views.
	b = sourceBuckets{}
	for i := range maxViewSources {
		takes(fmt.Sprint(i), 8, t0)
	}
	if !b.take("newcomer", 4, t0) {
		t.Error("a newcomer refused while every source held is in use")
	}
	if _, held := b.buckets["newcomer"]; held {
		t.Error("a newcomer held past maxViewSources")
	}
	// 8 s later every bucket has refilled: the next newcomer sweeps them.
	if !b.take("later", 4, t0.Add(8*time.Second)) {
		t.Error("a newcomer refused after the sweep")
	}
	if got := len(b.buckets); got != 1 {
		t.Errorf("%d sources held after the sweep, want the newcomer alone", got)
	}
}
