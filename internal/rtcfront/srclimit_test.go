package rtcfront

import (
	"net/netip"
	"slices"
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

// The table is bounded: when it is full of addresses peers' guards
// verified, addresses that have sent nothing for sourceIdle are
// forgotten, at most every sourceSweep, and until one is, a new
// address's packets are dropped. An address merely quiet (its bucket
// full again) is kept.
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
		l.verified.tell(true, addr(i))
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
// flood gets in too; hosts enough to fill it (100) churn its unverified
// places, but not the peer's, which its guard verified and which, quiet
// for far less than sourceIdle, is never forgotten. Before, every address quiet for 1 ms was forgotten at
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
							// Its guard verifies its first check.
							l.verified.tell(true, p.src)
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

// When the table is full, a new address takes the place of the address
// least recently heard from that no peer's guard has verified (as of
// the last sweep, at most every sourceSweep); a verified address keeps
// its place, and with none unverified the new address's packet is
// dropped. The bound per IP is as before. Before, a new address's
// packet was dropped whenever the table was full: 4,096 addresses
// sending a packet every 9 s kept every new peer's checks out.
func TestSourceLimitsEvictUnverified(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	// addr is the i-th of the table's maxSources addresses: 64 IPs of
	// 64 ports, each IP at its bound.
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i / maxSourcesPerIP)}), uint16(40000+i%maxSourcesPerIP))
	}
	newcomer := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 50000)
	}
	type step struct {
		at      time.Duration
		src     netip.AddrPort
		pass    bool
		evicted netip.AddrPort // the address no longer in the table, if any
	}
	for _, c := range []struct {
		name     string
		verified func(i int) bool // the filling addresses verified
		unverify []int            // and then forgotten by their peers
		refresh  []int            // heard from after the first sweep
		steps    []step
	}{
		{
			name:     "all unverified: the oldest give way, one a new address",
			verified: func(int) bool { return false },
			steps: []step{
				{at: time.Second, src: newcomer(1), pass: true, evicted: addr(0)},
				{at: time.Second + time.Millisecond, src: newcomer(2), pass: true, evicted: addr(1)}, // within sourceSweep: the same list
				{at: 2 * time.Second, src: newcomer(1), pass: true},                                  // in the table now
				{at: 3 * time.Second, src: addr(0), pass: true, evicted: addr(2)},                    // back, as a new address
			},
		},
		{
			name:     "all verified: no place",
			verified: func(int) bool { return true },
			steps: []step{
				{at: time.Second, src: newcomer(1), pass: false},
				{at: 2 * time.Second, src: newcomer(1), pass: false},
				{at: sourceIdle - time.Millisecond, src: newcomer(2), pass: false},
			},
		},
		{
			name:     "mixed: verified addresses are passed over",
			verified: func(i int) bool { return i%2 == 0 || i < 100 },
			steps: []step{
				{at: time.Second, src: newcomer(1), pass: true, evicted: addr(101)},
				{at: time.Second, src: newcomer(2), pass: true, evicted: addr(103)},
			},
		},
		{
			name:     "a peer ended: its addresses are unverified again",
			verified: func(i int) bool { return true },
			unverify: []int{7, 5},
			steps: []step{
				{at: time.Second, src: newcomer(1), pass: true, evicted: addr(5)},
				{at: time.Second, src: newcomer(2), pass: true, evicted: addr(7)},
				{at: time.Second, src: newcomer(3), pass: false},
			},
		},
		{
			name:     "an address heard from since the sweep keeps its place till the next",
			verified: func(i int) bool { return i >= 3 },
			refresh:  []int{1},
			steps: []step{
				{at: time.Second, src: newcomer(1), pass: true, evicted: addr(0)},
				// addr(1) is refreshed here, after the sweep.
				{at: time.Second + 2*time.Millisecond, src: newcomer(2), pass: true, evicted: addr(2)},
				{at: time.Second + 3*time.Millisecond, src: newcomer(3), pass: false}, // the list is spent
				// A sweep lists the unverified anew: newcomer(1) is
				// the least recently heard from, then addr(1).
				{at: time.Second + sourceSweep + 3*time.Millisecond, src: newcomer(3), pass: true, evicted: newcomer(1)},
				{at: time.Second + sourceSweep + 4*time.Millisecond, src: newcomer(4), pass: true, evicted: addr(1)},
			},
		},
		{
			name:     "the bound per IP holds: an IP at it gets no eviction",
			verified: func(i int) bool { return i >= maxSourcesPerIP },
			steps: []step{
				{at: time.Second, src: netip.AddrPortFrom(addr(0).Addr(), 1), pass: false},                // its own addresses unverified
				{at: time.Second + sourceSweep, src: netip.AddrPortFrom(addr(70).Addr(), 1), pass: false}, // verified
				{at: time.Second + 2*sourceSweep, src: newcomer(1), pass: true, evicted: addr(0)},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newSourceLimits(sourceRate, sourceBurst, maxSources)
			for i := range maxSources {
				if !l.allow(addr(i), t0.Add(time.Duration(i)*time.Microsecond)) {
					t.Fatalf("address %d refused while the table filled", i)
				}
				if c.verified(i) {
					l.verified.tell(true, addr(i))
				}
			}
			for _, i := range c.unverify {
				l.verified.tell(false, addr(i))
			}
			for k, s := range c.steps {
				if k == 1 {
					for _, i := range c.refresh {
						l.allow(addr(i), t0.Add(s.at-time.Millisecond))
					}
				}
				if got := l.allow(s.src, t0.Add(s.at)); got != s.pass {
					t.Fatalf("step %d: %v at %v passed %v, want %v", k, s.src, s.at, got, s.pass)
				}
				if _, in := l.by[s.src]; in != s.pass {
					t.Fatalf("step %d: %v in the table: %v", k, s.src, in)
				}
				if s.evicted.IsValid() {
					if _, in := l.by[s.evicted]; in {
						t.Fatalf("step %d: %v kept, want it evicted", k, s.evicted)
					}
				}
				if len(l.by) > maxSources {
					t.Fatalf("step %d: %d addresses in the table", k, len(l.by))
				}
				total := 0
				for ip, n := range l.perIP {
					if n > maxSourcesPerIP {
						t.Fatalf("step %d: %d addresses of %v", k, n, ip)
					}
					total += n
				}
				if total != len(l.by) {
					t.Fatalf("step %d: %d addresses counted per IP, %d in the table", k, total, len(l.by))
				}
			}
			for i := range maxSources {
				if _, in := l.by[addr(i)]; !in && c.verified(i) && !slices.Contains(c.unverify, i) {
					t.Errorf("verified address %d was evicted", i)
				}
			}
		})
	}
}

// The reviewer's case: 4,096 addresses (64 hosts of 64 ports) each
// sending a packet every 9 s keep the table full; a new peer's checks
// get in, and once its guard has verified it, it keeps its place while
// the address it displaced comes back and takes another's.
func TestSourceLimitsTableFullOfSlowSourcesLetsAPeerIn(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l := newSourceLimits(sourceRate, sourceBurst, maxSources)
	round := func(r int) {
		at := t0.Add(time.Duration(r) * 9 * time.Second)
		for i := range maxSources {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i / 64)}), uint16(40000+i%64))
			l.allow(src, at.Add(time.Duration(i)*time.Millisecond))
		}
	}
	for r := range 3 {
		round(r)
	}
	peer := netip.MustParseAddrPort("198.51.100.7:50000")
	at := t0.Add(2*9*time.Second + 5*time.Second)
	for i := range 50 {
		if !l.allow(peer, at.Add(time.Duration(i)*100*time.Millisecond)) {
			t.Fatalf("the new peer's packet %d of 50 was dropped", i+1)
		}
		if i == 0 {
			l.verified.tell(true, peer) // its guard verified its check
		}
	}
	for r := 3; r < 6; r++ {
		round(r)
		if !l.allow(peer, t0.Add(time.Duration(r)*9*time.Second+5*time.Second)) {
			t.Fatalf("round %d: the peer's packet was dropped", r)
		}
	}
	if len(l.by) != maxSources {
		t.Errorf("%d addresses in the table, want %d", len(l.by), maxSources)
	}
}

// A peer's guard tells the socket's table of each address it counts, a
// check from it having verified with the peer's ICE password, and of
// them all once the peer is forgotten: the table then keeps a verified
// address's place from new addresses, and gives it up once its peer is
// gone. A check that fails MESSAGE-INTEGRITY verifies nothing.
func TestSourceLimitsLearnFromTheGuard(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l := newSourceLimits(sourceRate, sourceBurst, 2)
	m := newGuardedMux(nil, false, l.verified)
	g := m.watch("ufrag", "the-peers-password")
	peer := netip.MustParseAddrPort("[::ffff:192.0.2.1]:5000") // as the socket may read it
	other := netip.MustParseAddrPort("192.0.2.2:5000")
	for _, src := range []netip.AddrPort{peer, other} {
		if !l.allow(normalAddr(src), t0) {
			t.Fatalf("%v refused", src)
		}
	}
	if g.check(other, check("not-the-password", nil)) {
		t.Fatal("a check with another password was read")
	}
	if !g.check(peer, check("the-peers-password", nil)) {
		t.Fatal("the peer's check was not read")
	}
	if !l.allow(netip.MustParseAddrPort("192.0.2.3:5000"), t0.Add(time.Second)) {
		t.Fatal("a new address found no place with an unverified one in the table")
	}
	if _, in := l.by[normalAddr(peer)]; !in {
		t.Fatal("the peer's verified address was evicted")
	}
	if _, in := l.by[other]; in {
		t.Fatal("the unverified address was kept")
	}
	// The new address gives way in turn, the oldest unverified.
	if !l.allow(netip.MustParseAddrPort("192.0.2.4:5000"), t0.Add(2*time.Second)) {
		t.Fatal("a new address found no place with an unverified one in the table")
	}
	if _, in := l.by[normalAddr(peer)]; !in {
		t.Fatal("the peer's verified address was evicted")
	}
	m.forget("ufrag")
	if !l.allow(netip.MustParseAddrPort("192.0.2.5:5000"), t0.Add(3*time.Second)) {
		t.Fatal("a new address found no place once the peer was forgotten")
	}
	if _, in := l.by[normalAddr(peer)]; in {
		t.Fatal("the forgotten peer's address kept its place")
	}
	if len(l.verified.take()) != 0 {
		t.Error("news left untaken")
	}
}
