package node

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/wire"
)

// ErrTooManyConnections is returned by ServeConn for a connection it
// refused, having sent it the error too_many_connections and closed it:
// the node held MaxConns connections, or MaxConnsPerIP from the same
// address.
var ErrTooManyConnections = errors.New("node: too many connections")

// Reasons a connection is refused: the values of the reason label of
// switchboard_connections_refused_total.
const (
	refusedTotal = "total"  // MaxConns reached
	refusedPerIP = "per_ip" // MaxConnsPerIP reached for the source address
	refusedHTTP  = "http"   // maxHTTPConns reached on the HTTP listener
	// refusedHTTPPerIP: maxHTTPConnsPerIP reached on the HTTP listener
	// for the source address.
	refusedHTTPPerIP = "http_per_ip"
)

// refusedReasons are every reason, each counted from zero.
var refusedReasons = []string{refusedTotal, refusedPerIP, refusedHTTP, refusedHTTPPerIP}

// maxHTTPConns bounds the connections the HTTP listener (metrics, health,
// the directory, drain) holds at once: past it a new one is closed at
// accept. Its idle keep-alive connections close after httpIdleTimeout.
// Without a bound, a stranger holding HTTP connections open would spend
// the descriptors held back from MaxConns for storage and peers. One
// source address (counted as addrKey counts it) holds at most
// maxHTTPConnsPerIP of them, so that no one address can shut health
// checks, metrics and the drain out of the listener. A request's header
// is at most maxHTTPHeader bytes.
const (
	maxHTTPConns      = 256
	maxHTTPConnsPerIP = 64
	maxHTTPHeader     = 64 << 10
	httpIdleTimeout   = time.Minute
)

// httpLimitListener is a listener that holds at most cap(slots)
// connections open at once, at most perIP of them from one source
// address, and closes the ones past either as it accepts them.
type httpLimitListener struct {
	net.Listener
	slots   chan struct{}
	perIP   int
	refused func(remote, reason string)

	mu      sync.Mutex
	perAddr map[string]int // guarded by mu: open connections by addrKey
}

// Accept returns the next connection that fits.
func (l *httpLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr())
		if !l.takeAddr(key) {
			l.refused(c.RemoteAddr().String(), refusedHTTPPerIP)
			_ = c.Close()
			continue
		}
		select {
		case l.slots <- struct{}{}:
			return &httpLimitConn{Conn: c, l: l, key: key}, nil
		default:
			l.giveAddr(key)
			l.refused(c.RemoteAddr().String(), refusedHTTP)
			_ = c.Close()
		}
	}
}

// takeAddr counts one more connection from key, unless key holds perIP
// already; "" (an address not counted) always fits.
func (l *httpLimitListener) takeAddr(key string) bool {
	if key == "" {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perAddr[key] >= l.perIP {
		return false
	}
	if l.perAddr == nil {
		l.perAddr = make(map[string]int)
	}
	l.perAddr[key]++
	return true
}

// giveAddr counts one connection from key fewer.
func (l *httpLimitListener) giveAddr(key string) {
	if key == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perAddr[key]--; l.perAddr[key] <= 0 {
		delete(l.perAddr, key)
	}
}

// httpLimitConn frees its slot and its address's count when closed or
// taken over (release), once.
type httpLimitConn struct {
	net.Conn
	l    *httpLimitListener
	key  string
	once sync.Once
}

func (c *httpLimitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// release frees the connection's slot and its address's count, once.
func (c *httpLimitConn) release() {
	c.once.Do(func() {
		<-c.l.slots
		c.l.giveAddr(c.key)
	})
}

// maxRefusing bounds the refused connections still being answered. Each
// holds its descriptor for up to about a second and a half (the error
// line, then a short linger so the client reads it); past this many, a
// flood of connections is closed without the line, so refusing can never
// eat the descriptors held back for storage and peers.
const maxRefusing = 128

// DefaultMaxConns is the default of Config.MaxConns: the process's
// descriptor limit (RLIMIT_NOFILE) less max(1024, limit/4), held back for
// JetStream's stored rooms, the cluster's routes, the HTTP listener and
// connections being refused. With a limit of 20,000 it is 15,000; it is
// never below a quarter of the limit, and it is 15,000 where the limit
// cannot be read.
func DefaultMaxConns() int {
	limit := openFileLimit()
	if limit <= 0 {
		return 15000
	}
	return max(limit-max(1024, limit/4), limit/4, 1)
}

// addrKey is what MaxConnsPerIP counts a remote address under: an IPv4
// address, or an IPv6 address's /64 (what one subscriber usually holds);
// "" (not counted) for an address that is not TCP.
func addrKey(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP == nil {
		return ""
	}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return tcp.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// admitLocked checks s against the connection limits and, when it fits,
// counts it; it returns the reason it does not fit otherwise. The caller
// holds n.sessionsMu.
func (n *Node) admitLocked(s *session) string {
	switch {
	case len(n.sessions) >= n.cfg.MaxConns:
		return refusedTotal
	case s.addr != "" && n.perAddr[s.addr] >= n.cfg.MaxConnsPerIP:
		return refusedPerIP
	}
	n.sessions[s] = struct{}{}
	if s.addr != "" {
		n.perAddr[s.addr]++
	}
	return ""
}

// releaseLocked forgets s, admitted by admitLocked. The caller holds
// n.sessionsMu.
func (n *Node) releaseLocked(s *session) {
	if _, ok := n.sessions[s]; !ok {
		return
	}
	delete(n.sessions, s)
	if s.addr == "" {
		return
	}
	if c := n.perAddr[s.addr]; c > 1 {
		n.perAddr[s.addr] = c - 1
	} else {
		delete(n.perAddr, s.addr)
	}
}

// refusing counts the refusals being answered, across nodes: descriptors
// are the process's.
var refusing atomic.Int64

// refuseConn answers a connection over a limit with too_many_connections
// and closes it, counting and logging the refusal. It blocks for up to
// about a second and a half.
func (n *Node) refuseConn(conn net.Conn, addr, reason string) {
	n.metrics.connsRefused[reason].Inc()
	limit := n.cfg.MaxConns
	if reason == refusedPerIP {
		limit = n.cfg.MaxConnsPerIP
	}
	if refusing.Add(1) > maxRefusing {
		refusing.Add(-1)
		_ = conn.Close()
		n.limitLog.sample("refusing connections: too many open, closing without the error line (refusals pile up)", "reason", reason, "remote", addr, "limit", limit)
		return
	}
	defer refusing.Add(-1)
	n.limitLog.sample("refusing a connection: too many open", "reason", reason, "remote", addr, "limit", limit)
	n.metrics.errorSent(wire.CodeTooManyConns)
	text := "node " + n.cfg.ID + " holds " + strconv.Itoa(limit) + " connections"
	if reason == refusedPerIP {
		text += " from your address"
	}
	line, err := wire.Encode(wire.Message{Op: wire.OpError, Code: wire.CodeTooManyConns, Message: text + "; retry later or pick another"})
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		_, err = conn.Write(line)
	}
	// Read what the client already sent (its hello) so that closing does
	// not reset the connection before it reads the error.
	if hc, ok := conn.(interface{ CloseWrite() error }); ok && err == nil {
		_ = hc.CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.CopyN(io.Discard, conn, 64<<10)
	}
	_ = conn.Close()
}

// lineClock is the reader a session's LineReader reads through: once
// armed, the first bytes that arrive start the line's deadline
// (LineTimeout), replacing the idle one. Used by the reader goroutine
// only.
type lineClock struct {
	conn    net.Conn
	timeout time.Duration
	armed   bool // waiting for a line's first byte
}

func (c *lineClock) Read(p []byte) (int, error) {
	n, err := c.conn.Read(p)
	if n > 0 && c.armed {
		c.armed = false
		_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	return n, err
}

// setDeadline sets the read deadline for what comes after a line, when
// buffered bytes of the next line are already in: before hello the one
// set at accept stands; before attach, AttachTimeout after the first
// hello; once attached, LineTimeout for a line already begun, IdleTimeout
// for the first byte of the next.
func (s *session) setDeadline(buffered int) {
	cfg := &s.n.cfg
	now := time.Now()
	switch {
	case !s.helloDone:
	case !s.attached.Load():
		if s.attachBy.IsZero() {
			s.attachBy = now.Add(cfg.AttachTimeout)
			_ = s.conn.SetReadDeadline(s.attachBy)
		}
	case buffered > 0:
		s.clock.armed = false
		_ = s.conn.SetReadDeadline(now.Add(cfg.LineTimeout))
	default:
		s.clock.armed = true
		_ = s.conn.SetReadDeadline(now.Add(cfg.IdleTimeout))
	}
}

// timeoutError is the error a session is closed with when its read
// deadline passed, by the deadline that was set.
func (s *session) timeoutError() *wire.Error {
	cfg := &s.n.cfg
	var e *wire.Error
	switch {
	case !s.helloDone:
		e = &wire.Error{Code: wire.CodeHelloTimeout, Text: "no hello within " + cfg.HelloTimeout.String() + " of connecting"}
	case !s.attached.Load():
		e = &wire.Error{Code: wire.CodeAttachTimeout, Text: "no attach within " + cfg.AttachTimeout.String() + " of hello"}
	case !s.clock.armed:
		e = &wire.Error{Code: wire.CodeLineTimeout, Text: "a line took longer than " + cfg.LineTimeout.String()}
	default:
		return &wire.Error{Code: wire.CodeIdle, Text: "nothing received for " + cfg.IdleTimeout.String(), Fatal: true}
	}
	e.Fatal = true
	s.n.limitLog.sample("closing a session at a deadline: "+e.Code, "remote", s.conn.RemoteAddr().String(), "err", e.Text)
	return e
}
