package sipfront

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/internal/logsample"
)

// connLimiter is the SIP front's TCP listener as sipgo sees it: it holds
// at most max connections, at most perSource from one IP address, closes
// a connection that sends nothing for idle, and keeps accepting through
// errors other than its closing (a process out of descriptors); it
// closes too a connection whose peer takes nothing for connWriteTimeout
// (limitedConn.Write). Holding max, it closes the oldest connection it
// accepted from the source that holds the most to make room for one from
// a source holding at least two fewer: a few sources filling the front
// (16 of 16 connections each, kept alive with a CRLF a minute) shut no
// other caller out. The connections the front opens itself (Dial) count
// in the same limits, their remote address as their source, and close
// idle alike.
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
	// writeTimeout bounds each write on a connection (limitedConn.Write):
	// connWriteTimeout, but for tests.
	writeTimeout time.Duration
	log          *slog.Logger
	m            *metrics

	mu       sync.Mutex
	open     int
	bySource map[netip.Addr]int
	// accepted holds each source's accepted connections, oldest first:
	// those victimFor may pick to close (not those the front opened
	// itself).
	accepted map[netip.Addr][]*limitedConn
	live     map[string]int // remote address ("IP:port") -> connections open from it
	// refusedLog samples the lines about refused connections, and
	// stuckLog those about connections closed for a write that timed out.
	refusedLog, stuckLog logsample.Sampler

	failed atomic.Int64 // accepts that failed, not for closing
	// stalls counts the times a connection's reading waited for its
	// answers to be written (limitedConn.Read).
	stalls atomic.Int64

	// out hands sipgo the connections Dial opens.
	out *outListener
}

func newConnLimiter(l net.Listener, max, perSource int, idle, writeTimeout time.Duration, log *slog.Logger, m *metrics) *connLimiter {
	if writeTimeout <= 0 {
		// Unbounded writes would leave a read waiting for them
		// (limitedConn.Read) for good.
		writeTimeout = connWriteTimeout
	}
	return &connLimiter{Listener: l, max: max, perSource: perSource, idle: idle, writeTimeout: writeTimeout, log: log, m: m,
		bySource: map[netip.Addr]int{}, accepted: map[netip.Addr][]*limitedConn{}, live: map[string]int{},
		refusedLog: logsample.Sampler{Period: 5 * time.Second}, stuckLog: logsample.Sampler{Period: 5 * time.Second}, out: newOutListener(l.Addr())}
}

// errOverLimit: the TCP connection limits let the front open no
// connection.
var errOverLimit = errors.New("sipfront: over the SIP TCP connection limits")

// Dial opens a TCP connection to addr for the front's requests in a
// call, counted in the limits (addr's IP as its source), and hands it to
// sipgo, which puts it in its pool of connections, where its requests
// to addr find it; Dial returns once it is there. It fails with
// errOverLimit, opening nothing, when the limits are reached.
//
// sipgo would otherwise open a connection of its own to send a request
// where none is open: one the limits did not count and nothing closed,
// so that callers whose own connections closed (a phone that
// reconnected, one closed idle), or Contacts naming anywhere, made the
// node hold connections past its limits.
func (l *connLimiter) Dial(ctx context.Context, addr netip.AddrPort) error {
	src, to := sourceOf(addr.Addr()), addr.String()
	if why := l.admit(src, ""); why != "" {
		l.m.connsRefused.WithLabelValues(why).Inc()
		l.refusedLog.Log(l.log, slog.LevelWarn, "SIP over TCP: no connection opened to a caller, over the limit", "limit", why, "to", to)
		return fmt.Errorf("%w (%s): no connection to %s", errOverLimit, why, to)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", to)
	if err != nil {
		l.release(&limitedConn{src: src})
		return fmt.Errorf("sipfront: connecting to the caller: %w", err)
	}
	lc := newLimitedConn(conn, l, src, "")
	if err := l.out.hand(ctx, lc); err != nil {
		return err
	}
	// Live once sipgo has it in its pool, not before: a request routed
	// meanwhile (call.route) opens a connection of its own, counted,
	// rather than trust sipgo to find this one.
	l.mu.Lock()
	defer l.mu.Unlock()
	if !lc.released {
		lc.from = to
		l.live[to]++
	}
	return nil
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
		lc := newLimitedConn(c, l, src, from)
		if why := l.take(lc); why != "" {
			c.Close()
			continue
		}
		return lc, nil
	}
}

// take counts c, accepted, or says why it is over the limits; at the
// total, it closes a connection of the source holding the most to make
// room first, when that source holds at least two more than c's.
func (l *connLimiter) take(c *limitedConn) string {
	src := c.src
	why := l.admit(src, c.from)
	if why == refusedTotal {
		if victim := l.victimFor(src); victim != nil {
			l.m.connsRefused.WithLabelValues(connEvicted).Inc()
			l.refusedLog.Log(l.log, slog.LevelWarn, "SIP over TCP: connections full; closed the oldest of the source holding the most for a source holding fewer", "closed_source", victim.src.String(), "source", src.String())
			victim.Close()
			why = l.admit(src, c.from)
		}
	}
	if why == "" {
		l.mu.Lock()
		if !c.released {
			l.accepted[src] = append(l.accepted[src], c)
		}
		l.mu.Unlock()
	}
	if why != "" {
		// Counted each; logged at most once every 5 s, with the count
		// held back since.
		l.m.connsRefused.WithLabelValues(why).Inc()
		l.refusedLog.Log(l.log, slog.LevelWarn, "SIP over TCP: connection refused, over the limit", "limit", why, "source", src.String())
	}
	return why
}

// admit counts a connection from src if it fits, else says which limit
// it is over; from, unless empty, is its remote address, live from now
// on.
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
	if from != "" {
		l.live[from]++
	}
	return ""
}

// victimFor is the connection to close for one from src when the front
// holds max: the oldest accepted from the source holding the most, if
// that source holds at least two more than src (after the swap it still
// holds at least as many); nil when none does.
func (l *connLimiter) victimFor(src netip.Addr) *limitedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var victim *limitedConn
	most := l.bySource[src] + 1
	for s, conns := range l.accepted {
		if n := l.bySource[s]; len(conns) > 0 && n > most {
			victim, most = conns[0], n
		}
	}
	return victim
}

// release gives back the place of c, once.
func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.released {
		return
	}
	c.released = true
	if conns := l.accepted[c.src]; len(conns) > 0 {
		if i := slices.Index(conns, c); i >= 0 {
			conns = slices.Delete(conns, i, i+1)
		}
		if len(conns) == 0 {
			delete(l.accepted, c.src)
		} else {
			l.accepted[c.src] = conns
		}
	}
	if c.from != "" {
		if l.live[c.from]--; l.live[c.from] <= 0 {
			delete(l.live, c.from)
		}
	}
	l.open--
	if l.bySource[c.src]--; l.bySource[c.src] <= 0 {
		delete(l.bySource, c.src)
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

// connWriteTimeout bounds one write on a SIP TCP connection: an answer,
// a request of the front's own (BYE, in-dialog OPTIONS), a keepalive's
// CRLF. 10 s is the node's WriteTimeout for its clients' sessions and
// the front's SetupTimeout: a peer that reads at all takes a SIP message
// (a few KB at most) in far less, and it is under KeepAliveTimeout (15
// s), so that a caller whose connection takes nothing is found out by
// its closing before the keepalive gives up on it.
const connWriteTimeout = 10 * time.Second

// maxPendingWrites is the most writes one SIP TCP connection has under
// way or waiting their turn before the front stops reading it
// (limitedConn.Read): a phone has a few transactions at once, and writes
// that only wait their turn behind writes that go out (a proxy's
// connection carrying many calls) delay its reading a moment, nothing
// more. maxRead is the most the front reads from one at once: a few
// dozen requests at most.
const (
	maxPendingWrites = 32
	maxRead          = 4 << 10
)

// limitedConn is a connection counted in its limiter until closed.
//
// Its writes are bounded in time, and the requests it brings in number
// while they are not: sipgo answers each request on a goroutine of its
// own, and sets no deadline on a TCP write (its WriteTimeout, 0 by
// default, would be extended by each write that starts while another
// waits: a peer sending a request every few seconds would keep it off).
// A peer that sent requests and read nothing filled its receive window,
// and from then on every answer's goroutine waited for good in the
// write, one more for each request; reading, which alone the idle
// timeout watches, went on: one connection sending 6,000 OPTIONS took
// a node from 80 goroutines to 4,840, 85 MB it never freed.
//
// Now the writes take turns, and each has connWriteTimeout from its
// turn (not from when it started waiting); the first that fails or
// times out closes the connection, which ends the writes waiting their
// turn (net.ErrClosed) and the reading. And while maxPendingWrites
// writes are under way or waiting, the connection is not read, so that
// a peer cannot start answers faster than they go out (sipgo has no
// bound of its own on the requests being answered, and no hook where
// one could count them). The bound counts an answer once it reaches its
// write, so answers to requests read just before join those: not an
// exact bound (50 to 200 answers waited on one such connection in our
// runs, against every request the peer cared to send before), but one
// the peer's requests no longer move; reads of maxRead at most start a
// few dozen answers each at most.
type limitedConn struct {
	net.Conn
	l        *connLimiter
	src      netip.Addr
	from     string // guarded by l.mu: the remote address, as Live takes it ("" while not live)
	released bool   // guarded by l.mu

	turn      chan struct{} // capacity 1: held by the write under way
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	wmu     sync.Mutex
	writing int        // guarded by wmu: writes under way or waiting their turn
	closed  bool       // guarded by wmu
	drained *sync.Cond // on wmu: writing fell under maxPendingWrites, or closed
}

func newLimitedConn(conn net.Conn, l *connLimiter, src netip.Addr, from string) *limitedConn {
	c := &limitedConn{Conn: conn, l: l, src: src, from: from, turn: make(chan struct{}, 1), done: make(chan struct{})}
	c.drained = sync.NewCond(&c.wmu)
	return c
}

// Read ends the connection, as closed by the peer, when nothing came
// for the idle timeout. It waits, first, while maxPendingWrites writes
// are under way or waiting, and reads at most maxRead.
func (c *limitedConn) Read(b []byte) (int, error) {
	c.wmu.Lock()
	if c.writing >= maxPendingWrites && !c.closed {
		c.l.stalls.Add(1)
	}
	for c.writing >= maxPendingWrites && !c.closed {
		c.drained.Wait()
	}
	closed := c.closed
	c.wmu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	if len(b) > maxRead {
		b = b[:maxRead]
	}
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

// Write writes b in its turn, within connWriteTimeout from then; when
// it fails, or times out, the connection is reset: the peer takes
// nothing, or a message went out cut.
func (c *limitedConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	c.writing++
	c.wmu.Unlock()
	defer func() {
		c.wmu.Lock()
		if c.writing--; c.writing < maxPendingWrites {
			c.drained.Broadcast()
		}
		c.wmu.Unlock()
	}()
	select {
	case c.turn <- struct{}{}:
	case <-c.done:
		return 0, net.ErrClosed
	}
	defer func() { <-c.turn }()
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	// The deadline counts from this write's turn: set by a write waiting
	// its turn, it would move that of the write under way.
	var err error
	if c.l.writeTimeout > 0 {
		err = c.Conn.SetWriteDeadline(time.Now().Add(c.l.writeTimeout))
	}
	n := 0
	if err == nil {
		n, err = c.Conn.Write(b)
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.l.stuckLog.Log(c.l.log, slog.LevelWarn, "SIP over TCP: closed a connection whose peer took nothing for the write timeout",
				"source", c.src.String(), "timeout", c.l.writeTimeout)
		}
		// Reset, not closed gracefully: what the kernel holds unsent
		// (megabytes, for a peer that takes nothing) would otherwise wait
		// for it there, past the close.
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	return n, err
}

// Close closes the connection and gives its place back; the writes
// waiting their turn, and a read waiting for writes, return
// net.ErrClosed.
func (c *limitedConn) Close() error {
	c.l.release(c)
	c.closeOnce.Do(func() {
		// closed first: a write that done ends gives its place up, and
		// a read waiting for that place must then see the connection
		// closed, not read a request from it.
		c.wmu.Lock()
		c.closed = true
		c.drained.Broadcast()
		c.wmu.Unlock()
		close(c.done)
	})
	return c.Conn.Close()
}

// errStackDial: the SIP stack tried to open a TCP connection of its own.
var errStackDial = errors.New("sipfront: the SIP stack opens no connection of its own")

// noDial is the SIP stack's dialer for TCP and TLS: it refuses every
// connection. The stack dials when the connection a request came on is
// gone by the time it answers (a peer that reset it with requests in
// flight): to the request's top Via, which the sender chose, so that a
// stranger could have the node open TCP connections to any host and
// port and write an answer echoing its own headers there, outside the
// front's limits and never closed idle. Answers go on the request's own
// connection or not at all; the front's own requests go on connections
// it opens itself (connLimiter.Dial), to the addresses it checked.
func noDial(net.Addr) net.Dialer {
	return net.Dialer{Control: func(string, string, syscall.RawConn) error { return errStackDial }}
}

// outListener is a listener that accepts the connections the front
// opened itself (connLimiter.Dial): sipgo serves it as it serves the
// front's TCP listener, and so takes them into its pool of connections
// and reads them, as it does the connections it accepts.
type outListener struct {
	addr  net.Addr
	conns chan handed
	done  chan struct{}
	once  sync.Once
	// taken is closed when sipgo has pooled the connection Accept
	// returned last: when it calls Accept again (its serving loop
	// pools each connection before it accepts the next). Only that
	// loop's goroutine uses it.
	taken chan struct{}
}

// handed is a connection handed to sipgo, and the channel closed once
// sipgo has pooled it.
type handed struct {
	conn  net.Conn
	taken chan struct{}
}

func newOutListener(addr net.Addr) *outListener {
	return &outListener{addr: addr, conns: make(chan handed), done: make(chan struct{})}
}

// hand gives conn to sipgo and waits until it is pooled; conn is closed
// when it cannot be handed (ctx ended, or the listener closed).
func (o *outListener) hand(ctx context.Context, conn net.Conn) error {
	h := handed{conn: conn, taken: make(chan struct{})}
	select {
	case o.conns <- h:
	case <-ctx.Done():
		conn.Close()
		return fmt.Errorf("sipfront: handing a connection to the SIP stack: %w", ctx.Err())
	case <-o.done:
		conn.Close()
		return fmt.Errorf("sipfront: handing a connection to the SIP stack: %w", net.ErrClosed)
	}
	select {
	case <-h.taken:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sipfront: handing a connection to the SIP stack: %w", ctx.Err())
	case <-o.done:
		return fmt.Errorf("sipfront: handing a connection to the SIP stack: %w", net.ErrClosed)
	}
}

// Accept returns the next connection handed, once the one before is
// pooled.
func (o *outListener) Accept() (net.Conn, error) {
	if o.taken != nil {
		close(o.taken)
		o.taken = nil
	}
	select {
	case h := <-o.conns:
		o.taken = h.taken
		return h.conn, nil
	case <-o.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; the connections handed are sipgo's to close.
func (o *outListener) Close() error {
	o.once.Do(func() { close(o.done) })
	return nil
}

// Addr is the front's TCP address (the connections' local port differs).
func (o *outListener) Addr() net.Addr { return o.addr }
