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
// to send one holds up no other connection; at most MaxPending are read
// at once, and a proxy's connection past that is closed at once (with
// ErrTooManyPending) rather than wait: waiting, it would hold up the
// connections from everyone else behind it. A connection whose header
// fails is closed and given to Failed. Every other connection is handed
// out as it came.
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
	// header: the proxy's address and why.
	Failed func(remote net.Addr, err error)

	start   sync.Once
	ready   chan accepted
	done    chan struct{} // closed by Close, or when the inner listener is
	closing sync.Once

	mu      sync.Mutex            // guards reading
	reading map[net.Conn]struct{} // the connections whose headers are being read; nil once closed
}

// ErrTooManyPending is what Failed is told of a proxy's connection closed
// because MaxPending headers were being read.
var ErrTooManyPending = errors.New("proxyproto: too many headers being read at once")

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
	l.mu.Lock()
	for c := range l.reading {
		c.Close() // its goroutine returns at once
	}
	l.reading = nil
	l.mu.Unlock()
	return err
}

// track notes that c's header is being read; false (c closed) once the
// listener is closed.
func (l *HeaderListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reading == nil {
		c.Close()
		return false
	}
	l.reading[c] = struct{}{}
	return true
}

func (l *HeaderListener) untrack(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.reading, c)
}

// closed marks the listener closed once the inner one is.
func (l *HeaderListener) closed() {
	l.closing.Do(func() { close(l.done) })
}

// run starts the accepting goroutine.
func (l *HeaderListener) run() {
	l.ready = make(chan accepted)
	l.done = make(chan struct{})
	l.reading = make(map[net.Conn]struct{})
	timeout, pending := l.Timeout, l.MaxPending
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if pending <= 0 {
		pending = 64
	}
	slots := make(chan struct{}, pending)
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
			select {
			case slots <- struct{}{}:
			default:
				if l.Failed != nil {
					l.Failed(c.RemoteAddr(), ErrTooManyPending)
				}
				c.Close()
				continue
			}
			if !l.track(c) {
				return
			}
			go func() {
				pc := NewConn(c)
				_ = c.SetReadDeadline(time.Now().Add(timeout))
				err := pc.ReadHeader()
				_ = c.SetReadDeadline(time.Time{})
				<-slots
				// Untracked before it is handed out: Close must not
				// close a connection the server owns.
				l.untrack(c)
				if err != nil {
					select {
					case <-l.done: // closed by Close
					default:
						if l.Failed != nil {
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
