package rtcfront

import (
	"net"
	"net/netip"
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
	// sourceSweep, when a new address finds either bound reached, and
	// if it still is, the new address's packet is dropped. A peer
	// sends every few seconds at least (ICE consent checks), so it is
	// never forgotten while connected.
	maxSources      = 4096
	maxSourcesPerIP = 64
	sourceIdle      = 10 * time.Second
	sourceSweep     = 50 * time.Millisecond
)

// sourceLimits is a token bucket per source address in a bounded table.
// It knows no clock (now is an argument) and no lock: the mux's one
// reading goroutine uses it (sourceLimitedConn).
type sourceLimits struct {
	rate, burst float64
	max         int
	by          map[netip.AddrPort]sourceBucket
	perIP       map[netip.Addr]int // addresses in by per sourceHost
	nextSweep   time.Time
}

// sourceBucket is one address's tokens as of last, its last packet.
type sourceBucket struct {
	tokens float64
	last   time.Time
}

func newSourceLimits(rate, burst float64, size int) *sourceLimits {
	return &sourceLimits{rate: rate, burst: burst, max: size, by: map[netip.AddrPort]sourceBucket{}, perIP: map[netip.Addr]int{}}
}

// sourceHost is the source src counts under for maxSourcesPerIP: its IPv4
// address, or its IPv6 /64 (forwarded.SourceHost).
func sourceHost(src netip.AddrPort) netip.Addr { return forwarded.SourceHost(src.Addr()) }

// allow reports whether a packet from src at now is within its rate, and
// takes a token for it if so.
func (l *sourceLimits) allow(src netip.AddrPort, now time.Time) bool {
	b, ok := l.by[src]
	if ok {
		b.tokens = l.refill(b, now)
	} else {
		ip := sourceHost(src)
		if l.full(ip) {
			if now.Before(l.nextSweep) {
				return false
			}
			l.nextSweep = now.Add(sourceSweep)
			l.sweep(now)
			if l.full(ip) {
				return false
			}
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

// sweep forgets the addresses that have sent nothing for sourceIdle.
func (l *sourceLimits) sweep(now time.Time) {
	for src, b := range l.by {
		if now.Sub(b.last) >= sourceIdle {
			delete(l.by, src)
			ip := sourceHost(src)
			if l.perIP[ip]--; l.perIP[ip] <= 0 {
				delete(l.perIP, ip)
			}
		}
	}
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
		src := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
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
