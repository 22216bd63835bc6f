package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/origin"
	"github.com/switchboard/switchboard/wire"
)

// Subprotocol is the WebSocket subprotocol of client protocol v1. A
// client names it in Sec-WebSocket-Protocol; a request that does not is
// refused with 400, so that no other protocol's client is ever served
// protocol v1 lines by mistake.
const Subprotocol = "switchboard.v1"

// WebSocketPath is where the WebSocket transport is served.
const WebSocketPath = "/v1/ws"

// ConnServer serves one client connection until it ends, blocking, as
// (*node.Node).ServeConn does. It is called once per WebSocket, on a
// goroutine of its own started once the handshake is done, and must
// close conn before it returns; whoever provides it waits for it when
// shutting down (the node counts its sessions).
type ConnServer func(conn net.Conn) error

// WithConnServer turns on the WebSocket transport at WebSocketPath: each
// accepted WebSocket is adapted to a net.Conn that carries protocol
// lines, one line per text frame, and handed to serve.
func WithConnServer(serve ConnServer) Option {
	return func(h *handler) { h.serveConn = serve }
}

// WithTrustedProxies names the reverse proxies in front of the listener
// whose X-Forwarded-For is believed: a WebSocket that comes through one
// reports the client it forwards as its RemoteAddr (forwarded.Proxies.
// Client), so that the limits per address count browsers, not the
// proxy. From anyone else the header is ignored.
func WithTrustedProxies(proxies forwarded.Proxies) Option {
	return func(h *handler) { h.proxies = proxies }
}

// WithOrigins allows WebSockets from pages of other origins than the
// service's own. Each pattern is matched (path.Match, case-insensitive)
// against the host, with its port if it has one, of the request's
// Origin header; "*" allows any page on the web. Without it only pages
// served by the service itself may open a WebSocket (see originAllowed).
// The patterns also add names the node's reads answer under, and pages
// that may read its stats and event stream across origins; a pattern
// that names no domain (origin.CatchAll: "*", "*:*") adds neither.
func WithOrigins(patterns []string) Option {
	return func(h *handler) { h.origins = append(h.origins, patterns...) }
}

// serveWebSocket accepts a WebSocket and serves protocol v1 over it.
func (h *handler) serveWebSocket(src Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !offersSubprotocol(r, Subprotocol) {
			http.Error(w, "web: a WebSocket here speaks the subprotocol "+Subprotocol+"; name it in Sec-WebSocket-Protocol", http.StatusBadRequest)
			return
		}
		if !h.originAllowed(r, src.Directory()) {
			http.Error(w, "web: this node accepts WebSockets only from pages of its own service (serve --ws-origins allows others)", http.StatusForbidden)
			return
		}
		rec := &hijackRecorder{ResponseWriter: w}
		var conn *WSConn // set before anything reads the WebSocket, so before any ping
		ws, err := websocket.Accept(rec, r, &websocket.AcceptOptions{
			Subprotocols: []string{Subprotocol},
			// The origin was checked above, by this package's own rule.
			InsecureSkipVerify: true,
			// Per-message deflate keeps compressor state per connection:
			// far more memory than an idle session may cost.
			CompressionMode: websocket.CompressionDisabled,
			// The library answers a ping with a pong of its own, written
			// under the connection's write deadline: give it one.
			OnPingReceived: func(context.Context, []byte) bool {
				conn.pinged()
				return true
			},
		})
		if err != nil {
			return // Accept has answered
		}
		if rec.conn == nil {
			_ = ws.CloseNow()
			return
		}
		// Serve on a goroutine of its own and let the handler return:
		// the HTTP server's request, response and connection state can
		// then go, and the session starts on a small stack rather than
		// at the bottom of the server's deep one. An idle session costs
		// half as much this way.
		conn = NewWSConn(ws, rec.conn)
		conn.br, conn.cork = rec.br, rec.cork
		conn.remote = h.clientAddr(r, rec.conn.RemoteAddr())
		go func() { _ = h.serveConn(conn) }()
	}
}

// offersSubprotocol reports whether the request's Sec-WebSocket-Protocol
// headers name proto.
func offersSubprotocol(r *http.Request, proto string) bool {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(p) == proto {
				return true
			}
		}
	}
	return false
}

// originAllowed says whether the page the request names in Origin may
// open a WebSocket here or read the directory across origins:
// origin.Allowed's rule, with the patterns of WithOrigins.
func (h *handler) originAllowed(r *http.Request, dir *wire.Directory) bool {
	return origin.Allowed(r, dir, h.origins)
}

// readAllowed says whether the page the request names in Origin may read
// the stats and the event stream across origins: origin.ReadAllowed's
// rule, with the patterns of WithOrigins that name a domain ("*" lets
// any page open a WebSocket, not read these).
func (h *handler) readAllowed(r *http.Request, dir *wire.Directory) bool {
	return origin.ReadAllowed(r, dir, h.origins)
}

// hijackRecorder keeps the connection the WebSocket library hijacks, so
// that deadlines can be set on it directly: the library's own deadlines
// close the connection when they pass, before a timeout error could be
// sent to the client.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
	br   *bufio.Reader // the read buffer the WebSocket got, if this package made it
	cork *corkWriter   // what the WebSocket's write buffer flushes to, if this package made it
}

// wsBuffer is the size of a WebSocket's read and write buffers. The HTTP
// server's are 4 KiB each, most of what an idle session would cost;
// protocol lines are mostly far shorter, and longer ones are read and
// written through the buffer in pieces.
const wsBuffer = 1024

// Hijack hands over the connection and remembers it, with buffers of
// wsBuffer bytes instead of the server's (keeping any bytes the server
// had read ahead).
func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("web: the response writer cannot hijack its connection")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("web: hijacking the connection: %w", err)
	}
	h.conn = c
	ahead := brw.Reader.Buffered()
	if ahead > wsBuffer || brw.Writer.Buffered() > 0 {
		return c, brw, nil
	}
	var src io.Reader = c // reading the connection directly keeps an idle reader's stack short
	if ahead > 0 {
		early, _ := brw.Reader.Peek(ahead)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), c)
	}
	r := bufio.NewReaderSize(src, wsBuffer)
	if _, err := r.Peek(ahead); ahead > 0 && err != nil {
		return c, brw, nil
	}
	h.br = r
	h.cork = &corkWriter{conn: c}
	return c, bufio.NewReadWriter(r, bufio.NewWriterSize(h.cork, wsBuffer)), nil
}

// corkWriter is what a WebSocket's write buffer flushes to: the
// connection, or, while corked, a buffer that uncork then writes in one
// go. The WebSocket library flushes every message on its own, so a batch
// of lines (a room's applied record to one member) would otherwise cost
// a write to the socket per line; WSConn.Write corks around the batch so
// that it costs one, as over TCP.
type corkWriter struct {
	conn net.Conn

	mu     sync.Mutex // guards corked and held
	corked bool
	held   []byte

	// wire serializes writes to conn, so that a frame the library
	// writes from another goroutine (a pong, a close) never lands in
	// the middle of a held batch, nor ahead of it.
	wire sync.Mutex
}

// Write writes p to the connection, or holds it while corked.
func (w *corkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.corked {
		w.held = append(w.held, p...)
		w.mu.Unlock()
		return len(p), nil
	}
	w.mu.Unlock()
	w.wire.Lock()
	defer w.wire.Unlock()
	return w.conn.Write(p)
}

// cork holds what is written until uncork.
func (w *corkWriter) cork() {
	w.mu.Lock()
	w.corked = true
	w.mu.Unlock()
}

// uncork writes what was held in one write and stops holding.
func (w *corkWriter) uncork() error {
	w.wire.Lock()
	defer w.wire.Unlock()
	w.mu.Lock()
	held := w.held
	w.held, w.corked = nil, false
	w.mu.Unlock()
	if len(held) == 0 {
		return nil
	}
	_, err := w.conn.Write(held)
	return err
}

// WSConn is a WebSocket seen as a stream of protocol lines, the net.Conn
// that the node serves: each text frame received reads as one line (its
// bytes, then LF; a CR or LF inside a frame reads as a space, which is
// what it is between JSON tokens), and each line written goes out as one
// text frame, without its LF. Deadlines are the underlying connection's:
// a read that passes its deadline fails with a timeout and leaves the
// WebSocket open, so that the error can still be written to the client,
// as over TCP.
//
// Read is for one goroutine at a time; Write, Close and the deadlines may
// be called from any.
type WSConn struct {
	ws     *websocket.Conn
	raw    net.Conn
	remote net.Addr // the client behind a trusted proxy; nil: raw's peer

	// The reader's.
	msg  io.Reader // the frame being read; nil between frames
	owed bool      // the LF that ends the last frame is still to be read

	// br is the WebSocket's read buffer when known: between frames the
	// reader waits on it (Peek) rather than deep in the library, so
	// that an idle session's goroutine parks on a small stack. peekMu
	// is held during that wait, and closing ends it, so that Close
	// never lets the library read the buffer at the same time.
	br      *bufio.Reader
	peekMu  sync.Mutex
	closing atomic.Bool

	wmu     sync.Mutex
	partial []byte      // a line written without its LF yet
	cork    *corkWriter // when known, batches Write's frames into one socket write

	// dmu guards writeDeadline, the write deadline the connection's
	// user last set, and the underlying connection's write deadline.
	dmu           sync.Mutex
	writeDeadline time.Time

	closeOnce sync.Once
	closeErr  error
}

// pongWait bounds the write of a pong the library sends by itself.
const pongWait = 5 * time.Second

// pinged runs when a ping frame has come, before the library writes its
// pong. The node bounds each of its writes with a deadline on the
// connection, which stays set after the write: on a session the node has
// not written to for longer than that, the pong would fail at once, and
// the session with it. The pong gets pongWait, or the deadline of a node
// write under way if that is later; the node's next write sets its own.
// A client that sends pings and reads nothing gets no further: the
// reader waits on the pong, and reads nothing more until it is written
// (or the library gives the pong up, after 5 s, and the session ends),
// so a ping can stretch a write under way by pongWait at most, once.
func (c *WSConn) pinged() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	d := time.Now().Add(pongWait)
	if c.writeDeadline.After(d) {
		d = c.writeDeadline
	}
	_ = c.raw.SetWriteDeadline(d)
}

// NewWSConn adapts ws, accepted over raw, to a net.Conn of protocol
// lines. It lifts the library's message size limit: the reader of the
// lines bounds them (wire.MaxLine), and answers with line_too_long.
func NewWSConn(ws *websocket.Conn, raw net.Conn) *WSConn {
	ws.SetReadLimit(-1)
	return &WSConn{ws: ws, raw: raw}
}

var errBinaryFrame = errors.New("web: a binary WebSocket frame; protocol lines travel in text frames")

// Read reads the next bytes of the line stream.
func (c *WSConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.owed {
			c.owed = false
			p[0] = '\n'
			return 1, nil
		}
		if c.msg == nil && c.br != nil {
			// Wait here, not in a function of its own: every frame on
			// an idle reader's stack counts (see awaitFrame).
			c.peekMu.Lock()
			err := c.awaitFrame()
			c.peekMu.Unlock()
			if err != nil {
				return 0, err
			}
		}
		if c.msg == nil {
			typ, r, err := c.ws.Reader(context.Background())
			if err != nil {
				return 0, readError(err)
			}
			if typ != websocket.MessageText {
				_ = c.ws.Close(websocket.StatusUnsupportedData, "protocol lines travel in text frames")
				return 0, errBinaryFrame
			}
			c.msg = r
		}
		n, err := c.msg.Read(p)
		for i, b := range p[:n] {
			if b == '\n' || b == '\r' {
				p[i] = ' '
			}
		}
		if errors.Is(err, io.EOF) {
			c.msg, c.owed, err = nil, true, nil
		}
		if err != nil {
			return n, readError(err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// awaitFrame waits until the next frame's first byte has arrived; the
// caller holds peekMu. An idle session's goroutine parks here, and the
// runtime halves a parked goroutine's stack only while it uses less than
// a quarter of it: the frames below must stay small.
func (c *WSConn) awaitFrame() error {
	if c.closing.Load() {
		return net.ErrClosed
	}
	if _, err := c.br.Peek(1); err != nil {
		if c.closing.Load() {
			return net.ErrClosed
		}
		return readError(err)
	}
	return nil
}

// readError turns the peer's normal close into io.EOF and keeps the
// rest (timeouts stay net.Error timeouts).
func readError(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
		return io.EOF
	}
	if errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	return fmt.Errorf("web: reading a WebSocket: %w", err)
}

// Write sends each whole line in p as one text frame, and keeps a last
// line without its LF until a later Write completes it. Several lines go
// to the socket in one write when the connection was accepted here.
func (c *WSConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.cork != nil && bytes.Count(p, []byte{'\n'}) > 1 {
		c.cork.cork()
		n, err := c.writeLines(p)
		if ferr := c.cork.uncork(); ferr != nil && err == nil {
			// The frames never left: none of p is known to be sent.
			return 0, fmt.Errorf("web: writing a WebSocket: %w", ferr)
		}
		return n, err
	}
	return c.writeLines(p)
}

// writeLines is Write's work; the caller holds wmu.
func (c *WSConn) writeLines(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = append(c.partial, p...)
			break
		}
		line := p[:i]
		if len(c.partial) > 0 {
			line = append(c.partial, line...)
			c.partial = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if err := c.ws.Write(context.Background(), websocket.MessageText, line); err != nil {
			return total - len(p), fmt.Errorf("web: writing a WebSocket: %w", err)
		}
		p = p[i+1:]
	}
	return total, nil
}

// Close closes the WebSocket with a close frame, waiting at most a
// second for the peer's.
func (c *WSConn) Close() error {
	c.closeOnce.Do(func() {
		// End a reader's wait between frames before the library reads
		// the close handshake from the same buffer.
		c.closing.Store(true)
		_ = c.raw.SetReadDeadline(time.Now())
		c.peekMu.Lock()
		c.peekMu.Unlock() //nolint:staticcheck // an empty section: waiting for the reader to leave its wait
		_ = c.raw.SetDeadline(time.Now().Add(time.Second))
		if err := c.ws.Close(websocket.StatusNormalClosure, ""); err != nil && !errors.Is(err, net.ErrClosed) {
			c.closeErr = fmt.Errorf("web: closing a WebSocket: %w", err)
		}
		_ = c.raw.Close()
	})
	return c.closeErr
}

// LocalAddr is the local address of the underlying connection: through a
// PROXY protocol balancer, the one its header named, which
// proxyproto.FromHeader tells from the connection's own (the node's limits
// then never take the WebSocket for one from the node's own host).
func (c *WSConn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr is the peer's address on the underlying connection, or,
// through a proxy of WithTrustedProxies, the client it forwarded (with
// port 0).
func (c *WSConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.raw.RemoteAddr()
}

// clientAddr is the address of the client behind peer, the peer of the
// request r, when peer is a trusted proxy that forwarded another; nil
// otherwise.
func (h *handler) clientAddr(r *http.Request, peer net.Addr) net.Addr {
	if len(h.proxies) == 0 {
		return nil
	}
	ap, err := netip.ParseAddrPort(peer.String())
	if err != nil {
		return nil
	}
	client := h.proxies.Client(ap.Addr(), r.Header.Values("X-Forwarded-For"))
	if client == ap.Addr().Unmap() {
		return nil
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(client, 0))
}

// SetDeadline sets both deadlines of the underlying connection.
func (c *WSConn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.writeDeadline = t
	return c.raw.SetDeadline(t)
}

// SetReadDeadline sets the read deadline of the underlying connection.
func (c *WSConn) SetReadDeadline(t time.Time) error { return c.raw.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the underlying connection.
func (c *WSConn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.writeDeadline = t
	return c.raw.SetWriteDeadline(t)
}
