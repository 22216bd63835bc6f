package sipfront

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/internal/logsample"
)

// connLimiter is the SIP front's TCP listener as sipgo sees it: it holds
// at most max connections, at most perSource from one IP address, closes
// a connection that sends nothing for idle, and keeps accepting through
// errors other than its closing (a process out of descriptors).
//
// sipgo's own TCP transport accepts every connection, never closes one
// that stays silent, and stops serving TCP at the first error Accept
// returns: a stranger opening connections used up the node's
// descriptors, which its stored rooms and peers need too (the client
// listener's limits, docs/security.md, did not cover the SIP port), and
// one "too many open files" ended SIP over TCP until a restart.
type connLimiter struct {
	net.Listener
	max, perSource int
	idle           time.Duration
	log            *slog.Logger
	m              *metrics

	mu       sync.Mutex
	open     int
	bySource map[netip.Addr]int
	live     map[string]int // remote address ("IP:port") -> connections open from it
	// refusedLog samples the lines about refused connections.
	refusedLog logsample.Sampler

	failed atomic.Int64 // accepts that failed, not for closing
}

func newConnLimiter(l net.Listener, max, perSource int, idle time.Duration, log *slog.Logger, m *metrics) *connLimiter {
	return &connLimiter{Listener: l, max: max, perSource: perSource, idle: idle, log: log, m: m, bySource: map[netip.Addr]int{}, live: map[string]int{},
		refusedLog: logsample.Sampler{Period: 5 * time.Second}}
}

// Accept returns the next connection within the limits, closing those
// over them.
func (l *connLimiter) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			// Out of descriptors, say: wait for some to free, as
			// net/http does, rather than stop serving for good.
			l.failed.Add(1)
			l.m.acceptErrors.Inc()
			l.log.Warn("SIP over TCP: accepting a connection", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		src, from := remoteIP(c), c.RemoteAddr().String()
		if why := l.take(src, from); why != "" {
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, src: src, from: from}, nil
	}
}

// take counts a connection from src, or says why it is over the limits.
func (l *connLimiter) take(src netip.Addr, from string) string {
	why := l.admit(src, from)
	if why != "" {
		// Counted each; logged at most once every 5 s, with the count
		// held back since.
		l.m.connsRefused.WithLabelValues(why).Inc()
		l.refusedLog.Log(l.log, slog.LevelWarn, "SIP over TCP: connection refused, over the limit", "limit", why, "source", src.String())
	}
	return why
}

// admit counts a connection from src if it fits, else says which limit
// it is over.
func (l *connLimiter) admit(src netip.Addr, from string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.max:
		return refusedTotal
	case l.bySource[src] >= l.perSource:
		return refusedPerSource
	}
	l.open++
	l.bySource[src]++
	l.live[from]++
	return ""
}

func (l *connLimiter) release(src netip.Addr, from string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live[from]--; l.live[from] <= 0 {
		delete(l.live, from)
	}
	l.open--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
}

// Live reports whether a connection from the remote address addr
// ("IP:port", as sipgo names a request's source) is open.
func (l *connLimiter) Live(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live[addr] > 0
}

// Open counts the connections held.
func (l *connLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return sourceOf(a.AddrPort().Addr())
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return sourceOf(ap.Addr())
}

// limitedConn is a connection counted in its limiter until closed.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	src  netip.Addr
	from string // the remote address, as Live takes it
	once sync.Once
}

// Read ends the connection, as closed by the peer, when nothing came
// for the idle timeout.
func (c *limitedConn) Read(b []byte) (int, error) {
	if c.l.idle > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.l.idle)); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// sipgo logs EOF quietly and closes the connection.
		c.Close()
		return n, io.EOF
	}
	return n, err
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.src, c.from) })
	return c.Conn.Close()
}
