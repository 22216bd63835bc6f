package proxyproto

import (
	"bufio"
	"container/list"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Conn is a connection from a proxy whose first bytes are a PROXY
// protocol header. ReadHeader reads it (the first Read does, if nothing
// called it before); from then on RemoteAddr and LocalAddr are the client's
// address and the one it dialled, as the header says, and Read returns
// what follows the header. A header that relays a client it does not
// describe (Header.Source invalid, not Local) leaves the proxy's
// addresses, given as *Addr all the same: the connection is a client's,
// not the proxy's own. The caller sets the read deadline the header
// must arrive by. The addresses a header named are *Addr, not
// *net.TCPAddr: FromHeader tells them from the connection's own.
type Conn struct {
	net.Conn

	once   sync.Once
	err    error         // set once by readHeader
	hdr    Header        // set once by readHeader
	br     *bufio.Reader // the header and what came after it in the same reads; nil once drained
	remote atomic.Pointer[Addr]
	local  atomic.Pointer[Addr]

	// The pending connections of the listener that handed c out, c
	// among them until its header is read or fails, or c is closed; nil
	// for a Conn of NewConn's.
	pending *pending
	elem    *list.Element // c's place in pending; guarded by pending.mu
	pushed  bool          // closed to make room for a newer connection; guarded by pending.mu
}

// Addr is an address a PROXY protocol header stands for: a Conn's
// RemoteAddr and LocalAddr once its header has named the client, or
// relayed one it does not name (then the proxy's own addresses, in
// place of the unknown client's). It is the proxy's word for the client,
// not an address of the connection's own, so it says nothing of where the
// connection came from: a header may name a loopback address, or the
// same address as source and destination, and a client relayed by a
// proxy on loopback may be anywhere.
type Addr struct{ net.TCPAddr }

// FromHeader reports whether a is an address a PROXY protocol header
// stands for (an *Addr), looking through addresses that wrap another and give
// it with a method Unwrap() net.Addr. Rules that trust a connection's own
// addresses (a loopback peer, a peer on the node's own host) must not
// apply to these.
func FromHeader(a net.Addr) bool {
	for {
		switch v := a.(type) {
		case *Addr:
			return true
		case interface{ Unwrap() net.Addr }:
			a = v.Unwrap()
		default:
			return false
		}
	}
}

// NewConn returns c, from a proxy, as a Conn.
func NewConn(c net.Conn) *Conn { return &Conn{Conn: c} }

// ReadHeader reads the header once and returns what it said, or the error
// reading it gave (wrapping ErrBadHeader for bytes that are not a header),
// the same on every call. On an error the connection should be closed:
// what follows is not the client's.
func (c *Conn) ReadHeader() error {
	c.once.Do(c.readHeader)
	return c.err
}

// Header returns what the header said, once ReadHeader has returned nil.
func (c *Conn) Header() Header {
	c.once.Do(c.readHeader)
	return c.hdr
}

func (c *Conn) readHeader() {
	// A small buffer: the header is short (or skipped through), and the
	// buffer is dropped once what it holds has been read.
	c.br = bufio.NewReaderSize(c.Conn, 256)
	h, err := Read(c.br)
	if c.pending != nil && c.pending.remove(c) {
		err = ErrTooManyPending // closed for a newer connection, whatever was read
	}
	if err != nil {
		c.err = err
		return
	}
	c.hdr = h
	switch {
	case h.Source.IsValid():
		c.remote.Store(headerAddr(h.Source))
		c.local.Store(headerAddr(h.Dest))
	case !h.Local:
		// A client the header does not describe (version 1 UNKNOWN,
		// version 2 PROXY of family UNSPEC): not the proxy's own, so
		// not judged by the proxy's addresses (a loopback peer, the
		// node's own host), though counted under them.
		c.remote.Store(ownAddr(c.Conn.RemoteAddr()))
		c.local.Store(ownAddr(c.Conn.LocalAddr()))
	}
}

func headerAddr(ap netip.AddrPort) *Addr {
	return &Addr{*net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))}
}

// ownAddr is a, one of the connection's own addresses, as an *Addr; the
// zero Addr when a is not an IP address and port.
func ownAddr(a net.Addr) *Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return &Addr{}
	}
	return headerAddr(ap)
}

// Read reads what follows the header, reading the header first if
// ReadHeader was not called.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.ReadHeader(); err != nil {
		return 0, err
	}
	// Only the goroutine reading the connection gets here, after the
	// header: br needs no lock.
	if c.br != nil {
		if c.br.Buffered() == 0 {
			c.br = nil
		} else {
			return c.br.Read(p)
		}
	}
	return c.Conn.Read(p)
}

// CloseWrite shuts the writing side of the connection when the one below
// can (a TCP connection can; errors.ErrUnsupported otherwise): a server
// that answers with an error, then reads what the client had sent before
// it closes, needs it, or its close resets the connection before the
// client reads the answer.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Close closes the connection, and takes it out of its listener's
// pending connections.
func (c *Conn) Close() error {
	if c.pending != nil {
		c.pending.remove(c)
	}
	return c.Conn.Close()
}

// RemoteAddr is the client's address once the header has named it, the
// proxy's before that or when the proxy spoke for itself (an *Addr of
// the proxy's when it relayed a client it did not name).
func (c *Conn) RemoteAddr() net.Addr {
	if a := c.remote.Load(); a != nil {
		return a
	}
	return c.Conn.RemoteAddr()
}

// LocalAddr is the address the client dialled once the header has named
// it, the connection's own before that (an *Addr of it when the header
// relayed a client it did not name).
func (c *Conn) LocalAddr() net.Addr {
	if a := c.local.Load(); a != nil {
		return a
	}
	return c.Conn.LocalAddr()
}

// Listener hands out the connections from the addresses From reports true
// for as *Conn, and every other connection as it came. It reads nothing
// itself: Accept returns at once, and the caller reads each header on the
// connection's own goroutine, so that a proxy slow to send one holds up
// no other connection.
//
// At most MaxPending of the Conns it handed out are pending: their
// headers neither read nor failed, and they not closed. One more closes
// the oldest of them, whose ReadHeader then fails with
// ErrTooManyPending. A balancer that sends the header only with the
// client's first bytes (an AWS NLB's default) holds a connection pending
// for as long as its client stays silent; honest clients speak at once
// and are not pending for long, so it is the silent ones that go, and
// their number stays bounded by MaxPending, whatever the caller's own
// limits and deadlines.
type Listener struct {
	net.Listener
	// From reports whether a connection from a is a proxy's, which must
	// send a header.
	From func(a netip.Addr) bool
	// MaxPending bounds the pending connections (default 1,024).
	MaxPending int

	start   sync.Once
	pending *pending
}

// Accept returns the next connection, as a *Conn when it comes from a
// proxy.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if ap, perr := netip.ParseAddrPort(c.RemoteAddr().String()); perr == nil && l.From(ap.Addr().Unmap()) {
		l.start.Do(func() { l.pending = newPending(l.MaxPending, 1024) })
		pc := NewConn(c)
		if out, _ := l.pending.add(pc); out != nil {
			_ = out.Conn.Close() // its ReadHeader fails with ErrTooManyPending
		}
		return pc, nil
	}
	return c, nil
}

// pending holds a listener's connections whose headers are awaited,
// oldest first, at most max of them.
type pending struct {
	mu    sync.Mutex
	max   int
	conns list.List // of *Conn, oldest first
	shut  bool      // nothing is added any more
}

// newPending returns a pending bounded by max, or by def when max is not
// positive.
func newPending(max, def int) *pending {
	if max <= 0 {
		max = def
	}
	return &pending{max: max}
}

// add takes c in. When the pending connections are already max, it takes
// the oldest out and returns it, for the caller to report and close with
// its Conn.Close (its ReadHeader then fails with ErrTooManyPending). It
// returns false, having added nothing, once shut.
func (p *pending) add(c *Conn) (out *Conn, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return nil, false
	}
	if p.conns.Len() >= p.max {
		out = p.conns.Remove(p.conns.Front()).(*Conn)
		out.elem, out.pushed = nil, true
	}
	c.pending = p
	c.elem = p.conns.PushBack(c)
	return out, true
}

// remove takes c out, if it is in, and reports whether add pushed it out
// before.
func (p *pending) remove(c *Conn) (pushed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.elem != nil {
		p.conns.Remove(c.elem)
		c.elem = nil
	}
	return c.pushed
}

// close takes every connection out, returning them for the caller to
// close, and adds none from then on.
func (p *pending) close() []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shut = true
	var cs []*Conn
	for p.conns.Len() > 0 {
		c := p.conns.Remove(p.conns.Front()).(*Conn)
		c.elem = nil
		cs = append(cs, c)
	}
	return cs
}
