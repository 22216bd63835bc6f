package proxyproto

import (
	"bufio"
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
// what follows the header. The caller sets the read deadline the header
// must arrive by.
type Conn struct {
	net.Conn

	once   sync.Once
	err    error         // set once by readHeader
	hdr    Header        // set once by readHeader
	br     *bufio.Reader // the header and what came after it in the same reads; nil once drained
	remote atomic.Pointer[net.TCPAddr]
	local  atomic.Pointer[net.TCPAddr]
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
	if err != nil {
		c.err = err
		return
	}
	c.hdr = h
	if h.Source.IsValid() {
		c.remote.Store(tcpAddr(h.Source))
		c.local.Store(tcpAddr(h.Dest))
	}
}

func tcpAddr(ap netip.AddrPort) *net.TCPAddr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
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

// RemoteAddr is the client's address once the header has named it, the
// proxy's before that or when the proxy spoke for itself.
func (c *Conn) RemoteAddr() net.Addr {
	if a := c.remote.Load(); a != nil {
		return a
	}
	return c.Conn.RemoteAddr()
}

// LocalAddr is the address the client dialled once the header has named
// it, the connection's own before that.
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
type Listener struct {
	net.Listener
	// From reports whether a connection from a is a proxy's, which must
	// send a header.
	From func(a netip.Addr) bool
}

// Accept returns the next connection, as a *Conn when it comes from a
// proxy.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if ap, perr := netip.ParseAddrPort(c.RemoteAddr().String()); perr == nil && l.From(ap.Addr().Unmap()) {
		return NewConn(c), nil
	}
	return c, nil
}
