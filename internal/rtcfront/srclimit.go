package rtcfront

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/internal/forwarded"
)

// Each source address (IP and port) may send the front's socket at most
// sourceRate packets a second, in bursts of sourceBurst; more are dropped
// before pion's mux reads them. The mux queues a peer's packets for its
// ICE agent with no bound, 8 KiB a packet: a peer that sent its own
// valid checks as fast as it could grew the node's heap by tens of MB a
// second while the agent, which answers each, fell behind. A peer
// sends a few packets a second, and the front's text bounds (messages a
// second and their size, a 64 KiB SCTP window) keep even a fast typist
// and a busy room far below the rate.
const (
	sourceRate  = 1000
	sourceBurst = 1000
	// maxSources bounds the addresses remembered at once, and
	// maxSourcesPerIP those of one source IP (an IPv6 /64 counting as
	// one), so that one host rotating its own ports cannot fill the
	// table. An address is forgotten once it has sent nothing for
	// sourceIdle; the table is swept for such addresses, at most every
	// sourceSweep, when a new address finds either bound reached. A new
	// address that finds its IP's bound reached still, after a sweep,
	// has its packet dropped. One that finds the table full takes the
	// place of the address least recently heard from of those no peer
	// has verified (verifiedSources: a check from it proved it knows a
	// peer's ICE password), as of the last sweep; with none such left,
	// its packet is dropped. So addresses that send a packet now and
	// then, from any number of hosts, cannot keep a new peer's checks
	// out, and an address a peer's check verified is never given up
	// for a new one. A peer sends every few seconds at least (ICE
	// consent checks), so it is never forgotten while connected.
	maxSources      = 4096
	maxSourcesPerIP = 64
	sourceIdle      = 10 * time.Second
	sourceSweep     = 50 * time.Millisecond
)

// sourceLimits is a token bucket per source address in a bounded table.
// It knows no clock (now is an argument) and no lock: the mux's one
// reading goroutine uses it (sourceLimitedConn), and learns which
// addresses the peers' guards verified through verified, which has a
// lock of its own.
type sourceLimits struct {
	rate, burst float64
	max         int
	by          map[netip.AddrPort]sourceBucket
	perIP       map[netip.Addr]int // addresses in by per sourceHost
	nextSweep   time.Time
	// evictable are the addresses of by no guard had verified at the
	// last sweep that found the table full, least recently heard from
	// first, each with its last packet then; next is the first not
	// taken yet (evict).
	evictable []sourceSeen
	next      int
	verified  *verifiedSources
}

// sourceBucket is one address's tokens as of last, its last packet, and
// the number of peers' guards that verified it and hold it still.
type sourceBucket struct {
	tokens   float64
	last     time.Time
	verified int
}

// sourceSeen is an address and its last packet, as of a sweep.
type sourceSeen struct {
	src  netip.AddrPort
	last time.Time
}

func newSourceLimits(rate, burst float64, size int) *sourceLimits {
	return &sourceLimits{
		rate: rate, burst: burst, max: size,
		by: map[netip.AddrPort]sourceBucket{}, perIP: map[netip.Addr]int{},
		verified: &verifiedSources{},
	}
}

// sourceHost is the source src counts under for maxSourcesPerIP: its IPv4
// address, or its IPv6 /64 (forwarded.SourceHost).
func sourceHost(src netip.AddrPort) netip.Addr { return forwarded.SourceHost(src.Addr()) }

// allow reports whether a packet from src at now is within its rate, and
// takes a token for it if so. A new address finds a place as maxSources
// says.
func (l *sourceLimits) allow(src netip.AddrPort, now time.Time) bool {
	l.learn()
	b, ok := l.by[src]
	if ok {
		b.tokens = l.refill(b, now)
	} else {
		ip := sourceHost(src)
		if !l.admit(ip, now) {
			return false
		}
		l.perIP[ip]++
		b.tokens = l.burst
	}
	b.last = now
	if b.tokens < 1 {
		l.by[src] = b
		return false
	}
	b.tokens--
	l.by[src] = b
	return true
}

// admit reports whether a new address of ip may have a place, making it
// if need be: by a sweep (at most every sourceSweep), or by evicting an
// address no guard verified.
func (l *sourceLimits) admit(ip netip.Addr, now time.Time) bool {
	if !l.full(ip) {
		return true
	}
	if l.perIP[ip] < maxSourcesPerIP && l.evict() {
		return true
	}
	if now.Before(l.nextSweep) {
		return false
	}
	l.nextSweep = now.Add(sourceSweep)
	l.sweep(now)
	if l.perIP[ip] >= maxSourcesPerIP {
		return false
	}
	return len(l.by) < l.max || l.evict()
}

// evict forgets the first address of evictable that is still in the
// table, unverified and unheard from since the sweep that listed it,
// and reports whether there was one.
func (l *sourceLimits) evict() bool {
	for l.next < len(l.evictable) {
		e := l.evictable[l.next]
		l.next++
		if b, ok := l.by[e.src]; ok && b.verified == 0 && b.last.Equal(e.last) {
			l.forget(e.src)
			return true
		}
	}
	return false
}

// forget removes src from the table.
func (l *sourceLimits) forget(src netip.AddrPort) {
	delete(l.by, src)
	ip := sourceHost(src)
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// learn takes what the guards told verified since the last packet into
// the table.
func (l *sourceLimits) learn() {
	if !l.verified.waiting.Load() {
		return
	}
	for _, n := range l.verified.take() {
		b, ok := l.by[n.src]
		if !ok {
			continue // forgotten since: it comes back unverified
		}
		if n.verified {
			b.verified++
		} else if b.verified > 0 {
			b.verified--
		}
		l.by[n.src] = b
	}
}

// full reports whether a new address of ip would pass a bound.
func (l *sourceLimits) full(ip netip.Addr) bool {
	return len(l.by) >= l.max || l.perIP[ip] >= maxSourcesPerIP
}

// refill returns b's tokens as of now.
func (l *sourceLimits) refill(b sourceBucket, now time.Time) float64 {
	if d := now.Sub(b.last); d > 0 {
		return min(l.burst, b.tokens+d.Seconds()*l.rate)
	}
	return b.tokens
}

// sweep forgets the addresses that have sent nothing for sourceIdle,
// and, if the table is full still, lists those no guard has verified in
// evictable, least recently heard from first.
func (l *sourceLimits) sweep(now time.Time) {
	for src, b := range l.by {
		if now.Sub(b.last) >= sourceIdle {
			l.forget(src)
		}
	}
	l.evictable, l.next = l.evictable[:0], 0
	if len(l.by) < l.max {
		return
	}
	for src, b := range l.by {
		if b.verified == 0 {
			l.evictable = append(l.evictable, sourceSeen{src, b.last})
		}
	}
	slices.SortFunc(l.evictable, func(a, b sourceSeen) int { return a.last.Compare(b.last) })
}

// verifiedSources carries the word of the peers' guards (remoteGuard) to
// the front's sourceLimits: an address a peer's guard counted, a check
// from it having verified with the peer's ICE password, and each such
// address again once the peer's connection is closed (forgotten). The
// guards run on the agents' read loops, sourceLimits on the mux's
// reading goroutine: mu guards news, which sourceLimits takes into its
// own table at its next packet (learn).
type verifiedSources struct {
	waiting atomic.Bool // news holds some; set and cleared under mu

	mu   sync.Mutex
	news []sourceNews
}

// sourceNews is an address verified, or no longer by one peer.
type sourceNews struct {
	src      netip.AddrPort
	verified bool
}

// maxSourceNews bounds what verifiedSources holds for sourceLimits to
// take. It takes all of it at each packet, and a guard's word comes
// from packets: this is for safety. News past it is lost: an address
// not marked verified may be evicted, one not marked forgotten is
// protected until it falls idle.
const maxSourceNews = 4 * maxSources

// tell records that srcs were verified by a peer, or are forgotten by
// one (verified false).
func (v *verifiedSources) tell(verified bool, srcs ...netip.AddrPort) {
	if v == nil || len(srcs) == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, src := range srcs {
		if len(v.news) >= maxSourceNews {
			break
		}
		v.news = append(v.news, sourceNews{normalAddr(src), verified})
	}
	v.waiting.Store(len(v.news) > 0)
}

// take returns the news since the last take.
func (v *verifiedSources) take() []sourceNews {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := v.news
	v.news = nil
	v.waiting.Store(false)
	return n
}

// sourceLimitedConn is the front's UDP socket as pion's mux reads it:
// packets over their source's rate (sourceLimits) are dropped, and
// counted. It reads and writes netip.AddrPort, as the mux prefers; only
// the net.PacketConn's methods are exposed besides.
type sourceLimitedConn struct {
	net.PacketConn
	udp     *net.UDPConn
	limits  *sourceLimits // the reading goroutine's only
	dropped atomic.Int64
	// onDrop, if set, is called for each packet dropped, with its
	// source and the number dropped so far.
	onDrop func(from netip.AddrPort, n int64)
}

func newSourceLimitedConn(c *net.UDPConn, onDrop func(netip.AddrPort, int64)) *sourceLimitedConn {
	return &sourceLimitedConn{
		PacketConn: c,
		udp:        c,
		limits:     newSourceLimits(sourceRate, sourceBurst, maxSources),
		onDrop:     onDrop,
	}
}

// ReadFromAddrPort returns the next packet within its source's rate.
func (c *sourceLimitedConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := c.udp.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, from, err
		}
		// As the guards count addresses (normalAddr), so that
		// their word finds the address here.
		src := normalAddr(from)
		if c.limits.allow(src, time.Now()) {
			return n, from, nil
		}
		dropped := c.dropped.Add(1)
		if c.onDrop != nil {
			c.onDrop(src, dropped)
		}
	}
}

// ReadFrom is ReadFromAddrPort with a net.Addr.
func (c *sourceLimitedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToAddrPort writes b to addr.
func (c *sourceLimitedConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.udp.WriteToUDPAddrPort(b, addr)
}
