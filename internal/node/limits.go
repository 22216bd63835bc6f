package node

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/proxyproto"
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
	// refusedPerSite: perSite times MaxConnsPerIP reached for the source
	// address's IPv6 /48.
	refusedPerSite = "per_site"
	refusedHTTP    = "http" // maxHTTPConns reached on the HTTP listener
	// refusedHTTPPerIP: maxHTTPConnsPerIP reached on the HTTP listener
	// for the source address.
	refusedHTTPPerIP = "http_per_ip"
	// refusedHTTPIdle: an idle HTTP connection closed to make room for a
	// new one, maxHTTPConns being reached.
	refusedHTTPIdle = "http_idle"
	// refusedProxyHeader: a connection from a ProxyProtocolFrom proxy
	// that did not begin with a valid PROXY protocol header in time.
	refusedProxyHeader = "proxy_header"
)

// refusedReasons are every reason, each counted from zero.
var refusedReasons = []string{refusedTotal, refusedPerIP, refusedPerSite, refusedHTTP, refusedHTTPPerIP, refusedHTTPIdle, refusedProxyHeader}

// maxHTTPConns bounds the connections the HTTP listener (metrics, health,
// the directory, drain) holds at once. When it is reached, a new
// connection takes the place of an idle one (see httpLimitListener), and
// is closed at accept only when every connection is serving a request.
// Idle keep-alive connections close after httpIdleTimeout anyway.
// Without a bound, a stranger holding HTTP connections open would spend
// the descriptors held back from MaxConns for storage and peers. One
// source address (counted as addrKey counts it) holds at most
// maxHTTPConnsPerIP of them. A request's header is at most maxHTTPHeader
// bytes, and must arrive within httpHeaderTimeout (a PROXY protocol
// header from a ProxyProtocolFrom balancer too, before it).
const (
	maxHTTPConns      = 256
	maxHTTPConnsPerIP = 64
	maxHTTPHeader     = 64 << 10
	httpIdleTimeout   = time.Minute
	httpHeaderTimeout = 5 * time.Second
)

// httpLimitListener is a listener that holds at most cap(slots)
// connections open at once, at most perIP of them from one source
// address. A connection past perIP is closed as it is accepted. A
// connection past cap(slots) closes an idle one to take its slot: idle is
// a connection that is serving no request (a keep-alive connection
// waiting for its next request, or one still to send its first request's
// header in full), and the one closed is the longest idle of the address
// holding the most connections. Only when every connection is serving a
// request is the new one closed instead.
//
// So a few addresses holding idle connections, however many, cannot shut
// a health check, a scrape of the metrics or an admin's drain out: each
// of those takes the place of one of theirs. What an HTTP client loses
// is a keep-alive connection it was not using, which it opens again. The
// requests the handler serves report in (httpGuard, through the
// connection's LocalAddr) so that the listener knows which connections
// are idle.
type httpLimitListener struct {
	net.Listener
	slots   chan struct{}
	perIP   int
	proxies forwarded.Proxies // not counted per address
	refused func(remote, reason string)

	mu      sync.Mutex
	perAddr addrCounts                  // guarded by mu: open connections by addrKey and /48
	open    map[*httpLimitConn]struct{} // guarded by mu: the connections holding a slot
}

// Accept returns the next connection that fits.
func (l *httpLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := l.sourceKey(c)
		if !l.takeAddr(key) {
			l.refused(c.RemoteAddr().String(), refusedHTTPPerIP)
			_ = c.Close()
			continue
		}
		if !l.takeSlot() {
			l.giveAddr(key)
			l.refused(c.RemoteAddr().String(), refusedHTTP)
			_ = c.Close()
			continue
		}
		lc := &httpLimitConn{Conn: c, l: l, key: key}
		lc.idleSince.Store(time.Now().UnixNano())
		lc.local = httpLocalAddr{Addr: c.LocalAddr(), conn: lc}
		l.mu.Lock()
		if l.open == nil {
			l.open = make(map[*httpLimitConn]struct{})
		}
		l.open[lc] = struct{}{}
		l.mu.Unlock()
		return lc, nil
	}
}

// sourceKey is what perIP counts c under: the node's sourceKey, or ""
// (not counted) for a trusted proxy, which carries many clients (their
// WebSockets are counted per client).
func (l *httpLimitListener) sourceKey(c net.Conn) string {
	if pc, ok := c.(*proxyproto.Conn); ok {
		// Through a ProxyProtocolFrom balancer, its header read: the
		// client it names, or nothing for the balancer's own (version 2
		// LOCAL) or for a trusted proxy behind it. The clients it relays
		// without naming them count together, under its address.
		h := pc.Header()
		if h.Local || h.Source.IsValid() && l.proxies.Contains(h.Source.Addr()) {
			return ""
		}
		return addrKey(pc.RemoteAddr())
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil && l.proxies.Contains(ap.Addr()) {
		return ""
	}
	return sourceKey(c)
}

// takeSlot takes a slot for a new connection, closing an idle connection
// to free one when there is none; false when every connection is busy.
// Only Accept takes slots, so a slot freed here stays free for it.
func (l *httpLimitListener) takeSlot() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	victim := l.idlest()
	if victim == nil {
		return false
	}
	l.refused(victim.RemoteAddr().String(), refusedHTTPIdle)
	_ = victim.Close() // frees its slot before it returns
	select {
	case l.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// idlest returns the connection to close for a new one: of the idle
// connections, the longest idle one of the address holding the most
// connections; nil when none is idle.
func (l *httpLimitListener) idlest() *httpLimitConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best *httpLimitConn
	bestCount := 0
	var bestSince int64
	for c := range l.open {
		if !c.idle() {
			continue
		}
		count, since := l.perAddr[c.key], c.idleSince.Load()
		if best == nil || count > bestCount || count == bestCount && since < bestSince {
			best, bestCount, bestSince = c, count, since
		}
	}
	return best
}

// takeAddr counts one more connection from key, unless key holds perIP
// already, or its IPv6 /48 perSite times that; "" (an address not
// counted) always fits.
func (l *httpLimitListener) takeAddr(key string) bool {
	if key == "" {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perAddr.full(key, int64(l.perIP)) != "" {
		return false
	}
	if l.perAddr == nil {
		l.perAddr = make(addrCounts)
	}
	l.perAddr.add(key, 1)
	return true
}

// giveAddr counts one connection from key fewer.
func (l *httpLimitListener) giveAddr(key string) {
	if key == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.giveAddrLocked(key)
}

// giveAddrLocked is giveAddr; the caller holds l.mu.
func (l *httpLimitListener) giveAddrLocked(key string) {
	if key != "" {
		l.perAddr.add(key, -1)
	}
}

// httpLimitConn frees its slot and its address's count when closed or
// taken over (release), once.
type httpLimitConn struct {
	net.Conn
	l     *httpLimitListener
	key   string
	local httpLocalAddr
	once  sync.Once

	// What the listener reads to find an idle connection. A request's
	// end leaves the connection busy until the server reads from it
	// again: it does so only once the response has gone out.
	busy      atomic.Int32 // requests being served on it
	ending    atomic.Bool  // a request ended; idle at the next Read
	idleSince atomic.Int64 // Unix nanoseconds when it last became idle
}

// Read reads from the connection, noting first that it became idle when
// a request just ended.
func (c *httpLimitConn) Read(p []byte) (int, error) {
	if c.ending.Load() && c.busy.Load() == 0 && c.ending.CompareAndSwap(true, false) {
		c.idleSince.Store(time.Now().UnixNano())
	}
	return c.Conn.Read(p)
}

// idle reports whether the connection serves no request and has sent
// its last response.
func (c *httpLimitConn) idle() bool {
	return c.busy.Load() == 0 && !c.ending.Load()
}

func (c *httpLimitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// LocalAddr is the connection's local address, carrying the connection
// itself so that the HTTP handler can find it (the server puts it in each
// request's context under http.LocalAddrContextKey): see servingConn.
func (c *httpLimitConn) LocalAddr() net.Addr { return c.local }

// release frees the connection's slot and its address's count, once.
func (c *httpLimitConn) release() {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c)
		c.l.giveAddrLocked(c.key)
		c.l.mu.Unlock()
		<-c.l.slots
	})
}

// serving marks a request as being served on the connection until the
// returned function is called: a connection serving a request, or
// sending its response, is never closed to make room.
func (c *httpLimitConn) serving() (done func()) {
	c.busy.Add(1)
	return func() {
		c.ending.Store(true)
		c.busy.Add(-1)
	}
}

// httpLocalAddr is the local address of an httpLimitConn, pointing back
// at the connection.
type httpLocalAddr struct {
	net.Addr
	conn *httpLimitConn
}

// Unwrap is the connection's own LocalAddr, for proxyproto.FromHeader.
func (a httpLocalAddr) Unwrap() net.Addr { return a.Addr }

// servingConn marks the request r as being served on its connection of
// the HTTP listener, until the returned function is called; a no-op for a
// request that came another way.
func servingConn(r *http.Request) (done func()) {
	if c := limitConnOf(r); c != nil {
		return c.serving()
	}
	return func() {}
}

// limitConnOf is the HTTP listener's connection r came on; nil for one
// the listener did not hand out.
func limitConnOf(r *http.Request) *httpLimitConn {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(httpLocalAddr); ok {
		return a.conn
	}
	return nil
}

// idleWhileReading is a request's body whose connection counts as idle
// while its handler waits in Read: the listener may then close it to
// make room (see httpLimitListener). Without it a few addresses holding
// requests whose bodies trickle in, a byte now and then until the body's
// deadline, each reconnecting when it ends, kept every connection busy
// with handlers that read bodies (a WebRTC offer), and health checks,
// metrics and the drain were closed at accept.
type idleWhileReading struct {
	io.ReadCloser
	c *httpLimitConn
}

func (b idleWhileReading) Read(p []byte) (int, error) {
	b.c.busy.Add(-1)
	defer b.c.busy.Add(1)
	return b.ReadCloser.Read(p)
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

// addrKey is what MaxConnsPerIP counts a remote address under:
// forwarded.SourceKey's key (an IPv4 address, or an IPv6 address's /64);
// "" (not counted) for an address that is not TCP.
func addrKey(a net.Addr) string {
	if pa, ok := a.(*proxyproto.Addr); ok { // a PROXY protocol header's
		a = &pa.TCPAddr
	}
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return ""
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return ""
	}
	return forwarded.SourceKey(ip)
}

// perSite is how many times MaxConnsPerIP an IPv6 /48 holds at most, its
// /64s together: a /48 is one site's (a tunnel broker hands them out
// for free), and its 65,536 /64s each held to MaxConnsPerIP bounded it
// only by MaxConns.
const perSite = 4

// siteKey is the /48 that holds key, an IPv6 /64 as addrKey gives it;
// "" for any other key.
func siteKey(key string) string {
	p, err := netip.ParsePrefix(key)
	if err != nil || !p.Addr().Is6() {
		return ""
	}
	site, err := p.Addr().Prefix(48)
	if err != nil {
		return ""
	}
	return site.String()
}

// addrCounts counts open connections by source (addrKey's keys), and
// the IPv6 ones by their /48 too (siteKey's), for the client listener
// and the HTTP listener alike. Its owner guards it.
type addrCounts map[string]int

// full returns why key (not "") may hold no more connections, "" when it
// may: limit reached for key (per_ip), or perSite times it for key's /48
// (per_site).
func (c addrCounts) full(key string, limit int64) string {
	if int64(c[key]) >= limit {
		return refusedPerIP
	}
	if site := siteKey(key); site != "" && int64(c[site]) >= perSite*limit {
		return refusedPerSite
	}
	return ""
}

// add adds delta to the connections counted under key and its /48.
func (c addrCounts) add(key string, delta int) {
	for _, k := range []string{key, siteKey(key)} {
		if k == "" {
			continue
		}
		if v := c[k] + delta; v > 0 {
			c[k] = v
		} else {
			delete(c, k)
		}
	}
}

// sourceKey is what MaxConnsPerIP counts conn under: addrKey of its
// remote address, or "" (not counted) for a connection from the node's
// own host to the address it came from: the node's own SIP and WebRTC
// fronts, and a reverse proxy beside the node, each carrying many users.
// Those count towards MaxConns only; without this, 256 of them filled the
// allowance of the one address they all come from. Only the connection's
// own addresses say so: a WebSocket through a ProxyProtocolFrom balancer
// has the addresses its header named (proxyproto.FromHeader), which may
// name any source and destination, the same one or 127.0.0.1 twice, and
// is always counted.
func sourceKey(conn net.Conn) string {
	key := addrKey(conn.RemoteAddr())
	if key == "" {
		return key
	}
	if remote, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil && forwarded.OwnHost(conn.LocalAddr(), remote.Addr()) {
		return ""
	}
	return key
}

// admitLocked checks s against the connection limits and, when it fits,
// counts it; it returns the reason it does not fit otherwise. The caller
// holds n.sessionsMu.
func (n *Node) admitLocked(s *session) string {
	switch {
	case int64(len(n.sessions)) >= n.maxConns.Load():
		return refusedTotal
	case s.addr != "":
		if why := n.perAddr.full(s.addr, n.maxConnsPerIP.Load()); why != "" {
			return why
		}
	}
	n.sessions[s] = struct{}{}
	if s.addr != "" {
		n.perAddr.add(s.addr, 1)
	}
	return ""
}

// proxied returns the connection from a ProxyProtocolFrom proxy under
// conn (itself, or below its TLS), nil for any other connection.
func proxied(conn net.Conn) *proxyproto.Conn {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	pc, _ := conn.(*proxyproto.Conn)
	return pc
}

// admitProxied reads the PROXY protocol header of s, a connection from a
// ProxyProtocolFrom proxy admitted so far against MaxConns only, and
// counts it against MaxConnsPerIP as the client the header names (the
// proxy's own connections, version 2 LOCAL health checks, are not
// counted per address; the clients it relays without naming them,
// version 1 UNKNOWN and version 2 PROXY of family UNSPEC, count
// together under the proxy's address). It reports whether the session
// may go on; when not, it has answered and closed the connection. A
// connection that ends before its first byte (a connect-only health
// check) is closed without being counted as a header that failed. Until
// their headers come, such connections
// are bounded only by the listener's (proxyproto.Listener's MaxPending,
// 1,024): one more closes the oldest, whose header then fails with
// proxyproto.ErrTooManyPending, counted here as any header that failed.
func (s *session) admitProxied(pc *proxyproto.Conn) bool {
	n := s.n
	if err := pc.ReadHeader(); err != nil {
		// Not the node's own close (shutdown, drain), nor a connection
		// that ended or was reset before its first byte, which had no
		// header to get wrong.
		if !errors.Is(err, net.ErrClosed) && !errors.Is(err, proxyproto.ErrNothingSent) {
			n.refusedProxyHeader(pc.Conn.RemoteAddr().String(), err) // counted before the peer can see the close
		}
		_ = s.conn.Close()
		return false
	}
	key := ""
	if !pc.Header().Local {
		key = addrKey(pc.RemoteAddr()) // the balancer's, as an *Addr, for a client it does not name
	}
	n.sessionsMu.Lock()
	refused := ""
	if _, ok := n.sessions[s]; ok && key != "" {
		if refused = n.perAddr.full(key, n.maxConnsPerIP.Load()); refused == "" {
			s.addr = key
			n.perAddr.add(key, 1)
		}
	}
	n.sessionsMu.Unlock()
	if refused != "" {
		n.refuseConn(s.conn, key, refused)
		return false
	}
	return true
}

// refusedProxyHeader counts and logs a connection from a ProxyProtocolFrom
// balancer, remote, closed before its header was read: it was not a
// header, it did not come in time, or too many were being read (err). A
// connection that ended before its first byte is not one of these.
func (n *Node) refusedProxyHeader(remote string, err error) {
	n.metrics.connsRefused[refusedProxyHeader].Inc()
	n.limitLog.sample("closing a connection from a PROXY protocol balancer: its header could not be read", "reason", refusedProxyHeader, "remote", remote, "err", err)
}

// releaseLocked forgets s, admitted by admitLocked. The caller holds
// n.sessionsMu.
func (n *Node) releaseLocked(s *session) {
	if _, ok := n.sessions[s]; !ok {
		return
	}
	delete(n.sessions, s)
	if s.addr != "" {
		n.perAddr.add(s.addr, -1)
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
	limit := n.maxConns.Load()
	switch reason {
	case refusedPerIP:
		limit = n.maxConnsPerIP.Load()
	case refusedPerSite:
		limit = perSite * n.maxConnsPerIP.Load()
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
	text := "node " + n.cfg.ID + " holds " + strconv.FormatInt(limit, 10) + " connections"
	switch reason {
	case refusedPerIP:
		text += " from your address"
	case refusedPerSite:
		text += " from your network (its IPv6 /48)"
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

// httpErrorLog takes net/http's own log lines about the HTTP listener's
// connections (a failed TLS handshake, a broken request) into the node's
// log, sampled as the refusals are: through the standard logger a stranger
// sending garbage to the port wrote one unstructured line to stderr per
// connection. A handler's panic is a bug of ours, logged every time.
type httpErrorLog struct{ n *Node }

func (w httpErrorLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if strings.Contains(line, "panic") {
		w.n.log.Error("HTTP handler panicked", "err", line)
		return len(p), nil
	}
	w.n.limitLog.sample("HTTP listener: a connection failed", "err", line)
	return len(p), nil
}
