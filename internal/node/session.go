package node

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/switchboard/switchboard/wire"
)

// MaxUserName is the longest user name accepted, in bytes.
const MaxUserName = 64

// MaxDevice is the longest device name an attach may carry, in bytes.
const MaxDevice = 64

// Serve accepts client connections on ln and serves each in a goroutine
// of its own until the node shuts down or halts, or ln fails for good. It
// blocks, closes ln when the node stops, and returns ErrClosed then; any
// other error is ln's. A temporary accept failure (out of descriptors)
// is logged and retried with a growing pause. Serve may be called for
// several listeners at once, before or after Start, but not before it
// returns.
func (n *Node) Serve(ln net.Listener) error {
	n.sessionsMu.Lock()
	if n.ctx == nil || n.ctx.Err() != nil {
		n.sessionsMu.Unlock()
		_ = ln.Close()
		return ErrClosed
	}
	n.listeners[ln] = struct{}{}
	n.sessionsMu.Unlock()
	defer func() {
		n.sessionsMu.Lock()
		delete(n.listeners, ln)
		n.sessionsMu.Unlock()
	}()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("node: accepting clients: %w", err)
			}
			// Out of descriptors or similar: wait a little, then go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			n.limitLog.sample("accepting a client failed (out of descriptors?): retrying", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-n.ctx.Done():
				return ErrClosed
			}
			continue
		}
		backoff = 0
		s, refused := n.newSession(conn)
		if s == nil {
			continue
		}
		go func() {
			defer n.wg.Done()
			if refused != "" {
				n.refuseConn(conn, cmp.Or(s.addr, conn.RemoteAddr().String()), refused)
				return
			}
			s.serve()
		}()
	}
}

// session is one client connection.
type session struct {
	n    *Node
	conn net.Conn

	// Owned by the reader goroutine (serve).
	helloDone bool
	refused   int    // attaches refused as unauthorized (maxRefusedAttaches)
	views     bucket // directories drawn for hellos and refusals (ViewRate)
	user      string
	device    string   // the client's device (attach), "" if it named none
	allowed   []string // the rooms the token allows; empty: any
	id        string
	rooms     map[string]*feed // the rooms joined, by name
	limiter   textLimiter      // the session's text rate
	helloAt   time.Time        // when the last hello came (the attach histogram)
	attachBy  time.Time        // the attach deadline, from the first hello
	clock     lineClock        // starts a line's deadline at its first byte

	accepted time.Time // when the connection was accepted: the hello deadline counts from it
	addr     string    // the source address as MaxConnsPerIP counts it (addrKey)

	attached atomic.Bool
	// answered: the attached answer is queued, so a move pushed now comes
	// after it (attached is set a moment before, for the directory's
	// pushes; a client reading a move before attached may drop it).
	answered atomic.Bool
	attachAt time.Time // when it attached; set by the reader before attached, read by rebalance.go after

	want atomic.Pointer[viewWant] // what the last hello asked of the directory (dirline.go)
	// deltas: the hello asked for pushes of changes; dirGen: the node's
	// push generation of the last directory the session was sent
	// (pushDirectory sends changes only to a session that has the one
	// before).
	deltas atomic.Bool
	dirGen atomic.Uint64

	// Text on its way to storage (rooms_session.go): the reader hands
	// chunks to the rooms' writers and reads on; the writers answer.
	textMu sync.Mutex          // guards seqs, held, failed, lost and seqAsked, which the reader and others change
	seqs   map[string]uint64   // per room joined: the last seq of the user's text known stored
	held   map[string]textHold // per room: the chunks refused (rate, unavailable) and not sent again since
	// failed, per room: the latest store that failed, and the chunks
	// admitted before it, which the writer refuses; admitted counts the
	// chunks admitted (checkText).
	failed map[string]textFailures
	// lost: the rooms whose feed took the session out (its join again
	// refused, room.Result.Lost), which the reader has not yet taken off
	// s.rooms (dropLostRooms).
	lost     map[string]bool
	admitted uint64
	// seqAsked, per room: when checkText last asked it for the user's
	// last stored seq.
	seqAsked map[string]time.Time
	stores   sync.WaitGroup // text requests handed to writers and not answered yet; the reader adds

	mu      sync.Mutex // guards the fields below
	queue   []byte     // encoded lines waiting to be written
	writing bool       // a goroutine is writing; others append to queue
	// writeAt is when the write under way took its bytes: a client whose
	// connection has taken nothing for stalledAfter since is slow.
	writeAt time.Time
	closed  bool
	slow    bool // closeSlowLocked has begun closing the session
}

// newSession registers a session for conn and counts it in the node's
// wait group, which the caller releases with n.wg.Done once s.serve has
// returned. It returns nil, having closed conn, when the node is
// stopping. When conn is over a connection limit it registers nothing
// and returns the reason as well: the caller then answers with
// n.refuseConn instead of s.serve, and still calls n.wg.Done. Adding to
// the wait group under sessionsMu, where Shutdown looks for sessions only
// after cancelling, keeps every Add before Shutdown's Wait.
func (n *Node) newSession(conn net.Conn) (s *session, refused string) {
	s = &session{n: n, conn: conn, accepted: time.Now(), views: newBucket(ViewRate, ViewBurst)}
	if proxied(conn) == nil {
		s.addr = sourceKey(conn) // a proxied one's, once its header names the client
	}
	s.clock = lineClock{conn: conn, timeout: n.cfg.LineTimeout}
	n.sessionsMu.Lock()
	defer n.sessionsMu.Unlock()
	if n.ctx == nil || n.ctx.Err() != nil {
		_ = conn.Close()
		return nil, ""
	}
	n.wg.Add(1)
	if refused = n.admitLocked(s); refused != "" {
		return s, refused
	}
	n.metrics.connections.Inc()
	return s, ""
}

// ServeConn serves one client connection (a TCP connection, or a
// WebSocket adapted to net.Conn) until it closes, on the caller's
// goroutine: it blocks. Shutdown closes the connection and waits for
// ServeConn to return. It returns ErrClosed at once, having closed conn,
// when the node is not running, and ErrTooManyConnections, having sent
// the error too_many_connections and closed conn, when the node holds as
// many connections as it admits (MaxConns, or MaxConnsPerIP from conn's
// address).
func (n *Node) ServeConn(conn net.Conn) error {
	s, refused := n.newSession(conn)
	if s == nil {
		return ErrClosed
	}
	defer n.wg.Done()
	if refused != "" {
		n.refuseConn(conn, cmp.Or(s.addr, conn.RemoteAddr().String()), refused)
		return fmt.Errorf("%w (%s)", ErrTooManyConnections, refused)
	}
	s.serve()
	return nil
}

// serve reads and answers the client's lines until the connection ends.
func (s *session) serve() {
	defer s.finish()
	cfg := &s.n.cfg
	lr := wire.NewLineReader(&s.clock, cfg.MaxLine)
	_ = s.conn.SetReadDeadline(s.accepted.Add(cfg.HelloTimeout))
	if pc := proxied(s.conn); pc != nil && !s.admitProxied(pc) {
		return
	}
	for {
		line, err := lr.Next()
		if err != nil {
			s.closeAndLinger(s.readError(err))
			return
		}
		if fatal := s.line(line, lr); fatal != nil {
			s.closeAndLinger(fatal)
			return
		}
		s.setDeadline(lr.Buffered())
		lr.Shrink()
	}
}

// line decodes and answers one line. It is kept out of serve so that the
// frame an idle session parks in stays small: the runtime then shrinks an
// idle goroutine's stack to its minimum, which is most of what an idle
// session costs.
//
// Text that the client sent while the chunk before it was being stored
// is already buffered in lr: line reads it too and stores it with this
// one (textRun).
//
//go:noinline
func (s *session) line(line []byte, lr *wire.LineReader) *wire.Error {
	msg, err := wire.DecodeFromClient(line)
	if err != nil {
		s.reply(wire.ErrorMessage(err))
		return nil
	}
	if msg.Op == wire.OpText && s.attached.Load() && lr != nil && lr.HasLine() {
		return s.textRun(msg, lr)
	}
	return s.handle(msg)
}

// readError turns a read failure into the error sent before closing, or
// nil when the peer simply went away.
func (s *session) readError(err error) *wire.Error {
	var we *wire.Error
	var ne net.Error
	switch {
	case errors.As(err, &we):
		return we
	case errors.As(err, &ne) && ne.Timeout():
		return s.timeoutError()
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return nil
	}
	return nil
}

// handle answers one message. It returns an error when the session must
// close.
func (s *session) handle(m wire.Message) *wire.Error {
	switch m.Op {
	case wire.OpPing:
		s.reply(wire.Message{Op: wire.OpPong})
		return nil
	case wire.OpHello:
		if m.V > wire.Version {
			s.reply(wire.ErrorMessage(wire.Errorf(wire.CodeVersion, "server speaks protocol v%d, not v%d", wire.Version, m.V)))
			return nil
		}
		if !s.allowView() {
			s.reply(wire.ErrorMessage(wire.Errorf(wire.CodeRate, "hello faster than %v a second; slow down", ViewRate)))
			return nil
		}
		s.helloDone = true
		s.helloAt = time.Now()
		s.sayDirectory(m) // dirline.go
		return nil
	}
	if !s.helloDone {
		s.reply(wire.ErrorMessage(wire.Errorf(wire.CodeNoHello, "send hello before %s", m.Op)))
		return nil
	}
	switch m.Op {
	case wire.OpAttach:
		return s.attach(m)
	case wire.OpJoin, wire.OpLeave, wire.OpText:
		if why := wire.RoomNameProblem(m.Room); why != "" {
			// Checked before anything echoes the name: a 64 KiB name,
			// quoted and escaped, would make a reply too long to read.
			s.reply(roomError(wire.CodeBadRequest, wire.Clip(m.Room, MaxRoomName), m.Seq, "%s", why))
			return nil
		}
		if m.Op == wire.OpJoin && !s.mayJoin(m.Room) {
			s.reply(wire.Message{Op: wire.OpError, Code: wire.CodeUnauthorized, Room: m.Room, Message: "the token does not allow room " + strconv.Quote(m.Room)})
			return nil
		}
		s.handleRoom(m)
	default:
		s.reply(wire.ErrorMessage(wire.Errorf(wire.CodeBadRequest, "op %q is not sent by clients", m.Op)))
	}
	return nil
}

// ViewRate and ViewBurst bound the directories a connection is drawn for
// its hellos and for refusals of its attach (full, draining), each a
// bucket of ViewBurst refilled at ViewRate a second. Drawing a view
// costs a random number per node and a sort (about half a millisecond at
// 2,000 nodes), and a hello is a few bytes: one connection looping
// hellos, before any credential, kept a core busy. A client says hello
// once a connection, or a few times to get a fresh directory.
const (
	ViewRate  = 2
	ViewBurst = 10
)

// allowView takes one directory from the session's views bucket and its
// source address's (sourceviews.go) if both hold one, and counts and
// logs (sampled) a refusal. Only the reader goroutine calls it.
func (s *session) allowView() bool {
	now := time.Now()
	s.views.refill(now)
	if s.views.tokens < 1 {
		s.n.metrics.viewsRefused[viewBucketConnection].Inc()
		return false
	}
	if s.addr != "" {
		perIP := s.n.maxConnsPerIP.Load()
		if !s.n.viewSources.take(s.addr, perIP, now) {
			s.n.metrics.viewsRefused[viewBucketSource].Inc()
			s.n.limitLog.sample("refusing a directory: too many asked from one address", "remote", s.addr,
				"burst", perIP*ViewSourceBurstPer, "per_second", float64(perIP)/ViewSourceRateDiv)
			return false
		}
	}
	s.views.tokens--
	return true
}

// maxRefusedAttaches is how many attaches one connection may have refused
// as unauthorized: the last refusal closes it. A token's signature costs
// the node about 50 times what reading its bytes does, so a stranger
// must not be able to try one token after another on one connection.
const maxRefusedAttaches = 3

// attach answers an attach; it returns a fatal error once the connection
// has had maxRefusedAttaches tokens refused.
func (s *session) attach(m wire.Message) *wire.Error {
	n := s.n
	if s.attached.Load() {
		s.reply(wire.ErrorMessage(wire.Errorf(wire.CodeBadRequest, "already attached as %q", s.user)))
		return nil
	}
	user, allowed, werr := s.checkToken(m)
	if werr != nil {
		if s.refused++; s.refused >= maxRefusedAttaches {
			werr.Fatal = true
			werr.Text += fmt.Sprintf("; closing after %d refused attaches", s.refused)
			return werr // counted in bad_input by code when sent
		}
		s.reply(wire.ErrorMessage(werr)) // counted in bad_input by code
		return nil
	}
	if msg := validUserName(user); msg != "" {
		s.reply(wire.ErrorMessage(wire.Errorf(wire.CodeBadRequest, "%s", msg)))
		return nil
	}
	if msg := validDevice(m.Device); msg != "" {
		s.reply(wire.ErrorMessage(wire.Errorf(wire.CodeBadRequest, "%s", msg)))
		return nil
	}
	for {
		if n.draining.Load() || n.closed.Load() {
			s.refuse(wire.CodeDraining, "node "+n.cfg.ID+" is draining; pick another")
			return nil
		}
		if n.degraded.Load() {
			// The code every client version takes for "pick another".
			s.refuse(wire.CodeDraining, "node "+n.cfg.ID+" "+n.degradedWhy()+" (degraded); pick another")
			return nil
		}
		users := n.users.Load()
		if users >= n.capacity.Load() {
			s.refuse(wire.CodeFull, "node "+n.cfg.ID+" is full; pick another")
			return nil
		}
		if n.users.CompareAndSwap(users, users+1) {
			break
		}
	}
	n.notifyChange()
	s.user = user
	s.device = m.Device
	s.allowed = allowed
	// The whole incarnation, which differs in every life of the node:
	// after a crash the rooms still hold the last life's members, and a
	// session of this life under one of their IDs would have its join
	// taken for theirs, retried. (The incarnation modulo 1e6, as before,
	// gave two lives started a whole number of milliseconds apart the
	// same IDs.)
	s.id = strconv.FormatUint(n.incarnation, 36) + "-" + strconv.FormatUint(n.nextID.Add(1), 36)
	s.rooms = make(map[string]*feed)
	s.seqs = make(map[string]uint64)
	s.seqAsked = make(map[string]time.Time)
	s.limiter = newTextLimiter(n.cfg)
	s.attachAt = time.Now()
	s.attached.Store(true)
	n.metrics.attaches.Inc()
	s.reply(wire.Message{Op: wire.OpAttached, Node: n.cfg.ID, Session: s.id, User: s.user, Limits: &wire.Limits{
		MaxChunk:  n.cfg.MaxChunk,
		ChunkRate: n.cfg.ChunkRate, ChunkBurst: n.cfg.ChunkBurst,
		ByteRate: n.cfg.ByteRate, ByteBurst: n.cfg.ByteBurst,
	}})
	s.answered.Store(true)
	n.metrics.attached(s.helloAt)
	return nil
}

// refuse answers an attach with an error that carries a fresh directory.
func (s *session) refuse(code, text string) {
	s.n.metrics.refused.WithLabelValues(code).Inc()
	s.reply(s.refusal(code, text)) // dirline.go
}

func validUserName(name string) string {
	switch {
	case name == "":
		return "attach needs a user name"
	case len(name) > MaxUserName:
		return "user name longer than " + strconv.Itoa(MaxUserName) + " bytes"
	case hasControl(name):
		return "user name has control characters"
	}
	return ""
}

// hasControl reports whether name holds a control character or U+FFFD
// (which is also what a byte that is not UTF-8 decodes to).
func hasControl(name string) bool {
	return strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar })
}

// validDevice says what is wrong with an attach's device name, if
// anything: it may be absent, and otherwise follows a user name's rules.
func validDevice(name string) string {
	switch {
	case len(name) > MaxDevice:
		return "device name longer than " + strconv.Itoa(MaxDevice) + " bytes"
	case hasControl(name):
		return "device name has control characters"
	}
	return ""
}

// reply encodes m and writes it from the reader goroutine.
func (s *session) reply(m wire.Message) {
	line, err := wire.Encode(m)
	if err != nil {
		s.n.log.Error("encoding a reply", "err", err)
		return
	}
	if m.Op == wire.OpError {
		s.n.metrics.errorSent(m.Code)
	}
	s.write(line)
}

// write writes an encoded line from the reader goroutine, after whatever
// is queued. An answer that does not fit in the queue closes the session
// as push does: the client would wait for it for ever.
func (s *session) write(line []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.writing {
		if !s.enqueueLocked(line) {
			s.closeSlowLocked()
			return
		}
		s.mu.Unlock()
		return
	}
	s.writing = true
	s.writeAt = time.Now()
	s.mu.Unlock()
	s.writeLoop(line, true)
}

// push queues a line written by another goroutine (directory pushes,
// deliveries); the session's writer drains the queue.
func (s *session) push(line []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	// Goroutines started here join the node's wait group while s is not
	// closed, that is while s's reader still holds its own count in it.
	if !s.enqueueLocked(line) {
		s.closeSlowLocked()
		return
	}
	if s.writing {
		s.mu.Unlock()
		return
	}
	s.writing = true
	s.writeAt = time.Now()
	line, s.queue = s.queue, nil
	s.n.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.n.wg.Done()
		s.writeLoop(line, false)
	}()
}

// closeSlowLocked closes the session of a client that reads too slowly
// for its queue, and unlocks s.mu. Goroutines started here join the
// node's wait group while s is not closed, that is while s's reader
// still holds its own count in it.
func (s *session) closeSlowLocked() {
	if s.slow {
		// Already closing: each push until the close gets here would
		// start another goroutine and log another line.
		s.mu.Unlock()
		return
	}
	s.slow = true
	s.n.wg.Add(1)
	queued := len(s.queue)
	s.mu.Unlock()
	s.n.log.Warn("closing a slow client", "session", s.id, "queued", queued, "queued_all_sessions", s.n.queued.Load())
	// Closing writes what is queued (up to a second): not on the
	// pusher's goroutine, which may be a room feed, nor on the reader's.
	go func() {
		defer s.n.wg.Done()
		s.close(&wire.Error{Code: wire.CodeLimit, Text: "client reads too slowly", Fatal: true})
	}()
}

// enqueueLocked appends line to the queue, and reports false instead when
// the client is too slow for it:
//
//   - the queue would pass MaxQueue while the write under way has taken
//     stalledAfter or longer, or would pass slowQueueFactor times MaxQueue
//     at all. A room whose members paste at once hands each member more
//     than MaxQueue within moments (each sender may burst ByteBurst), and
//     a client that keeps up takes it as fast as it comes: judged by
//     bytes alone, it was closed for the others' text. A line into an
//     empty queue is always taken: the writer takes it next.
//   - the node's queues together would pass MaxQueueTotal while this one
//     holds queueShare or more: a client that keeps up has next to nothing
//     queued and is never refused for the others.
func (s *session) enqueueLocked(line []byte) bool {
	if n := len(s.queue) + len(line); len(s.queue) > 0 && n > s.n.cfg.MaxQueue {
		if n > slowQueueFactor*s.n.cfg.MaxQueue || s.writeStalled() {
			return false
		}
	}
	if len(s.queue) >= queueShare && s.n.queued.Load()+int64(len(line)) > int64(s.n.cfg.MaxQueueTotal) {
		return false
	}
	s.queue = append(s.queue, line...)
	s.n.queued.Add(int64(len(line)))
	return true
}

// queueShare is how much a session's queue may hold while the node's
// queues together are past MaxQueueTotal: a room's state, a directory
// and a few chunks behind it.
const queueShare = 128 << 10

// stalledAfter and slowQueueFactor: a client is slow when more than
// MaxQueue waits for it while its connection has taken nothing for
// stalledAfter, or more than slowQueueFactor times MaxQueue waits at all.
const (
	stalledAfter    = time.Second
	slowQueueFactor = 8
)

// writeStalled reports whether a write is under way and began
// stalledAfter ago or longer. s.mu is held.
func (s *session) writeStalled() bool {
	return s.writing && time.Since(s.writeAt) >= stalledAfter
}

// writeLoop writes buf, then whatever was queued meanwhile, until the
// queue is empty; on the reader goroutine (reader) it writes buf only and
// hands the rest to a goroutine. Only one writeLoop runs per session at a
// time.
func (s *session) writeLoop(buf []byte, reader bool) {
	// What the node counts as queued (n.queued): every buf taken from the
	// queue, until it is written; the reader's own line never was queued.
	queued := len(buf)
	if reader {
		queued = 0
	}
	for {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.n.cfg.WriteTimeout))
		_, err := s.conn.Write(buf)
		s.n.queued.Add(-int64(queued))
		if err != nil {
			s.mu.Lock()
			s.writing = false
			s.mu.Unlock()
			_ = s.conn.Close()
			return
		}
		s.mu.Lock()
		if len(s.queue) == 0 || s.closed {
			s.writing = false
			s.mu.Unlock()
			return
		}
		buf, s.queue = s.queue, nil
		s.writeAt = time.Now()
		queued = len(buf)
		if reader {
			// The reader has written its own line; what others queued
			// meanwhile (a busy room's deliveries) goes on from a
			// goroutine of its own, so that the client's next line is
			// read now rather than after them. s is not closed, so the
			// reader still holds its count in the wait group.
			s.n.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.n.wg.Done()
				s.writeLoop(buf, false)
			}()
			return
		}
		s.mu.Unlock()
	}
}

// close sends reason (if any) after what is queued, then closes the
// connection. It is safe to call more than once and from any goroutine.
func (s *session) close(reason *wire.Error) { s.shut(reason, false) }

// closeSessions closes sessions with reason, all at once, and returns
// when every one is closed. Each close may wait up to a second on a
// client that does not read (its last write's deadline); one after
// another, a few hundred such clients would hold a shutdown or a drain's
// end for minutes.
func closeSessions(sessions []*session, reason *wire.Error) {
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() { s.close(reason) })
	}
	wg.Wait()
}

// closeAndLinger is close for the reader goroutine: after the error it
// half-closes and reads what the client still sends for a moment, so that
// unread input does not turn the close into a reset that could destroy
// the error message before the client reads it.
func (s *session) closeAndLinger(reason *wire.Error) { s.shut(reason, reason != nil) }

func (s *session) shut(reason *wire.Error, linger bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	pending := s.queue
	s.queue = nil
	s.mu.Unlock()
	s.n.queued.Add(-int64(len(pending)))
	if reason != nil {
		s.n.metrics.errorSent(reason.Code)
		if line, err := wire.Encode(wire.Message{Op: wire.OpError, Code: reason.Code, Message: reason.Text}); err == nil {
			pending = append(pending, line...)
		}
	}
	if len(pending) > 0 {
		_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = s.conn.Write(pending)
	}
	// TCP and TLS connections can half-close (TLS sends its close_notify
	// first); other connections (a pipe, a WebSocket) just close.
	if hc, ok := s.conn.(interface{ CloseWrite() error }); ok && linger {
		_ = hc.CloseWrite()
		_ = s.conn.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.CopyN(io.Discard, s.conn, 1<<20)
	}
	_ = s.conn.Close()
}

// finish releases what the session held once its reader has stopped.
func (s *session) finish() {
	s.close(nil)
	n := s.n
	n.sessionsMu.Lock()
	n.releaseLocked(s)
	n.sessionsMu.Unlock()
	n.metrics.connections.Dec()
	s.leaveRooms()
	if s.attached.Swap(false) {
		n.users.Add(-1)
		n.notifyChange()
	}
}
