package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// tcpWriteTimeout bounds the writing of one TCP reply. A client that does
// not read its replies within it loses the connection.
const tcpWriteTimeout = 2 * time.Second

// How long a TCP connection may stay idle between a reply and the next
// query: miekg/dns's default, and the shorter wait given to a connection
// accepted while more than half of the slots are taken (RFC 7766 section
// 6.2.3), so that under load idle connections give their slots back
// sooner.
const (
	tcpIdleTimeout     = 8 * time.Second
	tcpIdleTimeoutBusy = time.Second
)

// Backoff after an Accept error that passes (out of file descriptors, say):
// the first wait, and the longest.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Reasons a TCP connection is refused, as logged.
const (
	refusedTotal   = "total"    // max reached
	refusedPerHost = "per_host" // maxPerHost reached for the client host
	// refusedPerSite: perSite times maxPerHost reached for the client's
	// site, its IPv4 /24 or IPv6 /48.
	refusedPerSite = "per_site"
)

// perSite is how many times maxPerHost one site holds at most, its hosts
// together: an IPv4 /24 or an IPv6 /48, as the node's client listener
// counts a /48. A /48 is one site's (a tunnel broker hands them out for
// free) and a /24 is what one customer or one cloud subnet usually holds:
// with each of their hosts held to maxPerHost alone, 16 addresses of one
// /24, or 16 /64s of one /48, took every slot.
const perSite = 4

// Prefix lengths of a site (perSite).
const (
	siteBits4 = 24
	siteBits6 = 48
)

// tcpListener bounds the TCP side of the responder. At most max connections
// are open at once, at most max/16 (at least 1) from one client host (an
// IPv4 address, an IPv6 /64; loopback is exempt), and at most perSite times
// that from one site (an IPv4 /24, an IPv6 /48), its hosts together: one
// accepted beyond any of these is closed at once, so that a client that
// opens connections and keeps them cannot take the file descriptors the
// node's other listeners need, nor every slot. A connection accepted while
// more than half of max are open may stay idle for tcpIdleTimeoutBusy
// only (idleTimeout). Each reply must be written within tcpWriteTimeout, or the
// connection is closed: miekg/dns sets read deadlines only, so a client
// that sends queries and never reads would otherwise hold its connection
// and goroutine for ever. Closing the listener (which Shutdown does) ends
// every write in progress. An Accept error that passes (EMFILE, ENFILE,
// ENOBUFS, ENOMEM) is retried after a wait that doubles from 5 ms to 1 s
// instead of at once, which would spin a core until descriptors are free
// again.
type tcpListener struct {
	net.Listener
	max, maxPerHost int
	exempt          func(netip.Addr) bool                           // hosts without a limit of their own
	refused         func(remote net.Addr, reason string, limit int) // called for each connection over a limit, or nil
	writeFailed     func()                                          // called for each connection a write closed, or nil

	closeOnce sync.Once
	closed    chan struct{}

	mu      sync.Mutex // guards the fields below
	conns   map[*limitedConn]struct{}
	perHost map[netip.Prefix]int // by IPv4 address or IPv6 /64
	perSite map[netip.Prefix]int // by IPv4 /24 or IPv6 /48
}

func newTCPListener(ln net.Listener, maxConns int) *tcpListener {
	return &tcpListener{
		Listener:   ln,
		max:        maxConns,
		maxPerHost: max(1, maxConns/16),
		exempt:     netip.Addr.IsLoopback,
		closed:     make(chan struct{}),
		conns:      make(map[*limitedConn]struct{}),
		perHost:    make(map[netip.Prefix]int),
		perSite:    make(map[netip.Prefix]int),
	}
}

// hostOf is the client host a TCP connection counts against, its IPv4
// address or IPv6 /64, and its site, its IPv4 /24 or IPv6 /48; ok is false
// when the host is exempt or unknown.
func (l *tcpListener) hostOf(c net.Conn) (p, site netip.Prefix, ok bool) {
	ta, isTCP := c.RemoteAddr().(*net.TCPAddr)
	if !isTCP {
		return p, site, false
	}
	ip, valid := netip.AddrFromSlice(ta.IP)
	if !valid {
		return p, site, false
	}
	ip = ip.Unmap()
	if l.exempt != nil && l.exempt(ip) {
		return p, site, false
	}
	if !ip.Is6() {
		p, _ = ip.Prefix(32)
		site, _ = ip.Prefix(siteBits4)
		return p, site, true
	}
	p, _ = ip.Prefix(64)
	site, _ = ip.Prefix(siteBits6)
	return p, site, true
}

// idleTimeout is how long a connection accepted now may stay idle between
// queries: tcpIdleTimeoutBusy when more than half of the slots are taken,
// this connection's included, else tcpIdleTimeout. miekg/dns asks once per
// connection, before its first query (dns.Server.IdleTimeout).
func (l *tcpListener) idleTimeout() time.Duration {
	l.mu.Lock()
	open := len(l.conns)
	l.mu.Unlock()
	if 2*open > l.max {
		return tcpIdleTimeoutBusy
	}
	return tcpIdleTimeout
}

// admit counts c in if it is within the limits, and returns it wrapped;
// otherwise it returns nil, the limit reached and its reason (refused*).
func (l *tcpListener) admit(c net.Conn) (lc *limitedConn, reason string, limit int) {
	host, site, limited := l.hostOf(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case len(l.conns) >= l.max:
		return nil, refusedTotal, l.max
	case limited && l.perHost[host] >= l.maxPerHost:
		return nil, refusedPerHost, l.maxPerHost
	case limited && l.perSite[site] >= perSite*l.maxPerHost:
		return nil, refusedPerSite, perSite * l.maxPerHost
	}
	lc = &limitedConn{Conn: c, writeFailed: l.writeFailed}
	l.conns[lc] = struct{}{}
	if limited {
		l.perHost[host]++
		l.perSite[site]++
	}
	lc.release = func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.conns, lc)
		if limited {
			if l.perHost[host]--; l.perHost[host] == 0 {
				delete(l.perHost, host)
			}
			if l.perSite[site]--; l.perSite[site] == 0 {
				delete(l.perSite, site)
			}
		}
	}
	return lc, "", 0
}

// Accept returns the next connection within the limits.
func (l *tcpListener) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !acceptErrorPasses(err) {
				return nil, err
			}
			wait = min(max(2*wait, acceptBackoffMin), acceptBackoffMax)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-l.closed:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		wait = 0
		lc, reason, limit := l.admit(c)
		if lc == nil {
			if l.refused != nil {
				l.refused(c.RemoteAddr(), reason, limit)
			}
			c.Close() // over a limit: the client sees the connection closed
			continue
		}
		select {
		case <-l.closed:
			// Closed while accepting: Close may have missed lc.
			lc.stop()
		default:
		}
		return lc, nil
	}
}

// Close closes the listener, ends any backoff wait and any reply being
// written: the connections' reads are miekg/dns's to end.
func (l *tcpListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.closed) })
	l.mu.Lock()
	for c := range l.conns {
		c.stop()
	}
	l.mu.Unlock()
	return err
}

// acceptErrorPasses reports whether err from Accept is a shortage that goes
// away by itself, so that accepting should go on after a wait.
func acceptErrorPasses(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// limitedConn bounds each write by tcpWriteTimeout, closes itself when a
// write fails, and gives its slot back when closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
	stopped atomic.Bool // the listener closed: writes fail at once

	writeFailed func()      // called once when a write fails, or nil
	failed      atomic.Bool // writeFailed was called
}

// Write writes b within tcpWriteTimeout. A reply that cannot be written
// means a client that does not read or a dead peer: the connection is
// closed, which ends miekg/dns's read loop for it.
func (c *limitedConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
	if c.stopped.Load() {
		// stop ran, perhaps before the deadline above: keep its deadline.
		c.Conn.SetWriteDeadline(time.Unix(1, 0))
	}
	n, err := c.Conn.Write(b)
	if err != nil {
		c.Conn.Close()
		if c.writeFailed != nil && !c.stopped.Load() && !c.failed.Swap(true) {
			c.writeFailed()
		}
	}
	return n, err
}

// stop makes the write in progress, and every later one, fail at once.
func (c *limitedConn) stop() {
	c.stopped.Store(true)
	c.Conn.SetWriteDeadline(time.Unix(1, 0))
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
