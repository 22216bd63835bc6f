package proxyproto

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// HeaderListener hands out a proxy's connection only once its header has
// been read, for servers that take a connection's addresses the moment
// they accept it (net/http, a per-address limit at accept). Each header
// is read on a goroutine of its own, within Timeout, so that a proxy slow
// to send one holds up no other connection. At most MaxPending are read
// at once: a proxy's connection past that closes the oldest of them (given
// to Failed with ErrTooManyPending) and takes its place. Refusing the new
// one instead let MaxPending silent connections shut out everyone behind
// the proxy: a balancer that sends the header only with the client's first
// bytes (an AWS NLB's default) holds a connection silent for as long as
// its client is, while an honest client's header comes in the first
// packet and is read at once. A connection whose header fails is closed
// and given to Failed; one that ends before its first byte (closed or
// reset: a proxy's connect-only health check, ErrNothingSent) is closed
// without a word, having
// sent no header, bad or good. Every other connection is handed out as
// it came.
//
// Set the fields, then call Accept (from one goroutine or several) and
// Close, like any net.Listener.
type HeaderListener struct {
	net.Listener
	// From reports whether a connection from a is a proxy's.
	From func(a netip.Addr) bool
	// Timeout bounds the wait for a header (default 5 s).
	Timeout time.Duration
	// MaxPending bounds the headers read at once (default 64).
	MaxPending int
	// Failed, if set, is told of each proxy connection closed for its
	// header: the proxy's address and why. It is not told of one that
	// ended before its first byte.
	Failed func(remote net.Addr, err error)

	start   sync.Once
	ready   chan accepted
	done    chan struct{} // closed by Close, or when the inner listener is
	closing sync.Once

	pending *pending // the connections whose headers are being read
}

// ErrTooManyPending is what a connection's header fails with when it was
// the oldest of MaxPending being awaited, and was closed to make room for
// a new connection (HeaderListener tells Failed so; a Listener's Conn's
// ReadHeader returns it).
var ErrTooManyPending = errors.New("proxyproto: too many headers being read at once; the oldest awaited was closed")

type accepted struct {
	conn net.Conn
	err  error
}

// Accept returns the next connection: a proxy's as a *Conn whose header
// is read, any other as it came; or the inner listener's error.
func (l *HeaderListener) Accept() (net.Conn, error) {
	l.start.Do(l.run)
	select {
	case a := <-l.ready:
		return a.conn, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the inner listener, and the connections whose headers are
// being read.
func (l *HeaderListener) Close() error {
	l.start.Do(l.run)
	var err error
	l.closing.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	for _, c := range l.pending.close() {
		_ = c.Conn.Close() // its goroutine returns at once
	}
	return err
}

// closed marks the listener closed once the inner one is.
func (l *HeaderListener) closed() {
	l.closing.Do(func() { close(l.done) })
}

// run starts the accepting goroutine.
func (l *HeaderListener) run() {
	l.ready = make(chan accepted)
	l.done = make(chan struct{})
	l.pending = newPending(l.MaxPending, 64)
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	go func() {
		for {
			c, err := l.Listener.Accept()
			if errors.Is(err, net.ErrClosed) {
				l.closed()
				return
			}
			if err != nil {
				// Out of descriptors, say: the server backs off.
				if !l.hand(accepted{err: err}) {
					return
				}
				continue
			}
			ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
			if perr != nil || !l.From(ap.Addr().Unmap()) {
				if !l.hand(accepted{conn: c}) {
					c.Close()
					return
				}
				continue
			}
			pc := NewConn(c)
			out, ok := l.pending.add(pc)
			if !ok { // closed by Close
				c.Close()
				return
			}
			if out != nil {
				if l.Failed != nil {
					l.Failed(out.Conn.RemoteAddr(), ErrTooManyPending) // before the close the peer may be waiting on
				}
				_ = out.Conn.Close() // its goroutine returns at once
			}
			go func() {
				_ = c.SetReadDeadline(time.Now().Add(timeout))
				// Out of the pending ones once it returns, before it is
				// handed out: Close must not close a connection the
				// server owns.
				err := pc.ReadHeader()
				_ = c.SetReadDeadline(time.Time{})
				if err != nil {
					select {
					case <-l.done: // closed by Close
					default:
						// Told of a connection pushed out when it was
						// closed; not told of one that sent nothing.
						if l.Failed != nil && !errors.Is(err, ErrTooManyPending) && !errors.Is(err, ErrNothingSent) {
							l.Failed(c.RemoteAddr(), err) // before the close the peer may be waiting on
						}
					}
					c.Close()
					return
				}
				if !l.hand(accepted{conn: pc}) {
					c.Close()
				}
			}()
		}
	}()
}

// hand gives a to Accept; false once the listener is closed.
func (l *HeaderListener) hand(a accepted) bool {
	select {
	case l.ready <- a:
		return true
	case <-l.done:
		return false
	}
}
