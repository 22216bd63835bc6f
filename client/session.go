package client

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

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
	// DirectoryPushed: the node pushed a fresh directory
	// (Message.Directory()), or only the nodes that changed
	// (Message.Delta: Message.Nodes and Message.Gone); Session.Directory
	// gives the directory either makes.
	DirectoryPushed
	// Received: a message from the node: text, presence, room state, ack
	// or error (Message; Event.Room gives a room's messages typed), or
	// one of an op this version does not know, which a later node may
	// send and the session itself passes over.
	Received
	// Moved: the node asked the session to move (it drains, rebalances
	// or cannot store: a Received event with op "move" came just
	// before), and the session is attached to Node, picked for Reason,
	// without having dropped: it joins its rooms there and closes the
	// old connection once their states are in (make-before-break; see
	// move.go).
	Moved
)

// String names the kind in a word, in lower case ("disconnected").
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
	case Moved:
		return "moved"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event is something that happened to a session, delivered in order on
// Session.Events.
type Event struct {
	Kind EventKind
	// Node is the node the session is on (Reattached, Moved) or was on
	// (Disconnected).
	Node directory.Node
	// Reason says why Node was picked (Reattached, Moved).
	Reason string
	// Message is the message received (Received, DirectoryPushed).
	Message wire.Message
	// Err is why the connection dropped (Disconnected).
	Err error
}

// State is where a session stands.
type State int

// The states of a session. A session starts attached (Dial returns only
// then), moves between StateAttached and StateReconnecting as nodes fail,
// and ends in StateClosed (Close) or StateFailed (it gave up reattaching;
// see WithReconnectTimeout). Both ends are final.
const (
	// StateAttached: attached to a node (Session.Node).
	StateAttached State = iota + 1
	// StateReconnecting: the connection dropped and the session is
	// attaching again; Join, Leave and SendText are queued meanwhile.
	StateReconnecting
	// StateClosed: Close was called.
	StateClosed
	// StateFailed: the session gave up reattaching; Session.Err says why.
	StateFailed
)

// String names the state: attached, reconnecting, closed or failed.
func (st State) String() string {
	switch st {
	case StateAttached:
		return "attached"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", int(st))
}

// ErrGaveUp matches (errors.Is) the error of a Dial that gave up (its
// context ended, or a refusal no retry mends, such as unauthorized), and
// that of a session that gave up reattaching (the same refusal, or
// WithReconnectTimeout passed), which also matches ErrClosed. The
// message says what was tried, node by node.
var ErrGaveUp = errors.New("client: gave up")

// gaveUpError is the final error of a session that gave up.
type gaveUpError struct{ cause error }

func (e *gaveUpError) Error() string { return "client: session gave up: " + e.cause.Error() }

// Unwrap lets errors.Is match ErrGaveUp, ErrClosed and the cause.
func (e *gaveUpError) Unwrap() []error { return []error{ErrGaveUp, ErrClosed, e.cause} }

// Session is a client attached to one node of a service, reattached
// elsewhere when that node fails. Its methods are safe for concurrent use.
type Session struct {
	opts    options
	target  target
	tls     *tls.Config       // nil: plain TCP; ServerName is the service name
	machine *failover.Machine // owned by the goroutine running connect
	// service is the service name every hello's directory must carry
	// (checkService); "" when the session was given none.
	service string

	mu        sync.Mutex // guards the fields below
	conn      *Conn
	w         *writer // writes to conn; nil when conn is
	state     State
	err       error // why the session ended (StateClosed, StateFailed)
	node      directory.Node
	reason    string
	sessionID string
	dir       *wire.Directory
	dirAt     time.Time // when dir came
	// dirOwned: dir is the session's own copy, never handed out, so a
	// push of changes may be applied to it in place (handle).
	dirOwned bool
	rooms    map[string]*room
	// leaveRetry holds, per room, the leave to send again on the current
	// connection after the node refused one for the rate
	// (answerLeaveLocked).
	leaveRetry map[string]*time.Timer
	// asked holds, per room, the joins ('j') and leaves ('l'; 'u' for a
	// room not held) sent on the current connection and not yet
	// answered, oldest first: the node answers them in order
	// (sendJoinLocked, answeredLocked).
	asked    map[string][]byte
	attaches int
	moves    int
	move     *moveAsked // a move the node asked for, until supervise takes it
	// earlyMove is a move the node sent on conn before its attached,
	// until conn's reader hands it to handle (readLoop).
	earlyMove *wire.Message
	retiring  *retiring // the connection a move left, until the rooms are joined anew

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
	// out counts the leading unacked chunks that went out to a node and
	// were not refused since: the room may have shown them to its
	// members, and may store them. The rest wait for the room's next
	// state (syncRoomLocked sends them): typed while the room was not
	// synced, or refused by the node (rate, unavailable).
	out int
	// waits has one entry per unacked chunk: the SendTextWait waiting for
	// the text it is part of, or nil. Every chunk of a text cut into
	// several carries the text's wait, which ends with the last one's ack
	// or the first refusal of any (endWaitLocked).
	waits []chan ackResult
	// joins are the JoinWaits waiting for the room's state.
	joins []chan joinResult
	// flushes are the Flush calls waiting for the text queued before
	// them to be acknowledged: nil then, or why they end first
	// (ErrLeft, a refusal).
	flushes []flushWait
	// refusal is the refusal for good of a chunk that no Flush has
	// reported yet (none waited for it): the next Flush returns it.
	refusal error
	// queued and acked are where the text ever queued and the text ever
	// acknowledged end (textPos): a Flush waits for acked to reach queued
	// as it was.
	queued, acked textPos
	// sent counts the leading unacked chunks that went out at least once,
	// on any connection (refused or not): the rest were never sent, so no
	// node can have stored them (syncRoomLocked).
	sent int
	// sentSeq is the highest seq the session sent in the room, acked or
	// not: a delivery of the user's own text at or below it may be an
	// echo of this session's chunk (ownText); above it, it cannot be.
	sentSeq uint64
	// synced: the node sent the room's state on this connection, so text
	// can go straight out.
	synced bool
	// numbered: a state was seen once, so seqs follow the server's.
	numbered bool
	// joinedOn is the connection the room's last state came on: the one
	// the session is in the room on. On any other (after a failover, on
	// a move's new connection) a join refused for good leaves it out.
	joinedOn *writer
	// removedOn is the connection the node said removed on (it took the
	// session out of the room), until the room's next state: the chunks
	// on their way there meanwhile get bad_request (not in the room), and
	// wait for the state of the join that follows, as refused ones do.
	removedOn *writer
	// byDevice: the session names its device, so the room tells this
	// client's resends from another device's chunks under the same seqs
	// (docs/protocol.md, "Text"): a chunk that went out keeps its seq
	// until acknowledged, and no state stands for its ack.
	byDevice bool
	// viaOld: the room is joined on the connection a move is leaving and
	// not yet on the new one, so text still goes out on the old one
	// (move.go).
	viaOld bool
	// retry asks for the room again after the node refused a chunk or a
	// join for a while (unavailable, rate); nil when none is pending.
	retry *time.Timer
	// pushed counts the leading unacked chunks sent since the room's
	// last state (on the connection it came on): text goes out in order
	// from there. It is at most out.
	pushed int
	// window, above 0 after a rate refusal, paces the room's text: at
	// most window chunks a round (pace.go).
	window int
	// roundSeq and roundAt are the first seq sent in the current round
	// and when the round began.
	roundSeq uint64
	roundAt  time.Time
	// pump sends what waits once the round or the connection's budget
	// allows it (pace.go); nil when none is planned.
	pump *time.Timer
}

// ackResult ends a SendTextWait: the chunk's seq once stored, or why not.
type ackResult struct {
	seq uint64
	err error
}

// joinResult ends a JoinWait: the room's state, or why not.
type joinResult struct {
	state *wire.RoomState
	err   error
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
// the dial deadline: the error then says what was tried, and matches
// ErrGaveUp). The session then keeps itself attached until Close.
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
	if o.device == nil {
		dev := newDevice()
		o.device = &dev
	}
	if o.policy == nil {
		o.policy = pick.Default(o.rand)
	}
	if o.dialer == nil {
		o.dialer = &net.Dialer{KeepAlive: 15 * time.Second}
	}
	t, err := parseTarget(target, o.resolvers)
	if err != nil {
		return nil, err
	}
	t.plainDNS = o.plainDNS
	m, err := failover.New(o.retry, o.rand)
	if err != nil {
		return nil, err
	}
	s := &Session{opts: o, target: t, machine: m, rooms: map[string]*room{}, leaveRetry: map[string]*time.Timer{}, asked: map[string][]byte{}, events: make(chan Event, o.events), done: make(chan struct{}), state: StateAttached}
	if o.tls != nil {
		name := cmpOr(o.serviceName, o.tls.ServerName, t.serviceName())
		if name == "" {
			return nil, fmt.Errorf("client: TLS to %s: the target names no service to verify; set WithServiceName", target)
		}
		s.tls = o.tls
		s.tls.ServerName = name
	}
	s.service = expectedService(o.serviceName)
	deadline, _ := ctx.Deadline()
	first := m.Next(failover.Outcome{Kind: failover.Begin, Deadline: deadline}, time.Now())
	if err := s.connect(ctx, first, nil, time.Time{}, deadline); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGaveUp, err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.supervise()
	return s, nil
}

// attempt is what one pass of connect found.
type attempt struct {
	boot   *Conn           // open connection to the node that answered a hello
	dir    *wire.Directory // the directory in hand
	dirAt  time.Time
	node   directory.Node // the node picked
	reason string
	// pending: the pick of node is pending in the Tracker (WithTracker)
	// until the attach succeeds or releasePick withdraws it.
	pending bool
	lastErr error
	// move is a move the node sent before its attached (it counts the
	// session attached a moment before it says so): the session acts on
	// it once attached.
	move *wire.Message
	// deadline is the flow's (zero: none), which also ends the wait for
	// a token.
	deadline time.Time
	// token is the next attach's token (or why there is none), fetched
	// just before the bootstrap's hello so that the attach can go on
	// that connection without holding it open across the fetch; nil when
	// none waits. One attach takes it; a failed bootstrap drops it.
	token *fetchedToken
}

// fetchedToken is what the token source returned.
type fetchedToken struct {
	tok string
	err error
}

// connect drives the failover machine from its first action until the
// session is attached (nil) or the machine gives up. dir, when not nil,
// is a directory in hand to pick from, received at dirAt (a move's, or
// the one the session held when it dropped). deadline is the one the
// machine was given for this flow (zero: none).
func (s *Session) connect(ctx context.Context, act failover.Action, dir *wire.Directory, dirAt, deadline time.Time) (err error) {
	if !deadline.IsZero() {
		// The machine looks at the deadline between steps; one step (a
		// hello to every address it knows, each after the last's
		// attempt timeout) could overrun it by minutes.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	a := attempt{deadline: deadline}
	if dir != nil {
		a.dir, a.dirAt = dir, dirAt
	}
	var last error // the latest failure, for the give-up error
	defer func() {
		if a.boot != nil {
			a.boot.Close()
		}
		if err != nil {
			s.releasePick(&a) // the flow ended without attaching
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
			if s.opts.token != nil {
				// Before the hello, with no connection open: the node
				// that answers may be the one picked, and the attach then
				// goes on the hello's connection at once.
				tok, err := s.fetchToken(ctx, a.deadline)
				a.token = &fetchedToken{tok: tok, err: err}
			}
			if err := s.bootstrap(ctx, &a); err != nil {
				// The next attach comes after a backoff, or from another
				// directory: it gets a token of its own.
				a.token = nil
				o = failover.Outcome{Kind: failover.DirectoryFailed, Err: err}
			} else {
				// The node that answered is up: if it only dropped the
				// session, its cool-down ends (a restart).
				o = failover.Outcome{Kind: failover.Fetched, Node: a.dir.Self}
			}
		case failover.Pick:
			// After a drop, the pick from the held directory comes
			// after the drop's short random wait.
			if err := sleep(ctx, act.After); err != nil {
				return s.gaveUp(err, last)
			}
			now := time.Now()
			req := pick.Request{Group: s.opts.group, Exclude: s.machine.ExcludeFunc(now), Age: now.Sub(a.dirAt)}
			if a.dir != nil && a.boot != nil {
				// Connected to the node that answered: staying saves a
				// connection (a held directory's Self is the lost node).
				req.Self = a.dir.Self
			}
			var res pick.Result
			var err error
			if a.dir == nil {
				err = pick.ErrNoNode
			} else if s.opts.tracker != nil {
				s.releasePick(&a)
				res, err = s.opts.tracker.Pick(s.opts.policy, a.dir.Nodes, req, now)
				a.pending = err == nil
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
				// Told, so that a drop long after counts as the first of
				// a new series and waits DropBase, not a bound doubled by
				// every drop the session ever had.
				s.machine.Next(o, time.Now())
				return nil
			}
			// Still pending: a retry of the same node may attach. The
			// next pick, or the end of the flow, releases it.
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

// releasePick withdraws a's pending pick from the Tracker, once: a pick
// retried and failed again is still one pick, and Release takes the
// newest pending pick of the node, which may be another session's.
func (s *Session) releasePick(a *attempt) {
	if a.pending && s.opts.tracker != nil {
		s.opts.tracker.Release(a.node.ID)
	}
	a.pending = false
}

// gaveUp is the error of a connect stopped by its context: what stopped
// it, what was tried, node by node, and the last failure before that.
func (s *Session) gaveUp(ctxErr, last error) error {
	tried := s.machine.Tried(time.Now())
	if last == nil {
		return fmt.Errorf("client: attaching to %s: %w (%s)", s.target.raw, ctxErr, tried)
	}
	return fmt.Errorf("client: attaching to %s: %w (%s); last failure: %w", s.target.raw, ctxErr, tried, last)
}

// bootstrap says hello at the common address, trying its addresses in
// random order, and keeps the first connection that answers. When none
// answers (or DNS fails), every node of the last directory the session
// had can serve as the common address: they are asked after, so that a
// session never strands while a node it knows of is up. Addresses of
// nodes in their cool-down (the node just lost, say, still listed by DNS)
// are asked after the others, and nodes listed down last (helloOrder).
// The hellos' connections are staggered (firstHello): an address whose
// connection does not come holds up the next by the hello stagger, not
// a whole attempt timeout.
func (s *Session) bootstrap(ctx context.Context, a *attempt) error {
	known := a.dir
	if known == nil {
		s.mu.Lock()
		known = s.dir
		s.dirOwned = false
		s.mu.Unlock()
	}
	var errs []error
	addrs, err := s.target.resolveAddrs(ctx, s.opts.rand, s.opts.defaultPort, s.opts.attempt)
	if err != nil {
		errs = append(errs, err)
	}
	order := s.helloOrder(addrs, known, time.Now())
	won, failed := s.firstHello(ctx, order)
	errs = append(errs, failed...)
	if won.c == nil {
		return fmt.Errorf("client: no address of %s answered, nor any node of the last directory: %w", s.target.raw, errors.Join(errs...))
	}
	if addr := order[won.i]; addr.fallback {
		s.opts.logger.Info("common address unreachable; asked a node of the last directory", "addr", addr.addr)
	}
	a.boot, a.dir, a.dirAt = won.c, won.dir, time.Now()
	return nil
}

// helloResult is how the hello to the i-th address of an order ended.
type helloResult struct {
	i   int
	c   *Conn
	dir *wire.Directory
	err error
}

// firstHello says hello to the addresses of order, their connections
// staggered as RFC 8305 staggers connection attempts: the first at once,
// and the next as soon as the hello before it has failed, or when its
// TCP connection is still not made after the hello stagger
// (WithHelloStagger), until one answers. An address that drops
// connection attempts (a host gone, a black hole) then delays the
// bootstrap by the stagger, not by a whole attempt timeout. A hello on
// a connection made is left its attempt timeout before the next address
// is asked: an overloaded node answers slowly, and asking more nodes
// of a service whose nodes are all slow would multiply its load just
// then. (A hello that fails starts the next at once, whatever the
// others under way.) The first answer wins; the hellos still under way
// are cancelled, and a connection one of them opened meanwhile is
// closed.
// It returns the winner (c nil when none answered) and the errors of
// the hellos that failed, in the order's order. Once ctx has ended each
// hello fails at once, saying where.
func (s *Session) firstHello(ctx context.Context, order []helloAddr) (helloResult, []error) {
	won := helloResult{i: -1}
	if len(order) == 0 {
		return won, nil
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Buffered for every hello: none waits to be received once the
	// race is decided.
	results := make(chan helloResult, len(order))
	connected := make([]atomic.Bool, len(order))
	errs := make([]error, len(order))
	next, pending := 0, 0
	start := func() {
		i := next
		next++
		pending++
		go func() {
			c, dir, err := s.hello(hctx, order[i].addr, func() { connected[i].Store(true) })
			results <- helloResult{i: i, c: c, dir: dir, err: err}
		}()
	}
	start()
	stagger := time.NewTimer(s.opts.stagger)
	defer stagger.Stop()
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				won = r
				cancel()
				// The others end at once on the cancel, unless a
				// Dialer of the user's waits on no context: the
				// session does not wait for them. A connection one
				// opened meanwhile is closed.
				go func(n int) {
					for range n {
						if late := <-results; late.err == nil {
							late.c.Close()
						}
					}
				}(pending)
				pending = 0
				continue
			}
			errs[r.i] = r.err
		case <-stagger.C:
			if connected[next-1].Load() {
				// The last one started has its connection: it has
				// its attempt timeout, unless it fails sooner.
				stagger.Reset(s.opts.stagger)
				continue
			}
		}
		if next < len(order) {
			start()
			stagger.Reset(s.opts.stagger)
		}
	}
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return won, failed
}

// helloAddr is an address to say hello to; fallback when it comes from
// the last directory rather than the common address.
type helloAddr struct {
	addr     string
	fallback bool
}

// helloOrder lists where bootstrap says hello, in order: the common
// address's addrs (in their order), then the nodes of dir not among
// addrs, up ones first, then the others not down, each group in random
// order; then the addresses of nodes in their cool-down, whichever list
// they are from; the nodes dir says are down come last. A node cut off
// in a minority sees every peer down and says so before it steps aside:
// when the common address is out of reach too, those peers are all that
// is left to try.
func (s *Session) helloOrder(addrs []string, dir *wire.Directory, now time.Time) []helloAddr {
	cooling := map[string]bool{}
	var up, other, cool, down []helloAddr
	if dir != nil {
		for _, n := range dir.Nodes {
			if n.Addr != "" && s.machine.Excluded(n.ID, now) {
				cooling[n.Addr] = true
			}
		}
	}
	var out []helloAddr
	listed := map[string]bool{}
	for _, a := range addrs {
		listed[a] = true
		if cooling[a] {
			cool = append(cool, helloAddr{addr: a})
		} else {
			out = append(out, helloAddr{addr: a})
		}
	}
	if dir != nil {
		for _, n := range dir.Nodes {
			switch {
			case n.Addr == "" || listed[n.Addr]:
			case cooling[n.Addr]:
				cool = append(cool, helloAddr{addr: n.Addr, fallback: true})
			case n.Status == directory.Down:
				down = append(down, helloAddr{addr: n.Addr, fallback: true})
			case n.Status == directory.Up:
				up = append(up, helloAddr{addr: n.Addr, fallback: true})
			default:
				other = append(other, helloAddr{addr: n.Addr, fallback: true})
			}
		}
	}
	shuffleAny(s.opts.rand, up)
	shuffleAny(s.opts.rand, other)
	shuffleAny(s.opts.rand, down)
	return slices.Concat(out, up, other, cool, down)
}

// shuffleAny shuffles s in place with r.
func shuffleAny[T any](r pick.Rand, s []T) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.IntN(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}

// hello connects to addr and says hello, within one attempt timeout,
// calling connected once the TCP connection is made.
func (s *Session) hello(ctx context.Context, addr string, connected func()) (*Conn, *wire.Directory, error) {
	actx, cancel := context.WithTimeout(ctx, s.opts.attempt)
	defer cancel()
	c, err := dialConnTLS(actx, s.opts.dialer, addr, s.tls, connected)
	if err != nil {
		return nil, nil, err
	}
	dir, err := c.HelloWith(actx, s.helloMessage()) // view.go
	if err == nil {
		err = s.checkService(addr, dir)
	}
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, dir, nil
}

// ErrWrongService matches (errors.Is) the error of a hello answered with
// the directory of a service other than the session's (WithServiceName):
// a node of another service, or a misconfigured one, at an address the
// session asked. The session does not attach there, nor to the nodes
// that directory lists: it asks the next address of the common address,
// or picks another node, as after a failed dial. A session given no
// service name does not check.
var ErrWrongService = errors.New("client: directory of another service")

// expectedService is the service name a session's directories must
// carry: the one given with WithServiceName, without a final dot; ""
// for none. A name taken from the target (a host name, a dns: name, the
// TLS name derived from either) need not be the service's (a node's own
// name, localhost, a DNS alias, a certificate's other names), so only a
// name given as the service's is checked.
func expectedService(name string) string {
	return strings.TrimSuffix(name, ".")
}

// checkService fails, wrapping ErrWrongService, when dir, the answer of
// addr to a hello, is not the directory of the session's service.
// Service names are DNS names: compared without regard to case or a
// final dot.
func (s *Session) checkService(addr string, dir *wire.Directory) error {
	if s.service == "" || strings.EqualFold(strings.TrimSuffix(dir.Service, "."), s.service) {
		return nil
	}
	return fmt.Errorf("client: %s answered with the directory of service %q, not %q: %w", addr, dir.Service, s.service, ErrWrongService)
}

// refusedAlive is the outcome of an attach to a.node that the node,
// alive, refused, and true, when err says so: full or draining (with a
// fresh directory, which a holds from now on), going (shutdown), or at
// its connection limit (too_many_connections, at the attach or in place
// of the hello's answer). Dialled again at once it would say the same,
// and a node at its limit would only be loaded more: the client picks
// another.
func refusedAlive(a *attempt, err error) (failover.Outcome, bool) {
	var se *ServerError
	if !errors.As(err, &se) {
		return failover.Outcome{}, false
	}
	switch se.Code {
	case wire.CodeFull, wire.CodeDraining, wire.CodeShutdown, wire.CodeTooManyConns:
	default:
		return failover.Outcome{}, false
	}
	if se.Directory != nil {
		a.dir, a.dirAt = se.Directory, time.Now()
	}
	return failover.Outcome{Kind: failover.Refused, Node: a.node.ID, Status: directory.Status(se.Code), Err: err}, true
}

// attach attaches to a.node: on the bootstrap connection when that is the
// node that answered it, else on a new connection, saying hello and
// attaching in one round trip (helloAttach). It returns the outcome for
// the machine, and an error only for refusals that no retry mends.
func (s *Session) attach(ctx context.Context, a *attempt) (failover.Outcome, error) {
	node := a.node
	a.move = nil // one from a connection before this one is not this node's
	// The token first, before the attach's connection is opened: a slow
	// token source delays the attach, but neither uses up the attempt
	// timeout nor holds a connection open meanwhile (attachMessage).
	msg, err := s.attachMessage(ctx, a)
	if err != nil {
		return s.failure(ctx, node, err), nil
	}
	var c *Conn
	var m wire.Message
	if a.boot != nil && a.dir != nil && a.dir.Self == node.ID {
		c, a.boot = a.boot, nil
		actx, cancel := context.WithTimeout(ctx, s.opts.attempt)
		m, err = attachOn(actx, c, a, msg)
		cancel()
	} else {
		if a.boot != nil {
			a.boot.Close()
			a.boot = nil
		}
		c, m, err = s.helloAttach(ctx, a, node.Addr, msg)
		if c == nil {
			if errors.Is(err, ErrWrongService) {
				// Another service's node at the address listed: no
				// retry there mends that.
				return failover.Outcome{Kind: failover.Refused, Node: node.ID, Err: err}, nil
			}
			if o, ok := refusedAlive(a, err); ok {
				return o, nil // refused instead of served: at its limit, or going
			}
			return s.failure(ctx, node, err), nil
		}
		if s.opts.tracker != nil {
			// Fresh counts, for the picks that follow from directories
			// held too long to teach the tracker anything.
			s.opts.tracker.Observe(a.dir.Nodes, a.dirAt)
		}
	}
	if err != nil {
		c.Close()
		if o, ok := refusedAlive(a, err); ok {
			return o, nil
		}
		var se *ServerError
		if errors.As(err, &se) {
			if se.Code == wire.CodeAttachTimeout {
				// The node took too long to attach: as if the dial had
				// failed.
				return failover.Outcome{Kind: failover.DialFailed, Node: node.ID, Err: err}, nil
			}
			return failover.Outcome{}, fmt.Errorf("client: attaching to %s: %w", node.ID, err)
		}
		return s.failure(ctx, node, err), nil
	}
	if a.dir != nil && a.dir.Self != "" && a.dir.Self != node.ID {
		// The address listed for node answered as another node of the
		// service (an address reused, say): the session is on the node
		// that answered, and a drop later is that node's.
		s.opts.logger.Info("the address picked answered as another node", "picked", node.ID, "addr", node.Addr, "node", a.dir.Self)
		node = answeredAs(a.dir, node)
		a.reason += "; its address answered as " + node.ID
	}
	s.mu.Lock()
	if s.ctx != nil && s.ctx.Err() != nil { // nil: Dial's attach, before any Close
		err := s.ctx.Err()
		// Close came as the node answered: it closed the connection it
		// found (the old one, during a move) and nothing would close
		// this one, whose reader would then keep Close waiting. (The
		// session's context, not ctx: a flow's deadline passing just
		// now leaves this attach standing.)
		s.mu.Unlock()
		c.Close()
		s.releasePick(a)
		return failover.Outcome{}, fmt.Errorf("client: attaching to %s: %w", node.ID, err)
	}
	s.conn = c
	s.w = newWriter(c, cmp.Or(s.opts.keepAlive, DefaultKeepAlive))
	if !s.opts.ignoreLimits {
		s.w.budget = newBudget(m.Limits, time.Now())
	}
	if m.Limits != nil {
		// Clamped: a longer chunk could make a line no node reads.
		s.w.maxChunk = min(m.Limits.MaxChunk, wire.MaxChunkLimit)
	}
	s.state = StateAttached
	s.node = node
	s.reason = a.reason
	s.sessionID = m.Session
	s.dir, s.dirAt, s.dirOwned = a.dir, a.dirAt, false
	s.earlyMove = a.move
	s.attaches++
	for _, r := range s.rooms {
		r.synced = false // joined on this connection only once its state comes
		r.recutLocked(s.maxChunkLocked())
	}
	s.mu.Unlock()
	return failover.Outcome{Kind: failover.Attached, Node: node.ID}, nil
}

// answeredAs is the entry of the node that answered on picked's address:
// its own in dir, or picked's address under its ID when dir lacks it.
func answeredAs(dir *wire.Directory, picked directory.Node) directory.Node {
	for _, n := range dir.Nodes {
		if n.ID == dir.Self {
			return n
		}
	}
	return directory.Node{ID: dir.Self, Addr: picked.Addr, Status: directory.Up}
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

// helloAttach connects to addr and sends hello and the attach msg
// together, not waiting for the directory in between (the node answers
// them in order), then reads the directory and the attach's answer: one
// round trip where hello then attach take two. It returns a nil Conn when
// the connection or the hello failed, and otherwise the open connection
// and the attach's answer or error, as attachOn does, with the directory
// in a (the hello's, and what the node pushed before its answer).
func (s *Session) helloAttach(ctx context.Context, a *attempt, addr string, msg wire.Message) (*Conn, wire.Message, error) {
	hctx, cancel := context.WithTimeout(ctx, s.opts.attempt)
	defer cancel()
	c, err := DialConnTLS(hctx, s.opts.dialer, addr, s.tls)
	if err != nil {
		return nil, wire.Message{}, err
	}
	// Hello and attach in one round trip, except that a token goes out
	// only once the directory has shown the node to be the service's: a
	// node of another service must not get a token it could replay.
	later := s.service != "" && msg.Token != ""
	err = c.Send(s.helloMessage())
	if err == nil && !later {
		err = c.Send(msg)
	}
	var dir *wire.Directory
	if err == nil {
		dir, err = c.recvDirectory(hctx) // view.go
	}
	if err == nil {
		err = s.checkService(addr, dir)
	}
	if err == nil && later {
		err = c.Send(msg)
	}
	if err != nil {
		c.Close()
		return nil, wire.Message{}, err
	}
	a.dir, a.dirAt = dir, time.Now()
	actx, cancel := context.WithTimeout(ctx, s.opts.attempt)
	defer cancel()
	m, err := recvAttached(actx, c, a)
	return c, m, err
}

// newDevice draws a device name: 128 random bits (26 characters), so
// that no two clients share one.
func newDevice() string { return rand.Text() }

// attachMessage is the attach message, with a fresh token when the
// session has a token source: the one fetched before a's bootstrap, if
// it waits, else one fetched now. The source is never waited for with a
// connection open: a's bootstrap connection is closed first (the attach
// then says hello anew, on a connection of its own), since a source may
// take long (a call to an identity provider), and meanwhile the
// connection would hold a descriptor and a session slot on the node and
// run down its attach timeout. When the source failed the bootstrap
// connection is closed too: the next attach fetches a token first.
func (s *Session) attachMessage(ctx context.Context, a *attempt) (wire.Message, error) {
	msg := wire.Message{Op: wire.OpAttach, User: s.opts.user, Device: *s.opts.device}
	if s.opts.token == nil {
		return msg, nil
	}
	got := a.token
	a.token = nil // one attach's
	if got == nil {
		if a.boot != nil {
			a.boot.Close()
			a.boot = nil
		}
		tok, err := s.fetchToken(ctx, a.deadline)
		got = &fetchedToken{tok: tok, err: err}
	}
	if got.err != nil {
		if a.boot != nil {
			a.boot.Close()
			a.boot = nil
		}
		return wire.Message{}, fmt.Errorf("client: getting a token: %w", got.err)
	}
	msg.Token = got.tok
	return msg, nil
}

// fetchToken asks the session's token source for a token, until ctx
// ends (Close, for a reattach) or the flow's deadline (zero: none)
// passes: a source that never answers does not outlast the flow. The
// source runs on a goroutine of its own, so that one that does not
// honour its context (a blocking call) cannot keep the session, and
// Close, waiting: it is left to finish, and its late answer is dropped.
func (s *Session) fetchToken(ctx context.Context, deadline time.Time) (string, error) {
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	got := make(chan fetchedToken, 1) // a late answer is dropped in it
	go func() {
		tok, err := s.opts.token(ctx)
		got <- fetchedToken{tok: tok, err: err}
	}()
	select {
	case t := <-got:
		return t.tok, t.err
	case <-ctx.Done():
		return "", ctx.Err() // as a source that honours ctx returns; attachMessage says what waited
	}
}

// attachOn sends the attach msg on c, whose hello answered with a's
// directory, and waits for the answer.
func attachOn(ctx context.Context, c *Conn, a *attempt, msg wire.Message) (wire.Message, error) {
	if err := c.Send(msg); err != nil {
		return wire.Message{}, err
	}
	return recvAttached(ctx, c, a)
}

// recvAttached reads c until the answer to an attach: attached, or an
// error (a *ServerError). The node counts the session attached a moment
// before it says so, and a directory it pushes in between comes first:
// each such push is applied to a's directory (the hello's on c), in
// order, as handle applies the pushes after (no event reports them, as
// none reports the hello's), so that the session does not hold a stale
// directory until the next push. A move in between is kept in a, and the
// session's reader acts on it first (readLoop).
func recvAttached(ctx context.Context, c *Conn, a *attempt) (wire.Message, error) {
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
		case wire.OpDirectory:
			d, now := m.Directory(), time.Now()
			if d.Delta {
				d = applyDelta(a.dir, now.Sub(a.dirAt), d, ViewSize)
			}
			a.dir, a.dirAt = d, now
		case wire.OpMove:
			a.move = &m
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
		c, w := s.conn, s.w
		s.conn, s.w = nil, nil
		s.retireLocked()
		s.mu.Unlock()
		if c != nil {
			c.Close()
			w.close()
		}
	}()
	for {
		s.mu.Lock()
		c, w, node := s.conn, s.w, s.node
		s.mu.Unlock()
		err := s.readLoop(c, w)
		var mv *moveAsked
		if errors.As(err, &mv) && s.ctx.Err() == nil {
			// Attached elsewhere; or nowhere to go, and then this
			// connection is read again until the node closes it.
			s.moveFrom(c, w, node, mv)
			if s.ctx.Err() != nil {
				return // closed meanwhile: the deferred cleanup closes what is left
			}
			continue
		}
		c.Close()
		w.close()
		if s.ctx.Err() != nil {
			return
		}
		s.opts.logger.Info("session dropped", "node", node.ID, "err", err)
		s.mu.Lock()
		s.conn, s.w = nil, nil
		if s.ctx.Err() == nil { // unless Close made it final meanwhile
			s.state = StateReconnecting
		}
		for _, r := range s.rooms {
			r.synced = false
		}
		s.mu.Unlock()
		if !s.emit(Event{Kind: Disconnected, Node: node, Err: err}) {
			return
		}
		var deadline time.Time
		if s.opts.reconnect > 0 {
			deadline = time.Now().Add(s.opts.reconnect)
		}
		// The directory the node sent while it lived lists where to go:
		// the session picks from it at once, and asks the common address
		// only when its candidates fail (failover.Outcome.Held).
		s.mu.Lock()
		held, heldAt := s.dir, s.dirAt
		s.dirOwned = false
		s.mu.Unlock()
		act := s.machine.Next(failover.Outcome{Kind: failover.Dropped, Node: node.ID, Err: err, Deadline: deadline, Held: held != nil}, time.Now())
		if err := s.connect(s.ctx, act, held, heldAt, deadline); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			// The machine stops at the reconnect deadline, or for a
			// refusal retrying cannot mend: the session ends.
			final := &gaveUpError{cause: err}
			s.opts.logger.Error("session cannot reattach", "err", err)
			s.mu.Lock()
			if s.ctx.Err() != nil { // Close came first: the session is closed
				s.mu.Unlock()
				return
			}
			s.state, s.err = StateFailed, final
			s.stopRetriesLocked()
			s.mu.Unlock()
			s.emit(Event{Kind: Disconnected, Err: final})
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

// handle processes one message from the node, which arrived on the
// connection w writes to; false means the session is closing.
func (s *Session) handle(w *writer, m wire.Message) bool {
	switch m.Op {
	case wire.OpPong:
		return true
	case wire.OpDirectory:
		d := m.Directory()
		now := time.Now()
		s.mu.Lock()
		switch {
		case !d.Delta:
			s.dir, s.dirOwned = d, false
		case s.dirOwned:
			// Only what changed (delta.go), to the session's own copy.
			applyDeltaInPlace(s.dir, now.Sub(s.dirAt), d, ViewSize)
		default:
			s.dir, s.dirOwned = applyDelta(s.dir, now.Sub(s.dirAt), d, ViewSize), true
		}
		s.dirAt = now
		s.mu.Unlock()
		return s.emit(Event{Kind: DirectoryPushed, Message: m})
	case wire.OpRoom:
		s.mu.Lock()
		var stale bool
		if m.State != nil {
			_, stale = s.answeredLocked(w, m.Room, 'j')
		}
		if r := s.rooms[m.Room]; r != nil && m.State != nil && !stale {
			s.syncRoomLocked(w, m.Room, r, m.State.Seqs[s.opts.user])
			r.endJoinsLocked(joinResult{state: m.State})
			// The node answers in order: a state of the room joined
			// again comes after the answers to the leaves before it.
			s.stopLeaveRetryLocked(m.Room)
		}
		if s.retiring != nil && w == s.w && s.roomsSyncedLocked() {
			s.retireLocked()
		}
		s.mu.Unlock()
	case wire.OpMove:
		s.mu.Lock()
		s.move = &moveAsked{dir: m.Directory(), text: m.Message}
		s.mu.Unlock()
		s.emit(Event{Kind: Received, Message: m})
		return false // readLoop hands the move to supervise
	case wire.OpAck:
		s.mu.Lock()
		if r := s.rooms[m.Room]; r != nil && r.numbered {
			r.ackLocked(m.Seq)
			r.pacedAckLocked()
		}
		s.mu.Unlock()
	case wire.OpText:
		if m.From == s.opts.user && s.ownText(m) {
			return true
		}
	case wire.OpPresence:
		if m.User == s.opts.user && m.Event == "leave" {
			s.mu.Lock()
			if op, _ := s.answeredLocked(w, m.Room, 'l'); op == 'l' {
				s.answerLeaveLocked(w, m.Room, "")
			}
			s.mu.Unlock()
		}
	case wire.OpError:
		if m.Room != "" && m.Seq != 0 && s.staleAnswer(m.Room) {
			break // about text sent before the room was left
		}
		if m.Room != "" && m.Code == wire.CodeRemoved {
			// Unasked: the node took the session out of the room (its
			// place was lost while the node was cut off, and the room
			// was full when the node joined it again). No join or leave
			// is answered by it. The session asks once more, as a first
			// join, and its answer decides, as a join's on a connection
			// the room is not joined on: a state (a place freed) puts it
			// back, limit leaves it out, and so does any join already on
			// its way. The chunks already on their way get bad_request
			// (not in the room): they wait for that state, and go again
			// under their seqs, rather than being dropped (removedOn).
			// One on a connection the session has left is about the
			// session there, not this one.
			s.mu.Lock()
			if r := s.rooms[m.Room]; r != nil && w == s.w {
				r.synced, r.joinedOn, r.removedOn = false, nil, w
				r.stopPumpLocked() // the room's next state starts the next round
				s.sendJoinLocked(m.Room)
			}
			s.mu.Unlock()
			break
		}
		if m.Room != "" && m.Seq == 0 && s.refusalAnswered(w, m) {
			break // a leave's answer, or about a join sent before the room was left
		}
		if m.Room != "" && (m.Code == wire.CodeUnavailable || m.Code == wire.CodeRate) {
			s.mu.Lock()
			if r := s.rooms[m.Room]; r != nil {
				if m.Code == wire.CodeRate && m.Seq != 0 && r.synced {
					r.learnWindowLocked(m.Seq) // the round's first refusal
				}
				r.refusedLocked(m.Seq)
				s.retryRoomLocked(w, m.Room, r, m.Code)
			}
			s.mu.Unlock()
		} else if m.Room != "" {
			// A refusal no retry mends: the waits for it end with it.
			s.mu.Lock()
			if r := s.rooms[m.Room]; r != nil {
				if m.Seq == 0 && r.joinedOn != w && !slices.Contains(s.asked[m.Room], 'j') {
					// A join refused on a connection the session is not
					// in the room on (its first, or the first after a
					// failover or on a move's new connection), and no
					// other on its way: the session is not in the room
					// (docs/protocol.md, "Rooms"), so SendText says so
					// rather than queue text for a room that will never
					// take it, and a failover does not ask again.
					s.dropRoomLocked(m.Room, fmt.Errorf("client: joining room %q: %w", m.Room, asError(m)))
				} else if m.Seq == 0 {
					r.endJoinsLocked(joinResult{err: asError(m)})
					if w == s.w && r.joinedOn == w && !r.synced && !slices.Contains(s.asked[m.Room], 'j') {
						// A re-join refused (limit: a state that
						// does not fit one line) while the room
						// waits for a state, after a refusal of
						// text: the session is still in the room
						// (docs/protocol.md, "Join"), and its text
						// waits for a state that no join asks for
						// now. The join goes again after a pause.
						// Its text is not sent without a state: the
						// node may have taken the session out of
						// the room as it refused (a place lost, and
						// the room full), and then refuses the text
						// for good; a state shows it in the room,
						// and where its numbering stands.
						s.retryRoomLocked(w, m.Room, r, m.Code)
					}
				} else if r.removedOn == w && m.Code == wire.CodeBadRequest {
					// Not in the room since removed: the join
					// sent then decides. Its state puts the
					// session back and the chunk goes again
					// under its seq; its refusal leaves the
					// room, and the chunk's wait ends with it.
					r.refusedLocked(m.Seq)
				} else {
					r.refuseLocked(m.Seq, asError(m))
				}
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
func (s *Session) retryRoomLocked(w *writer, name string, r *room, code string) {
	r.synced = false
	r.stopPumpLocked() // the room's next state starts the next round
	if r.retry != nil {
		return
	}
	var retry *time.Timer
	retry = time.AfterFunc(retryDelay(code), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.retry != retry {
			return // stopped by a rejoin, which planned its own
		}
		r.retry = nil
		if s.ctx.Err() == nil && s.w == w && s.rooms[name] == r {
			s.sendJoinLocked(name)
		}
	})
	r.retry = retry
}

// retryDelay is the pause before asking again after a refusal with code:
// storage electing a leader comes back within moments; a rate refills,
// and a room's state that did not fit (limit) shrinks only as its members
// come and go, so those wait longer.
func retryDelay(code string) time.Duration {
	if code == wire.CodeUnavailable {
		return unavailableRetry
	}
	return rateRetry
}

// answerLeaveLocked takes the answer on w to a leave of name: a
// confirmation (code ""), or a refusal for the rate (code rate or
// unavailable), after which the node keeps the session in the room
// (docs/protocol.md, "Leave"): unless the room is joined again
// meanwhile, the leave goes again after a pause.
func (s *Session) answerLeaveLocked(w *writer, name, code string) {
	if code == "" {
		s.stopLeaveRetryLocked(name) // out of the room: a resend is moot
		return
	}
	if s.leaveRetry[name] != nil || s.rooms[name] != nil {
		return
	}
	var retry *time.Timer
	retry = time.AfterFunc(retryDelay(code), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.leaveRetry[name] != retry {
			return // stopped meanwhile
		}
		delete(s.leaveRetry, name)
		if s.ctx.Err() == nil && s.w == w && s.rooms[name] == nil {
			s.askLocked(name, 'l')
			w.send(wire.Message{Op: wire.OpLeave, Room: name})
		}
	})
	s.leaveRetry[name] = retry
}

// stopLeaveRetryLocked stops the resend of name's leave, if one waits:
// the leave was taken, the room was joined again, or the connection ended.
func (s *Session) stopLeaveRetryLocked(name string) {
	if t := s.leaveRetry[name]; t != nil {
		t.Stop()
		delete(s.leaveRetry, name)
	}
}

// refusalAnswered takes a refusal m of a join or leave (no seq), and
// reports whether it is handled: a leave's (answerLeaveLocked), or a
// join's sent before the room was left. A join's refusal about the room
// as joined now is left to handle.
func (s *Session) refusalAnswered(w *writer, m wire.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, stale := s.answeredLocked(w, m.Room, 0)
	switch {
	case op == 'l':
		code := ""
		if m.Code == wire.CodeRate || m.Code == wire.CodeUnavailable {
			code = m.Code // the node keeps the session in the room
		}
		s.answerLeaveLocked(w, m.Room, code)
		return true
	case op == 'u':
		return true // a leave of a room not held: nothing to follow
	case op == 'j':
		return stale
	}
	return false
}

// staleAnswer reports whether an answer about a chunk of room (an ack or
// a refusal with a seq) is about text sent before the room was left: the
// room, joined again since, has had no state, so none of its own text
// went out.
func (s *Session) staleAnswer(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[room]
	return r != nil && !r.numbered
}

// syncRoomLocked applies a room state: what the state holds of our text is
// stored; the rest is sent again, in order (a window's worth of it, when
// the room is paced: pace.go). A state that comes on the connection the
// room is synced on only moves the numbering on.
func (s *Session) syncRoomLocked(w *writer, name string, r *room, stored uint64) {
	// No honest node says more; clamped, the numbering cannot wrap.
	stored = min(stored, wire.MaxSeq)
	if r.numbered && r.synced && w == s.w {
		// A state on the connection the room is synced on, unasked (the
		// room moved a chunk of ours that another device's took the seq
		// of, or resynchronised us) or asked again: the node answers
		// every chunk sent on this connection with its ack or refusal,
		// so none is taken for stored by the state's seqs (one another
		// device stored may stand for a chunk of ours still on its way,
		// which its store could still fail), and none goes out again.
		// The numbering goes on above the state's.
		r.continueAboveLocked(stored)
		return
	}
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
		// Chunks never sent (typed while the session was away) cannot be
		// stored, whatever the state says: if it holds their seqs, the
		// user typed them from another session meanwhile, and ours go on
		// above it rather than being taken for acknowledged and lost.
		if r.sent < len(r.unacked) && r.unacked[r.sent].Seq <= stored {
			next := stored + 1
			for i := r.sent; i < len(r.unacked); i++ {
				r.unacked[i].Seq = next
				next++
			}
			r.nextSeq = next
		}
		if !r.byDevice {
			// Without a device the room judges a chunk by its seq alone:
			// one at or below the state's is a duplicate, acknowledged
			// and dropped, so the state stands for its ack. (It may be
			// another device's chunk under the same seq, and ours lost
			// with the node that had it.)
			r.ackLocked(stored)
			r.pacedAckLocked()
		}
		// With a device every chunk that went out goes again under its
		// seq, whatever the state's: the room takes it for a resend if
		// this device's chunk with that seq is stored, and otherwise
		// (the node that had it died before storing it, or refused it,
		// and another device typed past its seq meanwhile) stores it
		// under the user's next seq. The acks say which. (After the
		// user's last session left, the room keeps only the user's 4
		// devices that stored last, for the last users who left to
		// type: a device it no longer keeps is judged by a floor, and a
		// chunk that died with its node can then be lost as without a
		// device, should another device have typed past it.)
		r.nextSeq = max(r.nextSeq, stored+1)
	}
	r.synced, r.viaOld, r.joinedOn, r.removedOn = true, false, w, nil
	r.pushed = 0 // all of it goes again
	now := time.Now()
	r.startRoundLocked(now)
	s.pumpLocked(w, name, r, now)
}

// ownText handles text delivered from the session's own user, and
// reports whether it is an echo of this session's own, to be dropped: the
// session a move is leaving is still in the room, and the node delivers
// what it stores to the user's other sessions, this one included. The
// protocol never delivers a session its own text otherwise, and only a
// chunk that went out can be stored, so a delivery at or below the
// highest seq this session sent is taken for an echo. Any other is a
// chunk another session of the user typed (another device), which the
// room delivers as anyone's, even one under a seq this session numbered
// a chunk with that still waits in it (for the node's limits, or the
// room's state): the numbering continues above it (continueAboveLocked),
// or that chunk, or the next, would go out under its seq, and the room
// would take it for a duplicate, acknowledge it and drop its text.
func (s *Session) ownText(m wire.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[m.Room]
	if r == nil || !r.numbered {
		// Before the room's first state no delivery comes (the node
		// sends the state first), and the state numbers the session.
		return false
	}
	if m.Seq <= r.sentSeq || m.Seq > wire.MaxSeq {
		return true // an echo, or a seq no chunk carries: not shown
	}
	r.continueAboveLocked(m.Seq)
	return false
}

// continueAboveLocked makes the room's numbering continue above seq, the
// last of the user's chunks stored (another session of the same user
// typed it, or a state shows it).
//
// The chunks that went out keep their seqs, acknowledged or not: the
// room may have stored them (or may yet), and sending them again under
// new seqs would store their text twice. The rest, which wait in the
// session (typed while the room was not synced, or held for the node's
// limits: pace.go), the other session cannot have seen: it numbered over
// their seqs. When the first of them is at or below seq, they are
// renumbered above seq, in order, and go out as they would have; their
// SendTextWait returns the new seq.
//
// A chunk the node refused (rate, unavailable) went out too. With a
// device it keeps its seq: the room knows this device never stored a
// chunk under it and stores it under the user's next seq, and a refusal
// after a failed store may come for a chunk stored all the same, which
// the room then takes for a resend. Without a device the room judges by
// seq alone and would take it for a duplicate of the other session's
// chunk: it is renumbered with the rest. (Two sessions of a user typing
// at the same moment can still pick one seq before either sees the
// other's chunk: the room tells them apart by their devices, WithDevice,
// stores the second under the next seq and sends its session the room's
// state.)
func (r *room) continueAboveLocked(seq uint64) {
	from := r.out
	if r.byDevice {
		from = r.sent // at least r.out: what went out once
	}
	if from == len(r.unacked) || r.unacked[from].Seq > seq {
		r.nextSeq = max(r.nextSeq, seq+1)
		return
	}
	next := seq + 1
	for i := from; i < len(r.unacked); i++ {
		r.unacked[i].Seq = next
		next++
	}
	r.nextSeq = next
}

// refusedLocked notes that the node refused the chunk seq for a while
// (rate, unavailable): it, and every later chunk (the node holds the
// room: see docs/protocol.md, "Text"), wait for the room's next state.
// A refused join (seq 0) changes nothing of the text.
func (r *room) refusedLocked(seq uint64) {
	if seq == 0 {
		return
	}
	i := slices.IndexFunc(r.unacked, func(m wire.Message) bool { return m.Seq >= seq })
	if i >= 0 {
		r.out = min(r.out, i)
		r.pushed = min(r.pushed, i)
	}
}

// ackLocked forgets the text up to seq, which the node has stored, and
// ends the waits for it. Only chunks that went out can be stored: one
// never sent keeps waiting whatever its seq.
func (r *room) ackLocked(seq uint64) {
	i := 0
	for i < r.sent && r.unacked[i].Seq <= seq {
		if w := r.waits[i]; w != nil && (i+1 == len(r.waits) || r.waits[i+1] != w) {
			w <- ackResult{seq: r.unacked[i].Seq} // the last chunk of its text
		}
		i++
	}
	for _, m := range r.unacked[:i] {
		r.acked = r.acked.add(m.T)
	}
	r.unacked, r.waits = r.unacked[i:], r.waits[i:]
	r.out = max(r.out-i, 0)
	r.pushed = max(r.pushed-i, 0)
	r.sent = max(r.sent-i, 0)
	r.flushes = slices.DeleteFunc(r.flushes, func(f flushWait) bool {
		if r.acked.reached(f.upTo) {
			f.done <- nil
			return true
		}
		return false
	})
}

// refuseLocked ends with err, a refusal that resending does not mend,
// the wait for the text the chunk seq is part of and the Flush calls
// waiting for it; when none waits, the next Flush returns it. The chunk
// is never stored, so it leaves the queue at once, and its place in the
// text queued (textPos) with it: it is not sent again (after a failover
// the node would only refuse it again, and a Flush report the same
// refusal twice), and a Flush called later does not wait for it (it was
// the last chunk, say, which no later ack would ever take off). Its seq
// stays used: the chunks after it keep theirs, and the room's members
// see its text as lost.
func (r *room) refuseLocked(seq uint64, err error) {
	i := slices.IndexFunc(r.unacked, func(m wire.Message) bool { return m.Seq == seq })
	if i < 0 {
		return
	}
	r.endWaitLocked(i, ackResult{seq: seq, err: err})
	start := r.acked // where the chunk begins in the text ever queued
	for _, m := range r.unacked[:i] {
		start = start.add(m.T)
	}
	end := start.add(r.unacked[i].T)
	ferr := fmt.Errorf("client: room %s: chunk %d refused: %w", r.unacked[i].Room, seq, err)
	told := false
	r.flushes = slices.DeleteFunc(r.flushes, func(f flushWait) bool {
		if f.upTo.reached(end) { // called after the chunk was queued
			f.done <- ferr
			told = true
			return true
		}
		return false
	})
	if !told && r.refusal == nil {
		r.refusal = ferr
	}
	// Out of the queue: the Flush calls still waiting were called before
	// it was queued (upTo at or before start), and the positions of what
	// follows it, which later Flush calls count, move down with it.
	r.queued = r.queued.remove(r.unacked[i].T)
	r.unacked = slices.Delete(r.unacked, i, i+1)
	r.waits = slices.Delete(r.waits, i, i+1)
	if i < r.out {
		r.out--
	}
	if i < r.sent {
		r.sent--
	}
	if i < r.pushed {
		r.pushed--
	}
}

// endWaitLocked ends with res the wait of the text the unacked chunk i is
// part of, if any, for every chunk of that text.
func (r *room) endWaitLocked(i int, res ackResult) {
	w := r.waits[i]
	if w == nil {
		return
	}
	w <- res
	for j := i; j >= 0 && r.waits[j] == w; j-- {
		r.waits[j] = nil
	}
	for j := i + 1; j < len(r.waits) && r.waits[j] == w; j++ {
		r.waits[j] = nil
	}
}

// endJoinsLocked ends every JoinWait of the room with res.
func (r *room) endJoinsLocked(res joinResult) {
	for _, j := range r.joins {
		j <- res
	}
	r.joins = nil
}

// endWaitsLocked ends every wait of the room with err (the room was left).
func (r *room) endWaitsLocked(err error) {
	r.endJoinsLocked(joinResult{err: err})
	r.endFlushesLocked(err)
	for i := len(r.waits) - 1; i >= 0; i-- { // each text's last chunk first: its seq
		r.endWaitLocked(i, ackResult{seq: r.unacked[i].Seq, err: err})
	}
}

// endFlushesLocked ends every Flush of the room with err.
func (r *room) endFlushesLocked(err error) {
	for _, f := range r.flushes {
		f.done <- err
	}
	r.flushes = nil
}

// flushWait is a Flush waiting for the room's acked to reach upTo.
type flushWait struct {
	upTo textPos
	done chan error
}

// textPos is a position in the text ever queued in a room: the bytes
// before it, and the empty chunks before it, which hold no bytes but are
// waited for all the same (a Flush after an empty chunk waits for its ack
// or refusal). Bytes and empty chunks, not chunks or seqs, since chunks
// are renumbered, and cut again for a node with a smaller max_chunk; an
// empty chunk is never cut, and a longer one is cut into pieces that are
// not empty, so neither count changes.
type textPos struct {
	bytes, empty uint64
}

// add is the position after a chunk of text t that begins at p.
func (p textPos) add(t string) textPos {
	p.bytes += uint64(len(t))
	if t == "" {
		p.empty++
	}
	return p
}

// remove is p with a chunk of text t before it taken out.
func (p textPos) remove(t string) textPos {
	p.bytes -= uint64(len(t))
	if t == "" {
		p.empty--
	}
	return p
}

// reached reports whether p is at or past q. Every chunk adds bytes or
// an empty chunk, so a position before q falls short in one of them.
func (p textPos) reached(q textPos) bool {
	return p.bytes >= q.bytes && p.empty >= q.empty
}

// rejoinLocked joins the rooms again after a reattach; their states
// trigger the resends.
func (s *Session) rejoinLocked() {
	for name := range s.leaveRetry {
		s.stopLeaveRetryLocked(name) // the new connection never joined it
	}
	clear(s.asked) // nor heard a join
	for name, r := range s.rooms {
		// A retry planned on the connection before is moot: this join
		// replaces it, and its refusal plans one on this connection.
		if r.retry != nil {
			r.retry.Stop()
			r.retry = nil
		}
		r.stopPumpLocked() // its state starts the next round
		s.sendJoinLocked(name)
	}
}

// maxAsked bounds the joins and leaves of a room a session follows
// unanswered; past it (a node that answers none) it forgets them.
const maxAsked = 256

// askLocked notes a join ('j') or leave ('l') of name sent on s.w.
func (s *Session) askLocked(name string, op byte) {
	q := s.asked[name]
	if len(q) >= maxAsked {
		q = q[:0]
	}
	s.asked[name] = append(q, op)
}

// sendJoinLocked sends a join of name on the current connection.
func (s *Session) sendJoinLocked(name string) {
	s.askLocked(name, 'j')
	s.w.send(wire.Message{Op: wire.OpJoin, Room: name})
}

// answeredLocked takes, on w, an answer about room name that may be a
// join's or a leave's: want is the kind the answer can be ('j' for a
// state, 'l' for our presence leave, 0 for a refusal, which answers
// either). It returns the kind answered (0: not an answer to anything
// followed) and, for a join, whether a leave of the room was sent after
// it: then the answer is about a membership the session has left, not
// the room joined since. A state the node sends unasked while a join
// waits is taken for its answer; the join's own state then counts as
// unasked, which changes nothing.
func (s *Session) answeredLocked(w *writer, name string, want byte) (op byte, stale bool) {
	q := s.asked[name]
	if w != s.w || len(q) == 0 || want != 0 && q[0] != want && !(want == 'l' && q[0] == 'u') {
		return 0, false
	}
	op, q = q[0], q[1:]
	stale = op == 'j' && slices.Contains(q, 'l')
	if len(q) == 0 {
		delete(s.asked, name)
	} else {
		s.asked[name] = q
	}
	return op, stale
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
// closes after Close. Read it: while its buffer (WithEventBuffer) is full
// the session stops reading from its node, and after a drop waits for
// room for the Disconnected event before it reattaches.
func (s *Session) Events() <-chan Event { return s.events }

// Holds reports whether the session holds the room name: joined (Join,
// JoinWait) and not left since, nor dropped by a refusal no retry mends
// (a join refused for good; after the node's removed, the join again
// refused), after which SendText answers ErrLeft.
func (s *Session) Holds(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.rooms[name]
	return ok
}

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

// Attaches counts how many times the session attached (1 + failovers +
// moves).
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

// Directory is the latest directory the session received, with the
// changes pushed since applied (a push of changes, Message.Delta, only
// says what changed). The caller may keep it: the session changes a
// copy of its own afterwards.
func (s *Session) Directory() *wire.Directory {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirOwned = false
	return s.dir
}

// Join joins a room; the node answers with the room's state (a Received
// event with op "room"), then delivers its text and presence. The session
// rejoins its rooms by itself after a failover.
//
// Join does not wait for the node: it queues the join and returns. It
// fails only for a name the service refuses (ErrBadRoomName) and when the
// session has ended (an error matching ErrClosed, and ErrGaveUp when it
// gave up).
func (s *Session) Join(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joinLocked(name)
}

// joinLocked records the room and queues the join.
func (s *Session) joinLocked(name string) error {
	if err := s.endedLocked(); err != nil {
		return err
	}
	if why := wire.RoomNameProblem(name); why != "" {
		return fmt.Errorf("client: joining room %q: %s: %w", wire.Clip(name, wire.MaxRoomName), why, ErrBadRoomName)
	}
	if _, ok := s.rooms[name]; !ok {
		s.rooms[name] = &room{nextSeq: 1, byDevice: *s.opts.device != ""}
	}
	if s.w == nil {
		return nil // joined when reattached
	}
	s.sendJoinLocked(name)
	return nil
}

// endedLocked is the error of a session that ended, nil while it lives.
func (s *Session) endedLocked() error {
	if s.err != nil {
		return s.err
	}
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}

// Leave leaves a room and forgets its unacknowledged text. A leave the
// node refuses for the rate of joins and leaves (it keeps the session in
// the room) goes again after a pause, until the node confirms it (the
// user's presence leave) or the connection ends. A name the service
// refuses (ErrBadRoomName) names no room the session could hold: Leave
// returns the error and sends nothing (a name longer than a line would
// end the connection).
func (s *Session) Leave(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.endedLocked(); err != nil {
		return err
	}
	if why := wire.RoomNameProblem(name); why != "" {
		return fmt.Errorf("client: leaving room %q: %s: %w", wire.Clip(name, wire.MaxRoomName), why, ErrBadRoomName)
	}
	_, joined := s.rooms[name]
	if joined {
		s.dropRoomLocked(name, fmt.Errorf("client: left room %q: %w", name, ErrLeft))
	}
	if s.w == nil {
		return nil
	}
	if joined {
		s.askLocked(name, 'l')
	} else {
		// A leave of a room the session does not hold: the node answers
		// it (bad_request, or a presence leave if it held the session
		// there after all), and the answer must not be taken for that
		// of a join sent after it.
		s.askLocked(name, 'u')
	}
	s.w.send(wire.Message{Op: wire.OpLeave, Room: name})
	return nil
}

// dropRoomLocked forgets the room name, held: its retry and pacing stop,
// and its waits (joins, acks, flushes) end with err.
func (s *Session) dropRoomLocked(name string, err error) {
	r := s.rooms[name]
	if r.retry != nil {
		r.retry.Stop()
	}
	r.stopPumpLocked()
	r.endWaitsLocked(err)
	delete(s.rooms, name)
}

// SendText sends a chunk of text (as typed: characters, backspaces U+0008,
// line ends) to a joined room and returns its seq. The chunk is kept until
// the node acknowledges it and sent again after a failover, so nothing
// acknowledged or typed is lost; the node drops resent duplicates. Text
// longer than the node's chunk limit (its max_chunk, 4096 bytes from
// nodes that do not say) goes as several chunks, cut between characters;
// SendText returns the last one's seq, and SendTextWait waits for it (the
// node acknowledges a user's chunks in order). Text that is not valid
// UTF-8 (Latin-1 from a bridge, say) goes with each run of bytes that are
// not UTF-8 replaced by one U+FFFD (the node takes only valid UTF-8).
//
// SendText does not wait for the node: it queues the chunk and returns.
// Before the room's first state arrives the seq is provisional: the
// state says where the user's numbering continues, and the chunks typed
// before it are renumbered from there (SendTextWait returns the final
// seq). So are the seqs of chunks waiting to go out (while the room is
// joined again after a refusal, or held for the node's limits) when
// another session of the same user is seen typing at or above them: they
// are renumbered above its chunk.
func (s *Session) SendText(name, text string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendTextLocked(name, text, nil)
}

// sendTextLocked queues a chunk; wait, when not nil, receives its ack.
func (s *Session) sendTextLocked(name, text string, wait chan ackResult) (uint64, error) {
	if err := s.endedLocked(); err != nil {
		return 0, err
	}
	r, ok := s.rooms[name]
	if !ok {
		return 0, fmt.Errorf("client: room %q not joined (or left): %w", name, ErrLeft)
	}
	// Each run of bytes that is not UTF-8 becomes one U+FFFD (three
	// bytes) before the text is cut, so that it is cut and counted as the
	// node will read it: cut by its bytes as given, a chunk could pass the
	// node's max_chunk once encoded, be refused for good, and be lost.
	text = strings.ToValidUTF8(text, "\uFFFD")
	pieces := cutText(text, s.maxChunkLocked())
	for _, t := range pieces {
		r.unacked = append(r.unacked, wire.Message{Op: wire.OpText, Room: name, Seq: r.nextSeq, T: t})
		r.queued = r.queued.add(t)
		r.nextSeq++
		r.waits = append(r.waits, wait) // the last one's ack ends it, or any one's refusal
	}
	// Out at once on the connection the room is joined on (while moving,
	// the old one: the chunk is resent on the new connection once the
	// room's state is in there, and stored once either way), unless
	// text waits ahead of it (pace.go).
	if w := s.carrierLocked(r); w != nil && r.pushed == len(r.unacked)-len(pieces) {
		s.pumpLocked(w, name, r, time.Now())
	}
	return r.nextSeq - 1, nil
}

// recutLocked cuts again, to max bytes, the chunks that never went out:
// text typed while no node had said its limit (cut to defaultMaxChunk),
// or for a node that took longer chunks. A node refuses a longer chunk
// for good (limit), and the ack of the chunk after it would then take it
// for stored. No node can have stored a chunk that never went out, so
// these are numbered again from the first of them; the chunks that went
// out keep their seqs. A chunk's wait goes with each of its pieces.
func (r *room) recutLocked(max int) {
	if !slices.ContainsFunc(r.unacked[r.sent:], func(m wire.Message) bool { return len(m.T) > max }) {
		return
	}
	unacked, waits := slices.Clone(r.unacked[:r.sent]), slices.Clone(r.waits[:r.sent])
	seq := r.unacked[r.sent].Seq
	for i, m := range r.unacked[r.sent:] {
		pieces := cutText(m.T, max)
		for _, t := range pieces {
			p := m
			p.T, p.Seq = t, seq
			seq++
			unacked = append(unacked, p)
			waits = append(waits, r.waits[r.sent+i])
		}
	}
	r.unacked, r.waits, r.nextSeq = unacked, waits, seq
}

// defaultMaxChunk is the longest chunk, in bytes, sent to a node that does
// not say its limits: the nodes' default MaxChunk.
const defaultMaxChunk = 4096

// maxChunkLocked is the longest chunk the session's node takes, in bytes.
func (s *Session) maxChunkLocked() int {
	if s.w != nil && s.w.maxChunk > 0 {
		return s.w.maxChunk
	}
	return defaultMaxChunk
}

// cutText cuts text into pieces of at most max bytes, each ending at a
// character's end (a piece is longer only when one character is): one
// piece for text that fits, the empty text included.
func cutText(text string, max int) []string {
	if len(text) <= max {
		return []string{text}
	}
	var pieces []string
	for len(text) > max {
		n := max
		for n > 0 && !utf8.RuneStart(text[n]) {
			n--
		}
		if n == 0 {
			_, n = utf8.DecodeRuneInString(text)
		}
		pieces = append(pieces, text[:n])
		text = text[n:]
	}
	if text != "" {
		pieces = append(pieces, text)
	}
	return pieces
}

// ErrLeft ends the waits of JoinWait and SendTextWait for a room that
// Leave left meanwhile; SendText and Flush return it for a room not
// joined.
var ErrLeft = errors.New("client: room left")

// ErrBadRoomName is returned by Join, JoinWait and Leave for a name the service
// refuses: room names are 1 to 64 bytes of ASCII letters, digits, '-',
// '_' and '.'.
var ErrBadRoomName = errors.New("client: bad room name")

// SendTextWait sends a chunk like SendText and waits until the node has
// stored it durably (its ack), and returns its seq. Across a failover it
// keeps waiting: the chunk is resent to the next node, which acknowledges
// it. It fails with the node's refusal when resending cannot mend it (a
// *ServerError: a chunk too long, say; of any chunk of a text sent as
// several), with ctx's error when ctx ends
// first (the chunk stays queued and may still be stored), with an error
// matching ErrLeft when the room is left, and with the session's error
// (ErrClosed, ErrGaveUp) when it ends. It may be called from any
// goroutine, but not from the one reading Events: the ack is handled in
// order with the events, so waiting there while Events is full would
// wait forever.
func (s *Session) SendTextWait(ctx context.Context, name, text string) (uint64, error) {
	wait := make(chan ackResult, 1)
	s.mu.Lock()
	seq, err := s.sendTextLocked(name, text, wait)
	s.mu.Unlock()
	if err != nil {
		return seq, err
	}
	select {
	case res := <-wait:
		return res.seq, res.err
	case <-ctx.Done():
		return seq, fmt.Errorf("client: waiting for the ack of %s seq %d: %w", name, seq, ctx.Err())
	case <-s.done:
		return seq, s.endErr()
	}
}

// Flush waits until the node has acknowledged every chunk sent to the
// room so far, across failovers as SendTextWait does: for a bridge to
// another protocol, say, that must not close before what it relayed is
// stored. Text sent after Flush was called is not waited for, so a
// bridge that keeps relaying can still checkpoint. It returns at once
// when nothing waits for an ack. It fails with
// ctx's error when ctx ends first, with an error matching ErrLeft when
// the room is left or was never joined, and with the session's error
// when it ends. A chunk the node refuses for good (an error wrapping a
// *ServerError: too long, say) is never stored: the Flush calls waiting
// for it fail with that refusal, and when none waits, the next Flush
// does; once a Flush has reported a refusal, no later one does. Like
// SendTextWait, do not call it from the goroutine that reads Events.
func (s *Session) Flush(ctx context.Context, name string) error {
	wait := make(chan error, 1)
	s.mu.Lock()
	if err := s.endedLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	r, ok := s.rooms[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("client: room %q not joined (or left, its text forgotten): %w", name, ErrLeft)
	}
	if err := r.refusal; err != nil {
		r.refusal = nil // reported
		s.mu.Unlock()
		return err
	}
	if len(r.unacked) == 0 {
		s.mu.Unlock()
		return nil
	}
	r.flushes = append(r.flushes, flushWait{upTo: r.queued, done: wait})
	s.mu.Unlock()
	select {
	case err := <-wait:
		return err
	case <-ctx.Done():
		s.mu.Lock()
		if r := s.rooms[name]; r != nil {
			r.flushes = slices.DeleteFunc(r.flushes, func(f flushWait) bool { return f.done == wait })
		}
		s.mu.Unlock()
		return fmt.Errorf("client: waiting for the acks of room %s: %w", name, ctx.Err())
	case <-s.done:
		return s.endErr()
	}
}

// JoinWait joins a room like Join and waits for the node's answer: the
// room's state, after which the room's deliveries follow on Events (the
// state itself comes on Events too). It keeps waiting across a failover
// and across the refusals the session retries by itself (unavailable,
// rate); it fails with the node's refusal otherwise (a *ServerError, such
// as ErrUnauthorized or a limit), at once for a name the service refuses
// (ErrBadRoomName), with ctx's error when ctx ends first
// (the session stays joined, or joins when it can), with an error
// matching ErrLeft when the room is left, and with the session's error
// when it ends. Like SendTextWait, do not call it from the goroutine that
// reads Events.
func (s *Session) JoinWait(ctx context.Context, name string) (*wire.RoomState, error) {
	wait := make(chan joinResult, 1)
	s.mu.Lock()
	if err := s.joinLocked(name); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	r := s.rooms[name]
	r.joins = append(r.joins, wait)
	s.mu.Unlock()
	select {
	case res := <-wait:
		return res.state, res.err
	case <-ctx.Done():
		s.mu.Lock()
		if r := s.rooms[name]; r != nil {
			r.joins = slices.DeleteFunc(r.joins, func(j chan joinResult) bool { return j == wait })
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("client: waiting for the state of room %s: %w", name, ctx.Err())
	case <-s.done:
		return nil, s.endErr()
	}
}

// endErr is the error of a session whose goroutine ended.
func (s *Session) endErr() error {
	if err := s.Err(); err != nil {
		return err
	}
	return ErrClosed
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
	c := s.conn
	if s.state != StateFailed {
		s.state = StateClosed
	}
	s.stopRetriesLocked()
	s.mu.Unlock()
	// Closed outside the lock: closing a TLS connection writes its
	// close_notify, which may wait on a peer that does not read. An
	// attach that installs a connection after this sees the context
	// ended and closes that one itself.
	if c != nil {
		c.Close()
	}
	<-s.done
	return nil
}

// stopRetriesLocked stops the rooms' pending re-joins and leaves.
func (s *Session) stopRetriesLocked() {
	for name := range s.leaveRetry {
		s.stopLeaveRetryLocked(name)
	}
	for _, r := range s.rooms {
		if r.retry != nil {
			r.retry.Stop()
			r.retry = nil
		}
		r.stopPumpLocked()
	}
}

// State says where the session stands: attached, reconnecting, closed or
// failed. It never blocks.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Err is nil while the session lives (attached or reconnecting). After
// Close it is ErrClosed; after the session gave up reattaching it is why,
// matching ErrGaveUp and ErrClosed, with what was tried, node by node.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.state == StateClosed {
		return ErrClosed
	}
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
