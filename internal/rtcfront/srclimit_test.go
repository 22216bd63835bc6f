package rtcfront

import (
	"net/netip"
	"testing"
	"time"
)

// A transcript of two addresses' packets against their buckets.
func TestSourceLimits(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l := newSourceLimits(10, 5, 100)
	a := netip.MustParseAddrPort("192.0.2.1:5000")
	b := netip.MustParseAddrPort("192.0.2.1:5001")
	send := func(src netip.AddrPort, at time.Duration, n int) (passed int) {
		for range n {
			if l.allow(src, t0.Add(at)) {
				passed++
			}
		}
		return passed
	}
	for i, s := range []struct {
		src  netip.AddrPort
		at   time.Duration
		n    int
		want int
	}{
		{a, 0, 8, 5},                        // a burst, then nothing
		{b, 0, 3, 3},                        // another port is another source
		{a, 100 * time.Millisecond, 3, 1},   // a token a tenth of a second
		{a, 400 * time.Millisecond, 5, 3},   // three more
		{a, 10 * time.Second, 8, 5},         // a full bucket, no more
		{b, 10 * time.Second, 100, 5},       // b's too
		{a, 10050 * time.Millisecond, 1, 0}, // half a token
	} {
		if got := send(s.src, s.at, s.n); got != s.want {
			t.Fatalf("step %d: %d packets from %v at %v: %d passed, want %d", i, s.n, s.src, s.at, got, s.want)
		}
	}
}

// The table is bounded: when it is full, addresses whose bucket is full
// again are forgotten, at most every sourceSweep, and until one is, a new
// address's packets are dropped.
func TestSourceLimitsBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l := newSourceLimits(10, 5, 3)
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(1000+i))
	}
	for i := range 3 {
		for range 5 {
			l.allow(addr(i), t0) // each bucket emptied
		}
	}
	if l.allow(addr(3), t0) {
		t.Fatal("a fourth address passed with the table full of busy ones")
	}
	// No sweep runs within sourceSweep of the last.
	if l.allow(addr(4), t0.Add(sourceSweep/2)) {
		t.Fatal("a sweep ran before sourceSweep passed")
	}
	if !l.allow(addr(4), t0.Add(time.Second)) {
		t.Fatal("a new address was refused once the others were idle")
	}
	if len(l.by) != 1 {
		t.Errorf("%d addresses kept after the sweep, want 1", len(l.by))
	}
}
