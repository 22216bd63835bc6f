package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/switchboard/switchboard/wire"
)

// Dialer opens connections; *net.Dialer satisfies it, and tests pass
// dialers that inject faults.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Conn is one protocol connection to a node: it writes messages and reads
// them, one line each. Send may be called from any goroutine; Recv from one
// goroutine at a time.
type Conn struct {
	conn net.Conn
	lr   *wire.LineReader
	addr string
	// tcp is the TCP connection under conn (TLS or not), nil when the
	// Dialer made another kind (setUserTimeout).
	tcp *net.TCPConn

	wmu sync.Mutex
	buf []byte
	// cork, over TLS, holds the handshake's last flight until the first
	// Send (see corkConn); Send releases it and clears it, under wmu.
	cork *corkConn
	// overTLS says the connection speaks TLS; answered, that a line came
	// from the node (only its reader touches it): an error before the
	// first says what a node of another kind would have done.
	overTLS  bool
	answered bool
}

// DialConn connects to addr (HOST:PORT) with d (a *net.Dialer when nil).
func DialConn(ctx context.Context, d Dialer, addr string) (*Conn, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: connecting to %s: %w", addr, err)
	}
	tcp, _ := c.(*net.TCPConn)
	if tcp != nil {
		_ = tcp.SetNoDelay(true)
	}
	return &Conn{conn: c, lr: wire.NewLineReader(c, wire.MaxLine), addr: addr, tcp: tcp}, nil
}

// DialConnTLS connects to addr like DialConn, then completes a TLS
// handshake with cfg, whose ServerName is the name the node's certificate
// must prove (the service's common name, not addr). A node that cannot
// prove it fails with an error wrapping ErrUntrusted. A nil cfg dials
// plain TCP.
func DialConnTLS(ctx context.Context, d Dialer, addr string, cfg *tls.Config) (*Conn, error) {
	return dialConnTLS(ctx, d, addr, cfg, nil)
}

// dialConnTLS is DialConnTLS, calling connected (when not nil) once the
// TCP connection is made, before the TLS handshake.
func dialConnTLS(ctx context.Context, d Dialer, addr string, cfg *tls.Config, connected func()) (*Conn, error) {
	c, err := DialConn(ctx, d, addr)
	if err == nil && connected != nil {
		connected()
	}
	if err != nil || cfg == nil {
		return c, err
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		c.Close()
		return nil, fmt.Errorf("client: TLS to %s: no service name to verify (tls.Config.ServerName): %w", addr, ErrUntrusted)
	}
	if cfg.ClientSessionCache != nil {
		cfg = cfg.Clone()
		cfg.ClientSessionCache = keepTicketOnCancel{ClientSessionCache: cfg.ClientSessionCache, ctx: ctx}
	}
	cork := &corkConn{Conn: c.conn, corked: true}
	tc := tls.Client(cork, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("client: %s does not prove the service name %q: %w: %w", addr, cfg.ServerName, ErrUntrusted, err)
		}
		return nil, fmt.Errorf("client: TLS handshake with %s: %w", addr, err)
	}
	return &Conn{conn: tc, lr: wire.NewLineReader(tc, wire.MaxLine), addr: addr, tcp: c.tcp, cork: cork, overTLS: true}, nil
}

// keepTicketOnCancel is a TLS session cache that keeps its ticket when a
// handshake fails because its context ended. Go's TLS client forgets the
// ticket a handshake offered whenever that handshake fails (RFC 5077,
// section 3.2: a ticket the server cannot use must not be offered
// again), and a handshake cut short by its caller is such a failure: the
// hellos a bootstrap staggers lose the race to the first that answers and
// are cancelled, and each would otherwise take the client's ticket with
// it, so that the attach after the hello made a full handshake again.
// A handshake that fails while its context is live still forgets it.
type keepTicketOnCancel struct {
	tls.ClientSessionCache
	ctx context.Context
}

// Put stores cs under key, or forgets key's ticket when cs is nil, unless
// the handshake's context has ended.
func (k keepTicketOnCancel) Put(key string, cs *tls.ClientSessionState) {
	if cs == nil && k.ctx.Err() != nil {
		return
	}
	k.ClientSessionCache.Put(key, cs)
}

// corkConn holds the bytes a TLS client writes until it next reads from
// the node, and after the handshake until the Conn over it releases them
// with its first message and uncorks it. The handshake's last flight
// (the client's Finished, which TLS 1.3 sends without waiting for an
// answer) then leaves in one write with the first request (hello),
// instead of in a segment of its own that the node must wake up to read
// before it reads the request: the same bytes in the same order, one
// write and one wake-up fewer per connection. Every read writes what is
// held first, so nothing the node waits for is held while the client
// waits for the node.
type corkConn struct {
	net.Conn
	// mu guards held and corked. flush holds it across its one write so
	// that a Write that finds the cork gone cannot overtake the bytes
	// that were held.
	mu     sync.Mutex
	held   []byte
	corked bool
}

// Write holds p while the connection is corked, and writes it otherwise.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.corked {
		c.held = append(c.held, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// Read writes what is held (the connection stays corked), then reads.
func (c *corkConn) Read(p []byte) (int, error) {
	if err := c.flush(false); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Close sends what is held (a close_notify alert, or a Finished never
// followed by a request) unless a flush is under way, then closes.
func (c *corkConn) Close() error {
	if c.mu.TryLock() {
		// A flush blocked in its write holds mu: closing is what ends
		// that write, so Close never waits for it.
		held := c.held
		c.held, c.corked = nil, false
		if len(held) > 0 {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
			_, _ = c.Conn.Write(held)
		}
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

// closeFlushTimeout bounds the write of held bytes when a corked
// connection closes.
const closeFlushTimeout = time.Second

// release writes what is held, in one write, and uncorks the connection
// for good.
func (c *corkConn) release() error { return c.flush(true) }

// flush writes what is held, in one write; uncork ends the corking.
func (c *corkConn) flush(uncork bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return nil
	}
	held := c.held
	c.held = nil
	c.corked = !uncork
	if len(held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(held)
	return err
}

// ErrUntrusted wraps the error of a node whose TLS certificate does not
// prove the service name: a forged or stale directory entry, or a node
// with the wrong certificate. Sessions pick another node.
var ErrUntrusted = errors.New("client: node not verified as the service")

// ErrUnauthorized matches (errors.Is) a *ServerError with the code
// unauthorized: the service wants a valid token for this user, or the
// token does not allow a room.
var ErrUnauthorized = errors.New("client: unauthorized")

// Addr is the address the connection was dialed to.
func (c *Conn) Addr() string { return c.addr }

// Send writes one message.
func (c *Conn) Send(m wire.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	c.buf, err = wire.Append(c.buf[:0], m)
	if err != nil {
		return err
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.conn.Write(c.buf); err != nil {
		return fmt.Errorf("client: sending %s to %s: %w", m.Op, c.addr, err)
	}
	if c.cork != nil {
		// The first message: out with the handshake's last flight.
		cork := c.cork
		c.cork = nil
		if err := cork.release(); err != nil {
			return fmt.Errorf("client: sending %s to %s: %w", m.Op, c.addr, err)
		}
	}
	return nil
}

// Recv reads the next message. A deadline in ctx bounds the read. A
// message of an op this version does not know is returned, not an error.
func (c *Conn) Recv(ctx context.Context) (wire.Message, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetReadDeadline(dl)
	} else {
		_ = c.conn.SetReadDeadline(time.Time{})
	}
	cut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cut)
		_ = c.conn.SetReadDeadline(time.Unix(1, 0))
	})
	line, err := c.lr.Next()
	if !stop() {
		// ctx ended as the read did: the deadline set in the past must
		// not outlive a read that succeeded, or the connection's next
		// reader (the session's, once attached) would fail at once.
		<-cut
		if err == nil {
			_ = c.conn.SetReadDeadline(time.Time{})
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return wire.Message{}, fmt.Errorf("client: reading from %s: %w", c.addr, ctx.Err())
		}
		return wire.Message{}, c.readError(err)
	}
	return c.decode(line)
}

// readError is err, from reading the node's next line, said with what
// it likely means: a plain connection that a node serving TLS ends at
// the client's first bytes ends before any answer.
func (c *Conn) readError(err error) error {
	if !c.overTLS && !c.answered && errors.Is(err, io.EOF) {
		return fmt.Errorf("client: reading from %s: %w (closed before any answer: if the node serves TLS, give the client its CA and the service name)", c.addr, err)
	}
	return fmt.Errorf("client: reading from %s: %w", c.addr, err)
}

// writeTimeout bounds one write to a node.
const writeTimeout = 10 * time.Second

// recvBefore reads the next message, waiting until deadline at most.
func (c *Conn) recvBefore(deadline time.Time) (wire.Message, error) {
	_ = c.conn.SetReadDeadline(deadline)
	line, err := c.lr.Next()
	if err != nil {
		return wire.Message{}, c.readError(err)
	}
	return c.decode(line)
}

// decode decodes a line from the node. An op the client does not know
// (one a later version of the node sends) is no error: the message is
// returned for the caller to pass over, as it passes over fields it does
// not know, so that a node can add ops without ending older clients'
// sessions.
func (c *Conn) decode(line []byte) (wire.Message, error) {
	first := !c.answered
	c.answered = true
	m, err := wire.Decode(line)
	if we, ok := errors.AsType[*wire.Error](err); ok && we.Code == wire.CodeUnknownOp {
		return m, nil
	}
	if err != nil && first && bytes.HasPrefix(line, []byte("HTTP/")) {
		return wire.Message{}, fmt.Errorf("client: %s answered in HTTP: an HTTP port (serve --http), not a node's client port (serve --listen): %w", c.addr, err)
	}
	if err != nil {
		return wire.Message{}, fmt.Errorf("client: reading from %s: %w", c.addr, err)
	}
	return m, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

// setUserTimeout has the kernel end the connection once data the client
// sent on it has gone unacknowledged for d (TCP_USER_TIMEOUT): on Linux,
// over TCP; elsewhere, or over a connection of another kind a Dialer
// made, it does nothing.
func (c *Conn) setUserTimeout(d time.Duration) error {
	if c.tcp == nil {
		return nil
	}
	return setUserTimeout(c.tcp, d)
}

// ServerError is an error message a node sent.
type ServerError struct {
	Code    string
	Message string
	// Directory is the fresh directory sent with full and draining errors.
	Directory *wire.Directory
}

// Error gives the node's code and message.
func (e *ServerError) Error() string { return "client: server said " + e.Code + ": " + e.Message }

// Is reports whether target is the sentinel for e's code (ErrUnauthorized).
func (e *ServerError) Is(target error) bool {
	return target == ErrUnauthorized && e.Code == wire.CodeUnauthorized
}

// asError turns an error message into a *ServerError.
func asError(m wire.Message) error {
	return &ServerError{Code: m.Code, Message: m.Message, Directory: m.Dir}
}

// Hello says hello on c and returns the directory it answers with: all of
// it, or as much as the node can send in one line (see HelloView).
func (c *Conn) Hello(ctx context.Context, clientName, group string) (*wire.Directory, error) {
	return c.HelloView(ctx, clientName, group, 0)
}

// FetchDirectory connects to addr, says hello and returns the directory.
func FetchDirectory(ctx context.Context, d Dialer, addr string) (*wire.Directory, error) {
	return FetchDirectoryTLS(ctx, d, addr, nil)
}

// FetchDirectoryTLS is FetchDirectory over TLS with cfg (see DialConnTLS);
// a nil cfg dials plain TCP.
func FetchDirectoryTLS(ctx context.Context, d Dialer, addr string, cfg *tls.Config) (*wire.Directory, error) {
	c, err := DialConnTLS(ctx, d, addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	dir, err := c.Hello(ctx, UserAgent, "")
	if err != nil {
		return nil, err
	}
	return dir, nil
}

// UserAgent is the client name sent in hello.
const UserAgent = "switchboard-go/1"

// ErrClosed is returned by a Session's methods after Close, and matched
// (errors.Is) by the error of a session that gave up (see ErrGaveUp):
// either way the session is over.
var ErrClosed = errors.New("client: session closed")
