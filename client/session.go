package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/wire"
)

// EventKind says what an Event reports.
type EventKind int

// The kinds of event.
const (
	// Disconnected: the connection to the node dropped; the session is
	// reconnecting. Err says why.
	Disconnected EventKind = iota + 1
	// Reattached: the session is attached again, to Node, for Reason.
	Reattached
	// DirectoryPushed: the node pushed a fresh directory (Message.Directory()).
	DirectoryPushed
	// Received: a message from the node: text, presence, room state, ack
	// or error (Message).
	Received
)

func (k EventKind) String() string {
	switch k {
	case Disconnected:
		return "disconnected"
	case Reattached:
		return "reattached"
	case DirectoryPushed:
		return "directory"
	case Received:
		return "received"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event is something that happened to a session, delivered in order on
// Session.Events.
type Event struct {
	Kind EventKind
	// Node is the node the session is on (Reattached) or was on (Disconnected).
	Node directory.Node
	// Reason says why Node was picked (Reattached).
	Reason string
	// Message is the message received (Received, DirectoryPushed).
	Message wire.Message
	// Err is why the connection dropped (Disconnected).
	Err error
}

// Session is a client attached to one node of a service, reattached
// elsewhere when that node fails. Its methods are safe for concurrent use.
type Session struct {
	opts    options
	target  target
	tls     *tls.Config       // nil: plain TCP; ServerName is the service name
	machine *failover.Machine // owned by the goroutine running connect

	mu        sync.Mutex // guards the fields below
	conn      *Conn
	node      directory.Node
	reason    string
	sessionID string
	dir       *wire.Directory
	rooms     map[string]*room
	attaches  int

	events chan Event
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// room is the client's side of a joined room: the next seq and the text
// not yet acknowledged, to send again after a reconnect.
type room struct {
	nextSeq uint64
	unacked []wire.Message
	// synced: the node sent the room's state on this connection, so text
	// can go straight out.
	synced bool
	// numbered: a state was seen once, so seqs follow the server's.
	numbered bool
	// retry asks for the room again after the node refused a chunk or a
	// join for a while (unavailable, rate); nil when none is pending.
	retry *time.Timer
}

// Delays before a room is asked for again after a refusal: storage that is
// electing a leader comes back within seconds; a rate limit refills.
const (
	unavailableRetry = 250 * time.Millisecond
	rateRetry        = time.Second
)

// Dial reaches the common address named by target, picks a node from the
// directory it answers with, and attaches to it as the user given with
// WithUser. It blocks until attached, or until ctx ends (its deadline is
// the dial deadline: the error then says what was tried). The session then
// keeps itself attached until Close.
func Dial(ctx context.Context, target string, opts ...Option) (*Session, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.user == "" {
		return nil, errors.New("client: a user name is required (WithUser)")
	}
	if o.rand == nil {
		o.rand = pick.DefaultRand()
	}
	if o.policy == nil {
		o.policy = pick.Default(o.rand)
	}
	if o.dialer == nil {
		o.dialer = &net.Dialer{KeepAlive: 15 * time.Second}
	}
	t, err := parseTarget(target, o.resolver)
	if err != nil {
		return nil, err
	}
	m, err := failover.New(o.retry, o.rand)
	if err != nil {
		return nil, err
	}
	s := &Session{opts: o, target: t, machine: m, rooms: map[string]*room{}, events: make(chan Event, o.events), done: make(chan struct{})}
	if o.tls != nil {
		name := cmpOr(o.serviceName, o.tls.ServerName, t.serviceName())
		if name == "" {
			return nil, fmt.Errorf("client: TLS to %s: the target names no service to verify; set WithServiceName", target)
		}
		s.tls = o.tls
		s.tls.ServerName = name
	}
	deadline, _ := ctx.Deadline()
	first := m.Next(failover.Outcome{Kind: failover.Begin, Deadline: deadline}, time.Now())
	if err := s.connect(ctx, first); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.supervise()
	return s, nil
}

// attempt is what one pass of connect found.
type attempt struct {
	boot    *Conn           // open connection to the node that answered a hello
	dir     *wire.Directory // the directory in hand
	dirAt   time.Time
	node    directory.Node // the node picked
	reason  string
	lastErr error
}

// connect drives the failover machine from its first action until the
// session is attached (nil) or the machine gives up.
func (s *Session) connect(ctx context.Context, act failover.Action) error {
	var a attempt
	var last error // the latest failure, for the give-up error
	defer func() {
		if a.boot != nil {
			a.boot.Close()
		}
	}()
	for {
		var o failover.Outcome
		switch act.Step {
		case failover.Refresh:
			if err := sleep(ctx, act.After); err != nil {
				return s.gaveUp(err, last)
			}
			if a.boot != nil {
				a.boot.Close()
				a.boot = nil
			}
			if err := s.bootstrap(ctx, &a); err != nil {
				o = failover.Outcome{Kind: failover.DirectoryFailed, Err: err}
			} else {
				o = failover.Outcome{Kind: failover.Fetched}
			}
		case failover.Pick:
			now := time.Now()
			req := pick.Request{Group: s.opts.group, Exclude: s.machine.ExcludeFunc(now), Age: now.Sub(a.dirAt)}
			if a.dir != nil {
				req.Self = a.dir.Self
			}
			var res pick.Result
			var err error
			if a.dir == nil {
				err = pick.ErrNoNode
			} else if s.opts.tracker != nil {
				res, err = s.opts.tracker.Pick(s.opts.policy, a.dir.Nodes, req, now)
			} else {
				res, err = s.opts.policy.Pick(a.dir.Nodes, req)
			}
			if err != nil {
				o = failover.Outcome{Kind: failover.NoCandidate, Err: err}
			} else {
				a.node, a.reason = res.Node, res.Reason
				o = failover.Outcome{Kind: failover.Picked, Node: res.Node.ID}
			}
		case failover.Dial, failover.Retry:
			if err := sleep(ctx, act.After); err != nil {
				return s.gaveUp(err, last)
			}
			var err error
			o, err = s.attach(ctx, &a)
			if err != nil {
				return err // a refusal retrying cannot mend (bad user name...)
			}
			if o.Kind == failover.Attached {
				return nil
			}
			if s.opts.tracker != nil {
				s.opts.tracker.Release(a.node.ID)
			}
		case failover.Done:
			return nil
		case failover.Fail:
			return fmt.Errorf("client: attaching to %s: %w", s.target.raw, act.Err)
		default:
			return fmt.Errorf("client: unexpected failover step %v", act)
		}
		if o.Err != nil {
			last = o.Err
		}
		act = s.machine.Next(o, time.Now())
	}
}

// gaveUp is the error of a connect stopped by its context: what stopped it
// and the last failure before that.
func (s *Session) gaveUp(ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("client: attaching to %s: %w", s.target.raw, ctxErr)
	}
	return fmt.Errorf("client: attaching to %s: %w; last failure: %w", s.target.raw, ctxErr, last)
}

// bootstrap says hello at the common address, trying its addresses in
// random order, and keeps the first connection that answers.
func (s *Session) bootstrap(ctx context.Context, a *attempt) error {
	actx, cancel := context.WithTimeout(ctx, s.opts.attempt)
	defer cancel()
	addrs, err := s.target.resolveAddrs(actx, s.opts.rand, s.opts.defaultPort)
	if err != nil {
		return err
	}
	var errs []error
	for _, addr := range addrs {
		c, dir, err := s.hello(ctx, addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.boot, a.dir, a.dirAt = c, dir, time.Now()
		return nil
	}
	return fmt.Errorf("client: no address of %s answered: %w", s.target.raw, errors.Join(errs...))
}

// hello connects to addr and says hello, within one attempt timeout.
func (s *Session) hello(ctx context.Context, addr string) (*Conn, *wire.Directory, error) {
	actx, cancel := context.WithTimeout(ctx, s.opts.attempt)
	defer cancel()
	c, err := DialConnTLS(actx, s.opts.dialer, addr, s.tls)
	if err != nil {
		return nil, nil, err
	}
	dir, err := c.Hello(actx, s.opts.clientName, s.opts.group)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, dir, nil
}

// attach attaches to a.node: on the bootstrap connection when that is the
// node that answered it, else on a new connection. It returns the outcome
// for the machine, and an error only for refusals that no retry mends.
func (s *Session) attach(ctx context.Context, a *attempt) (failover.Outcome, error) {
	node := a.node
	var c *Conn
	if a.boot != nil && a.dir != nil && a.dir.Self == node.ID {
		c, a.boot = a.boot, nil
	} else {
		if a.boot != nil {
			a.boot.Close()
			a.boot = nil
		}
		var dir *wire.Directory
		var err error
		c, dir, err = s.hello(ctx, node.Addr)
		if err != nil {
			return s.failure(ctx, node, err), nil
		}
		a.dir, a.dirAt = dir, time.Now()
	}
	actx, cancel := context.WithTimeout(ctx, s.opts.attempt)
	defer cancel()
	m, err := s.attachOn(actx, c)
	if err != nil {
		c.Close()
		var se *ServerError
		if errors.As(err, &se) {
			switch se.Code {
			case wire.CodeFull, wire.CodeDraining:
				if se.Directory != nil {
					a.dir, a.dirAt = se.Directory, time.Now()
				}
				return failover.Outcome{Kind: failover.Refused, Node: node.ID, Status: directory.Status(se.Code), Err: err}, nil
			case wire.CodeShutdown, wire.CodeTooManyConns, wire.CodeAttachTimeout:
				// The node is going, or has no room for one more
				// connection: as if the dial had failed.
				return failover.Outcome{Kind: failover.DialFailed, Node: node.ID, Err: err}, nil
			}
			return failover.Outcome{}, fmt.Errorf("client: attaching to %s: %w", node.ID, err)
		}
		return s.failure(ctx, node, err), nil
	}
	s.mu.Lock()
	s.conn = c
	s.node = node
	s.reason = a.reason
	s.sessionID = m.Session
	s.dir = a.dir
	s.attaches++
	s.mu.Unlock()
	return failover.Outcome{Kind: failover.Attached, Node: node.ID}, nil
}

// failure classifies a failed dial, hello or attach.
func (s *Session) failure(ctx context.Context, node directory.Node, err error) failover.Outcome {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		if ctx.Err() == nil {
			return failover.Outcome{Kind: failover.Timeout, Node: node.ID, Err: err}
		}
	}
	return failover.Outcome{Kind: failover.DialFailed, Node: node.ID, Err: err}
}

// attachOn sends attach on c and waits for the answer.
func (s *Session) attachOn(ctx context.Context, c *Conn) (wire.Message, error) {
	msg := wire.Message{Op: wire.OpAttach, User: s.opts.user}
	if s.opts.token != nil {
		tok, err := s.opts.token(ctx)
		if err != nil {
			return wire.Message{}, fmt.Errorf("client: getting a token: %w", err)
		}
		msg.Token = tok
	}
	if err := c.Send(msg); err != nil {
		return wire.Message{}, err
	}
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			return wire.Message{}, err
		}
		switch m.Op {
		case wire.OpAttached:
			return m, nil
		case wire.OpError:
			return wire.Message{}, asError(m)
		}
	}
}

// supervise reads the session's connection and, when it drops,
// reattaches through the failover machine, until Close.
func (s *Session) supervise() {
	defer close(s.done)
	defer close(s.events)
	defer func() {
		// A reattach that raced with Close may have left a connection.
		s.mu.Lock()
		if s.conn != nil {
			s.conn.Close()
			s.conn = nil
		}
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		c, node := s.conn, s.node
		s.mu.Unlock()
		err := s.readLoop(c)
		c.Close()
		if s.ctx.Err() != nil {
			return
		}
		s.opts.logger.Info("session dropped", "node", node.ID, "err", err)
		s.mu.Lock()
		s.conn = nil
		for _, r := range s.rooms {
			r.synced = false
		}
		s.mu.Unlock()
		if !s.emit(Event{Kind: Disconnected, Node: node, Err: err}) {
			return
		}
		act := s.machine.Next(failover.Outcome{Kind: failover.Dropped, Node: node.ID, Err: err}, time.Now())
		if err := s.connect(s.ctx, act); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			// Without a deadline the machine only stops for refusals
			// retrying cannot mend; report and stop.
			s.opts.logger.Error("session cannot reattach", "err", err)
			s.emit(Event{Kind: Disconnected, Err: err})
			return
		}
		s.mu.Lock()
		ev := Event{Kind: Reattached, Node: s.node, Reason: s.reason}
		s.rejoinLocked()
		s.mu.Unlock()
		s.opts.logger.Info("session reattached", "node", ev.Node.ID, "reason", ev.Reason)
		if !s.emit(ev) {
			return
		}
	}
}

// readLoop reads messages until the connection fails or the session
// closes. It pings a node that has been silent for the ping interval and
// gives up on it when the ping gets no answer in another interval.
func (s *Session) readLoop(c *Conn) error {
	pinged := false
	for {
		deadline := time.Time{}
		if s.opts.ping > 0 {
			deadline = time.Now().Add(s.opts.ping)
		}
		m, err := c.recvBefore(deadline)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && s.ctx.Err() == nil {
				pinged = true
				if err := c.Send(wire.Message{Op: wire.OpPing}); err != nil {
					return err
				}
				continue
			}
			return err
		}
		pinged = false
		if !s.handle(c, m) {
			return s.ctx.Err()
		}
	}
}

// handle processes one message from the node; false means the session is
// closing.
func (s *Session) handle(c *Conn, m wire.Message) bool {
	switch m.Op {
	case wire.OpPong:
		return true
	case wire.OpDirectory:
		s.mu.Lock()
		s.dir = m.Directory()
		s.mu.Unlock()
		return s.emit(Event{Kind: DirectoryPushed, Message: m})
	case wire.OpRoom:
		s.mu.Lock()
		if r := s.rooms[m.Room]; r != nil && m.State != nil {
			s.syncRoomLocked(c, r, m.State.Seqs[s.opts.user])
		}
		s.mu.Unlock()
	case wire.OpAck:
		s.mu.Lock()
		if r := s.rooms[m.Room]; r != nil {
			r.ackLocked(m.Seq)
		}
		s.mu.Unlock()
	case wire.OpError:
		if m.Room != "" && (m.Code == wire.CodeUnavailable || m.Code == wire.CodeRate) {
			s.mu.Lock()
			if r := s.rooms[m.Room]; r != nil {
				s.retryRoomLocked(c, m.Room, r, m.Code)
			}
			s.mu.Unlock()
		}
	}
	return s.emit(Event{Kind: Received, Message: m})
}

// retryRoomLocked handles a refused chunk or join: text waits (the node
// refuses every later chunk until the refused one is resent), and after a
// pause the room is joined again; its state says what is stored, and
// syncRoomLocked resends the rest in order.
func (s *Session) retryRoomLocked(c *Conn, name string, r *room, code string) {
	r.synced = false
	if r.retry != nil {
		return
	}
	delay := unavailableRetry
	if code == wire.CodeRate {
		delay = rateRetry
	}
	r.retry = time.AfterFunc(delay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		r.retry = nil
		if s.ctx.Err() == nil && s.conn == c && s.rooms[name] == r {
			_ = c.Send(wire.Message{Op: wire.OpJoin, Room: name})
		}
	})
}

// syncRoomLocked applies a room state: what the state holds of our text is
// stored; the rest is sent again, in order.
func (s *Session) syncRoomLocked(c *Conn, r *room, stored uint64) {
	if !r.numbered {
		// The first state tells where our numbering continues: renumber
		// what was typed before it arrived.
		r.numbered = true
		next := stored + 1
		for i := range r.unacked {
			r.unacked[i].Seq = next
			next++
		}
		r.nextSeq = next
	} else {
		r.ackLocked(stored)
		if len(r.unacked) == 0 {
			r.nextSeq = max(r.nextSeq, stored+1)
		}
	}
	r.synced = true
	for _, m := range r.unacked {
		if err := c.Send(m); err != nil {
			return // the reader notices the broken connection
		}
	}
}

// ackLocked forgets the text up to seq, which the node has stored.
func (r *room) ackLocked(seq uint64) {
	i := 0
	for i < len(r.unacked) && r.unacked[i].Seq <= seq {
		i++
	}
	r.unacked = r.unacked[i:]
}

// rejoinLocked joins the rooms again after a reattach; their states
// trigger the resends.
func (s *Session) rejoinLocked() {
	for name := range s.rooms {
		_ = s.conn.Send(wire.Message{Op: wire.OpJoin, Room: name})
	}
}

// emit delivers an event, waiting while the Events buffer is full; false
// means the session closed meanwhile.
func (s *Session) emit(e Event) bool {
	select {
	case s.events <- e:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// Events delivers what happens to the session, in order: drops,
// reattachments, pushed directories and messages from rooms. The channel
// closes after Close. Read it: while its buffer is full the session stops
// reading from its node.
func (s *Session) Events() <-chan Event { return s.events }

// Node is the node the session is attached to (or was, while reconnecting).
func (s *Session) Node() directory.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node
}

// Reason says why the current node was picked.
func (s *Session) Reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// ID is the node-assigned session ID of the current attachment.
func (s *Session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionID
}

// Attaches counts how many times the session attached (1 + failovers).
func (s *Session) Attaches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attaches
}

// Connected reports whether the session is attached right now.
func (s *Session) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn != nil
}

// Directory is the latest directory the session received.
func (s *Session) Directory() *wire.Directory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir
}

// Join joins a room; the node answers with the room's state (a Received
// event with op "room"), then delivers its text and presence. The session
// rejoins its rooms by itself after a failover.
func (s *Session) Join(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	if _, ok := s.rooms[name]; !ok {
		s.rooms[name] = &room{nextSeq: 1}
	}
	if s.conn == nil {
		return nil // joined when reattached
	}
	return s.conn.Send(wire.Message{Op: wire.OpJoin, Room: name})
}

// Leave leaves a room and forgets its unacknowledged text.
func (s *Session) Leave(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	if r := s.rooms[name]; r != nil && r.retry != nil {
		r.retry.Stop()
	}
	delete(s.rooms, name)
	if s.conn == nil {
		return nil
	}
	return s.conn.Send(wire.Message{Op: wire.OpLeave, Room: name})
}

// SendText sends a chunk of text (as typed: characters, backspaces U+0008,
// line ends) to a joined room and returns its seq. The chunk is kept until
// the node acknowledges it and sent again after a failover, so nothing
// acknowledged or typed is lost; the node drops resent duplicates.
func (s *Session) SendText(name, text string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return 0, ErrClosed
	}
	r, ok := s.rooms[name]
	if !ok {
		return 0, fmt.Errorf("client: room %q not joined", name)
	}
	m := wire.Message{Op: wire.OpText, Room: name, Seq: r.nextSeq, T: text}
	r.nextSeq++
	r.unacked = append(r.unacked, m)
	if s.conn != nil && r.synced {
		_ = s.conn.Send(m) // a failure shows as a drop; the chunk is resent
	}
	return m.Seq, nil
}

// Unacked counts the chunks of a room not yet acknowledged.
func (s *Session) Unacked(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rooms[name]; ok {
		return len(r.unacked)
	}
	return 0
}

// Close detaches and stops the session. It waits for the session's
// goroutine to end.
func (s *Session) Close() error {
	s.cancel()
	s.mu.Lock()
	if s.conn != nil {
		s.conn.Close()
	}
	for _, r := range s.rooms {
		if r.retry != nil {
			r.retry.Stop()
			r.retry = nil
		}
	}
	s.mu.Unlock()
	<-s.done
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// UnackedText returns copies of a room's chunks not yet acknowledged, in
// seq order: what a display shows as typed but not yet stored.
func (s *Session) UnackedText(name string) []wire.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rooms[name]; ok {
		return slices.Clone(r.unacked)
	}
	return nil
}

// User is the user name the session attaches as.
func (s *Session) User() string { return s.opts.user }

// cmpOr returns the first of ss that is not empty.
func cmpOr(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
