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

// The table is bounded: when it is full, addresses that have sent
// nothing for sourceIdle are forgotten, at most every sourceSweep, and
// until one is, a new address's packets are dropped. An address merely
// quiet (its bucket full again) is kept.
func TestSourceLimitsBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l := newSourceLimits(10, 5, 3)
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)}), 1000)
	}
	for i := range 3 {
		for range 5 {
			l.allow(addr(i), t0) // each bucket emptied
		}
	}
	if l.allow(addr(3), t0) {
		t.Fatal("a fourth address passed with the table full of busy ones")
	}
	if l.allow(addr(4), t0.Add(time.Second)) {
		t.Fatal("a new address passed with the table full of addresses quiet for 1 s")
	}
	if l.allow(addr(4), t0.Add(sourceIdle-time.Millisecond)) {
		t.Fatal("a new address passed with the table full of addresses not yet idle")
	}
	// No sweep runs within sourceSweep of the last.
	if l.allow(addr(4), t0.Add(sourceIdle+sourceSweep/2)) {
		t.Fatal("a sweep ran before sourceSweep passed")
	}
	if !l.allow(addr(4), t0.Add(sourceIdle-time.Millisecond+sourceSweep)) {
		t.Fatal("a new address was refused once the others were idle")
	}
	if len(l.by) != 1 || len(l.perIP) != 1 {
		t.Errorf("%d addresses (%d IPs) kept after the sweep, want 1", len(l.by), len(l.perIP))
	}
}

// One source IP holds at most maxSourcesPerIP addresses, an IPv6 /64
// counting as one IP; its addresses idle for sourceIdle are forgotten.
func TestSourceLimitsPerIP(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l := newSourceLimits(10, 5, maxSources)
	for _, s := range []struct{ a, other string }{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8:0:1::1", "2001:db8:0:2::1"},
	} {
		host := func(i int) netip.AddrPort {
			a := netip.MustParseAddr(s.a).As16()
			a[15] += byte(i % 2) // for IPv6, another address in the /64
			if netip.MustParseAddr(s.a).Is4() {
				return netip.AddrPortFrom(netip.MustParseAddr(s.a), uint16(1000+i))
			}
			return netip.AddrPortFrom(netip.AddrFrom16(a), uint16(1000+i))
		}
		for i := range maxSourcesPerIP {
			if !l.allow(host(i), t0) {
				t.Fatalf("%s: address %d of the IP refused", s.a, i)
			}
		}
		if l.allow(host(maxSourcesPerIP), t0) {
			t.Fatalf("%s: address %d of one IP passed", s.a, maxSourcesPerIP+1)
		}
		if !l.allow(netip.AddrPortFrom(netip.MustParseAddr(s.other), 1000), t0) {
			t.Fatalf("%s: another IP was refused", s.other)
		}
		if !l.allow(host(maxSourcesPerIP), t0.Add(sourceIdle)) {
			t.Fatalf("%s: a new address of the IP refused once its others were idle", s.a)
		}
		t0 = t0.Add(2 * sourceIdle)
	}
}

// A connected peer sending a packet every 300 ms keeps every one while
// hosts rotate their own source ports, 8,400 new ones every 50 ms at a
// packet a microsecond. One host holds at most maxSourcesPerIP entries,
// so it cannot fill the table, and a peer that connects during its
// flood gets in too; hosts enough to fill it (100) keep new addresses
// out, but not the peer, which, quiet for far less than sourceIdle, is
// never forgotten. Before, every address quiet for 1 ms was forgotten at
// each sweep, the ports refilled the table, and the peer's next packet,
// from a "new" address, was dropped.
func TestSourceLimitsSteadyPeerOutlastsPortRotation(t *testing.T) {
	const (
		burst  = 8400
		period = 50 * time.Millisecond
		span   = 6 * time.Second
		every  = 300 * time.Millisecond
	)
	for _, c := range []struct {
		hosts   int
		joining bool // a second peer's first packet at 3 s
	}{{1, true}, {100, false}} {
		t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
		l := newSourceLimits(sourceRate, sourceBurst, maxSources)
		type peer struct {
			src          netip.AddrPort
			next         time.Time
			sent, passed int
		}
		peers := []*peer{{src: netip.MustParseAddrPort("198.51.100.7:40000"), next: t0.Add(20 * time.Millisecond)}}
		if c.joining {
			peers = append(peers, &peer{src: netip.MustParseAddrPort("198.51.100.8:40000"), next: t0.Add(3*time.Second + 20*time.Millisecond)})
		}
		port := make([]uint16, c.hosts)
		n := 0
		for start := t0.Add(30 * time.Millisecond); start.Before(t0.Add(span)); start = start.Add(period) {
			for i := range burst {
				now := start.Add(time.Duration(i) * time.Microsecond)
				for _, p := range peers {
					if !now.Before(p.next) {
						p.sent++
						if l.allow(p.src, now) {
							p.passed++
						}
						p.next = p.next.Add(every)
					}
				}
				h := n % c.hosts
				n++
				port[h] = port[h]%65535 + 1
				l.allow(netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, byte(h >> 8), byte(h)}), port[h]), now)
			}
		}
		for _, p := range peers {
			if p.passed != p.sent {
				t.Errorf("%d hosts rotating ports: peer %v: %d of %d packets passed, want all", c.hosts, p.src, p.passed, p.sent)
			}
		}
		if len(l.by) > maxSources {
			t.Errorf("%d hosts: %d addresses remembered, more than %d", c.hosts, len(l.by), maxSources)
		}
	}
}
