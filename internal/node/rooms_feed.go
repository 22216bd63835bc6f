package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/room"
	"github.com/switchboard/switchboard/wire"
)

// The feed is the I/O shell around a room.Room: it owns one, feeds it the
// records of the room's consumer and the time, delivers what the room
// hands its Sink to the local sessions, stores the records Reconcile
// asks for, and reads and writes the room's snapshots. Every rule of the
// room (presence, steward, cleanup, state lines, the snapshot format) is
// in package room.

// incoming is a record delivered by the room's consumer.
type incoming struct {
	seq    uint64
	rec    record
	at     time.Time // when this node's consumer received it
	stored time.Time // when the stream stored it
	gen    uint64    // the generation of the consumer that delivered it (feed.gen)
}

// consuming is a consumer started for a feed off its goroutine: the
// consumer and its context, or why it could not be started.
type consuming struct {
	cons  jetstream.Consumer
	cc    jetstream.ConsumeContext
	err   error
	after uint64        // the stream sequence it starts after
	took  time.Duration // from the restart's start
}

// barrier runs fn once the feed has applied the record at seq.
type barrier struct {
	seq uint64
	fn  func()
}

// lastStored is what a stall check learnt: the stream sequence of the
// room's newest record (0 when the stream holds none).
type lastStored struct {
	seq uint64
	st  jetstream.Stream // the stream asked, kept for the next check
	err error
}

// snapResult reports a snapshot write.
type snapResult struct {
	rev, seq uint64
	since    int       // records the snapshot covered past the previous one
	at       time.Time // when its write began
	err      error
}

// feed is one room on one node. Its run goroutine owns everything below
// "owned by run"; sessions talk to it through do, and its consumer hands
// it records through in.
type feed struct {
	e      *roomEngine
	room   string // the room's name
	stream string // the stream holding it
	subj   string // its subject
	key    string // its snapshot key
	ctx    context.Context
	cancel context.CancelFunc
	cmds   chan func() // unbuffered: when do returns, run has taken fn
	in     chan incoming
	live   chan liveRec  // live text (rooms_live.go)
	texts  chan *textReq // chunks for the writer (rooms_writer.go)

	submitMu     sync.RWMutex  // submitters hold it shared; the writer's exit takes it to set submitClosed
	submitClosed bool          // the writer has stopped taking requests
	done         chan struct{} // closed when run returns
	snaps        chan snapResult
	checks       chan lastStored // stall checks' answers; buffered for the one under way
	restarted    chan consuming  // a consumer restarted off run; unbuffered (restartConsumer)
	missed       chan struct{}   // a consumer missed its heartbeats (missedGen says which); buffered for one
	// missedGen is the newest generation of a consumer that reported
	// missed heartbeats: newer consumers have higher generations, so a
	// report from a replaced one never hides one from its successor.
	missedGen atomic.Uint64
	// storedThrough is the highest stream seq the feed's writer has
	// stored text under (noteStored): a re-join's state waits until the
	// feed has applied it, so that it holds every chunk acked before.
	storedThrough atomic.Uint64
	recheck       chan struct{} // a check asked for after a failed restart; buffered for one

	keys map[string]bool // guarded by e.mu: the local sessions holding the feed
	// lingerTill is guarded by e.mu: an unheld feed runs until then at
	// least (release).
	lingerTill time.Time
	released   chan struct{} // a session released it; buffered for one

	// Owned by run.
	r        *room.Room
	received time.Time              // when the consumer received the record being applied
	sessions map[string]*session    // the local sessions registered with r, by key
	regOf    map[string]uint64      // the number of each key's registration in sessions (registerNow)
	regs     uint64                 // registrations so far
	out      map[*session]*outgoing // lines for the local sessions, until the next flush
	outOrder []*session             // the sessions in out, in the order of their first line
	waits    []barrier
	since    int // records applied since the last snapshot
	nextSnap int // since-count at which to consider a snapshot again
	snapRev  uint64
	snapBusy bool
	// keepFrom is when the oldest of what the room needs from storage
	// was stored: its snapshot, or the first record after it; zero when
	// it needs nothing. Under a retention the steward writes the
	// snapshot again once keepFrom is a quarter of it old (keepSnapshot).
	keepFrom time.Time
	// keepNext is the earliest time for keepSnapshot's next attempt.
	keepNext time.Time
	cc       jetstream.ConsumeContext
	liveSub  *nats.Subscription // nil if subscribing failed
	cons     jetstream.Consumer
	st       jetstream.Stream // the room's stream, for stall checks; nil until the first
	checking bool             // a stall check is under way
	// gen counts the consumers the feed started; records of any but the
	// newest are dropped. restarting is set while a new one is being
	// started off run (restartConsumer).
	gen        uint64
	restarting bool
	// silent is set when the consumer reported missed heartbeats and has
	// applied nothing since.
	silent bool
	// retryIn is the wait before the check after a failed restart, 0
	// when the last restart succeeded.
	retryIn time.Duration
	// restartHook, when set (by tests), runs off run before each new
	// consumer is started.
	restartHook func()
	behind      bool   // the last check saw records past behindAt unapplied
	behindAt    uint64 // Applied when the last check saw the stream ahead
}

func newFeed(e *roomEngine, name string) *feed {
	f := &feed{
		e:         e,
		room:      name,
		stream:    e.streamOf(name),
		subj:      e.subjectOf(name),
		key:       roomToken(name),
		cmds:      make(chan func()),
		in:        make(chan incoming, 1024),
		live:      make(chan liveRec, liveQueue),
		texts:     make(chan *textReq, 256),
		done:      make(chan struct{}),
		snaps:     make(chan snapResult, 1),
		checks:    make(chan lastStored, 1),
		restarted: make(chan consuming),
		missed:    make(chan struct{}, 1),
		recheck:   make(chan struct{}, 1),
		keys:      make(map[string]bool),
		released:  make(chan struct{}, 1),
		sessions:  make(map[string]*session),
		regOf:     make(map[string]uint64),
		out:       make(map[*session]*outgoing),
	}
	f.ctx, f.cancel = context.WithCancel(e.ctx)
	return f
}

// roomConfig is the configuration of the engine's rooms.
func (e *roomEngine) roomConfig(sink room.Sink) room.Config {
	cfg := room.DefaultConfig(e.n.cfg.ID, e.inc)
	cfg.MaxUsers = e.n.cfg.MaxParticipants
	cfg.MaxUserSessions = MaxUserSessionsInRoom
	cfg.Grace = e.presenceGrace()
	cfg.MaxGap = cfg.Grace / 2
	// As long as the engine believes its replicas' view of their
	// leaders anywhere else: past it, that view may be stale.
	cfg.LeaderWait = localElections
	cfg.Sink = sink
	return cfg
}

// presenceGrace is how long a member's node must be seen down or missing
// (with a majority up) before the member counts as stale: long enough
// for a new node's first entry to arrive everywhere, and for a node
// paused a few seconds to come back before its members are removed.
func (e *roomEngine) presenceGrace() time.Duration {
	return max(3*time.Second, 10*e.n.cfg.Heartbeat)
}

// Deliver implements room.Sink: it queues line to the local session
// under key. It runs on the feed's goroutine, during the room's Apply,
// ApplyLive and Reconcile.
func (f *feed) Deliver(key string, line []byte) {
	if s := f.sessions[key]; s != nil {
		f.send(s, line)
		f.e.metrics.delivered(f.received)
	}
}

// outgoing is what the feed has for one session since its last flush.
type outgoing struct {
	buf   []byte
	owned bool // buf is the feed's own, not a line shared with others
}

// send adds line to what goes to s at the next flush. Every line the feed
// writes to a session goes through send, so they reach it in order.
func (f *feed) send(s *session, line []byte) {
	o := f.out[s]
	switch {
	case o == nil:
		f.out[s] = &outgoing{buf: line}
		f.outOrder = append(f.outOrder, s)
	case o.owned:
		o.buf = append(o.buf, line...)
	default:
		o.buf = append(append(make([]byte, 0, 2*(len(o.buf)+len(line))), o.buf...), line...)
		o.owned = true
	}
}

// flush hands each session what was sent to it, in one piece: the records
// applied in one go (all those the consumer had queued) reach a member's
// socket in one write.
func (f *feed) flush() {
	for _, s := range f.outOrder {
		s.push(f.out[s].buf)
	}
	clear(f.out)
	clear(f.outOrder)
	f.outOrder = f.outOrder[:0]
}

// do runs fn on the feed's goroutine. It returns once the goroutine has
// taken fn, so fn runs before any record the feed receives later.
func (f *feed) do(ctx context.Context, fn func()) error {
	select {
	case f.cmds <- fn:
		return nil
	case <-f.done:
		return errFeedClosed
	case <-ctx.Done():
		return fmt.Errorf("node: waiting for room %s: %w", f.room, ctx.Err())
	}
}

// userSeq is the seq of user's last text the room holds, asked of the
// feed's goroutine, waiting at most wait.
func (f *feed) userSeq(user string, wait time.Duration) (uint64, error) {
	ctx, cancel := context.WithTimeout(f.ctx, wait)
	defer cancel()
	res := make(chan uint64, 1)
	if err := f.do(ctx, func() { res <- f.r.Seq(user) }); err != nil {
		return 0, err
	}
	select {
	case seq := <-res:
		return seq, nil
	case <-f.done:
		return 0, errFeedClosed
	case <-ctx.Done():
		return 0, fmt.Errorf("node: waiting for room %s: %w", f.room, ctx.Err())
	}
}

// register adds s, under key, as a local session that does not receive
// deliveries yet. It must come before the session's join is published, so
// that the feed never takes the join for a stale session.
func (f *feed) register(ctx context.Context, key string, s *session) error {
	return f.do(ctx, func() { f.registerNow(key, s) })
}

// registerNow is register on the feed's goroutine. Each registration
// gets a number of its own, so that a detach still waiting for an
// earlier leave of the same key cannot remove this one (detachAt).
func (f *feed) registerNow(key string, s *session) {
	f.sessions[key] = s
	f.regs++
	f.regOf[key] = f.regs
	f.r.Register(key, s.user)
}

// activate waits until the feed has applied the join stored at seq, then
// sends the session the room's full state and starts its deliveries. It
// returns the last seq of the session's user's text in the state, or
// errRoomFull if the join was refused.
func (f *feed) activate(ctx context.Context, key string, seq uint64) (uint64, error) {
	type result struct {
		seq uint64
		err error
	}
	res := make(chan result, 1)
	// claimed settles, once, whether the feed activates the session or
	// the join gives up (ctx): a session whose join failed must not get
	// the room's state, or its client would take the room for joined and
	// send text that the node refuses as not in the room.
	var claimed atomic.Bool
	err := f.do(ctx, func() {
		f.after(seq, func() {
			if !claimed.CompareAndSwap(false, true) {
				return // the join gave up
			}
			line, err := f.r.Activate(key)
			switch {
			case errors.Is(err, room.ErrNotLocal):
				res <- result{err: errFeedClosed}
			case errors.Is(err, room.ErrFull):
				res <- result{err: errRoomFull}
			case errors.Is(err, room.ErrUserSessions):
				res <- result{err: errUserSessions}
			case err != nil:
				res <- result{err: err}
			default:
				s := f.sessions[key]
				f.send(s, line)
				f.flush() // the state before the join returns
				res <- result{seq: f.r.Seq(s.user)}
			}
		})
	})
	if err != nil {
		return 0, err
	}
	select {
	case r := <-res:
		return r.seq, r.err
	case <-f.done:
		select {
		case r := <-res: // answered before the feed ended
			return r.seq, r.err
		default:
			return 0, errFeedClosed
		}
	case <-ctx.Done():
		if claimed.CompareAndSwap(false, true) {
			return 0, fmt.Errorf("node: waiting for room %s to load: %w", f.room, ctx.Err())
		}
		r := <-res // the feed is activating the session: its answer is on the way
		return r.seq, r.err
	}
}

// resync sends the room's full state again to an active session and
// returns the last seq of its user's text in that state. Either the state
// goes out or an error comes back, never both: a join gets one answer,
// which clients count (docs/protocol.md, "Join").
func (f *feed) resync(ctx context.Context, key string) (uint64, error) {
	type result struct {
		seq uint64
		err error
	}
	res := make(chan result, 1)
	// claimed settles, once, whether the feed sends the state or the
	// join gives up (ctx), as in activate.
	var claimed atomic.Bool
	// The session's text is answered (rejoin waited for it): the state
	// waits until the feed has applied what the writer stored, so that
	// it holds every chunk the session was told was stored. Sent before,
	// it could lack the last one, acked a moment ago, and the client
	// would show its line without it.
	stored := f.storedThrough.Load()
	err := f.do(ctx, func() {
		f.after(stored, func() {
			if !claimed.CompareAndSwap(false, true) {
				return // the join gave up
			}
			s := f.sessions[key]
			line, err := f.r.Resync(key)
			switch {
			case err != nil:
				res <- result{err: err}
			case line != nil && s != nil:
				f.send(s, line)
				f.flush()
				res <- result{seq: f.r.Seq(s.user)}
			default:
				res <- result{err: errFeedClosed} // not in the room here: no state to send
			}
		})
	})
	if err != nil {
		return 0, err
	}
	select {
	case r := <-res:
		return r.seq, r.err
	case <-f.done:
		select {
		case r := <-res: // answered before the feed ended
			return r.seq, r.err
		default:
			return 0, errFeedClosed
		}
	case <-ctx.Done():
		if claimed.CompareAndSwap(false, true) {
			return 0, fmt.Errorf("node: waiting for room %s: %w", f.room, ctx.Err())
		}
		r := <-res // the feed is sending the state: its answer is on the way
		return r.seq, r.err
	}
}

// markLeaving notes that the session under key is about to publish its
// leave, so that the feed does not publish its join again meanwhile.
func (f *feed) markLeaving(ctx context.Context, key string) error {
	return f.do(ctx, func() { f.r.MarkLeaving(key) })
}

// detach removes the session under key once the feed has applied the
// record at seq (at once for 0) and waits for that. It reports whether
// the session was registered then (and is no longer): false when an
// earlier detach's barrier had removed it, true when the feed ended
// first (its sessions went with it).
func (f *feed) detach(ctx context.Context, key string, seq uint64) (removed bool, err error) {
	res := make(chan bool, 1)
	err = f.do(ctx, func() { f.detachAt(key, seq, func(removed bool) { res <- removed }) })
	if err != nil {
		return false, err
	}
	select {
	case removed := <-res:
		return removed, nil
	case <-f.done:
		return true, nil
	case <-ctx.Done():
		return false, fmt.Errorf("node: leaving room %s: %w", f.room, ctx.Err())
	}
}

// detachAt is detach on the feed's goroutine: once the record at seq is
// applied, it removes key's registration and calls done, unless key was
// registered again meanwhile. A leave whose wait gave up (its record
// stored but not yet applied) leaves its barrier behind; the same session
// may join again before the record comes, and that registration is not
// the one this detach was for.
func (f *feed) detachAt(key string, seq uint64, done func(removed bool)) {
	reg := f.regOf[key]
	f.after(seq, func() {
		removed := reg != 0 && f.regOf[key] == reg
		if removed {
			f.r.Detach(key)
			delete(f.sessions, key)
			delete(f.regOf, key)
		}
		done(removed)
	})
}

// after runs fn once the record at seq is applied: now if it is.
func (f *feed) after(seq uint64, fn func()) {
	if seq <= f.r.Applied() {
		fn()
		return
	}
	f.waits = append(f.waits, barrier{seq, fn})
}

// run loads the room, then applies its records, serves commands, checks
// presence and writes snapshots until the feed is released.
func (f *feed) run() {
	defer close(f.done)
	if !f.load() {
		return
	}
	f.e.metrics.feeds.Inc()
	defer f.e.metrics.feeds.Dec()
	defer f.unload()
	f.subscribeLive()
	tick := time.NewTicker(max(2*f.e.n.cfg.Heartbeat, 50*time.Millisecond))
	defer tick.Stop()
	watch := time.NewTicker(f.stallEvery())
	defer watch.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case fn := <-f.cmds:
			fn()
		case in := <-f.in:
			f.apply(in)
			// Apply what else is waiting before serving anything else,
			// then write it to each member at once.
			for range len(f.in) {
				f.apply(<-f.in)
			}
		case in := <-f.live:
			f.applyLive(in)
			for range len(f.live) {
				f.applyLive(<-f.live)
			}
		case <-tick.C:
			f.reconcile(f.e.now())
			f.keepSnapshot(time.Now())
			if f.stopIfUnheld() {
				return
			}
		case <-f.released:
			f.dropReleased()
			if f.stopIfUnheld() {
				return
			}
		case res := <-f.snaps:
			f.snapWritten(res)
		case <-watch.C:
			f.checkStall()
		case last := <-f.checks:
			f.stallChecked(last)
		case c := <-f.restarted:
			f.consumerRestarted(c)
		case <-f.recheck:
			f.checkStall()
		case <-f.missed:
			if f.missedGen.Load() == f.gen {
				f.silent = true
				f.checkStall()
			}
		}
		f.flush()
	}
}

// stopIfUnheld stops the feed, and reports so, if no local session holds
// it, its linger has passed and the room lists no member of this node.
// Such a member has no session here to leave for it: the feed's
// Reconcile stores its leave, retrying until the stream takes it, and
// no other node would (they remove a live node's members only once it
// restarts). A room whose stream refuses records keeps its feed.
func (f *feed) stopIfUnheld() bool {
	if f.r.OwnMembers() > 0 {
		return false
	}
	return f.dropIfUnheld()
}

// dropReleased removes the registrations of keys that no local session
// holds any more. A session releases the feed after its detach, but a
// detach may give up (the feed busy past the session's wait, or the wait
// spent on an earlier room), and a registered member is never taken for
// stale: the room would list the user, and keep the feed, until the node
// stops. Without its registration, Reconcile stores the member's leave.
func (f *feed) dropReleased() {
	var gone []string
	f.e.mu.Lock()
	for key := range f.sessions {
		if !f.keys[key] {
			gone = append(gone, key)
		}
	}
	f.e.mu.Unlock()
	for _, key := range gone {
		f.e.log.Warn("dropping the registration of a session that left the room without it", "room", f.room, "key", key)
		f.r.Detach(key)
		delete(f.sessions, key)
		delete(f.regOf, key)
	}
}

// ownMembers returns held, the keys of the local sessions holding the
// feed, with those of every member the room lists on this node, of any
// incarnation, sorted. A feed that cannot answer within half a second
// (loading, stalled, or closed) gets held alone, so that a stopping node
// still leaves for its sessions.
func (f *feed) ownMembers(ctx context.Context, held []string) []string {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	listed := make(chan []string, 1)
	err := f.do(ctx, func() {
		var keys []string
		for key, m := range f.r.Members() {
			if m.Node == f.e.n.cfg.ID {
				keys = append(keys, key)
			}
		}
		listed <- keys
	})
	keys := slices.Clone(held)
	if err == nil {
		select {
		case own := <-listed:
			keys = append(keys, own...)
		case <-ctx.Done():
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// dropIfUnheld stops the feed, and reports so, if no local session holds
// it and its linger has passed.
func (f *feed) dropIfUnheld() bool {
	e := f.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(f.keys) > 0 || time.Now().Before(f.lingerTill) || e.feeds[f.room] != f {
		return false
	}
	delete(e.feeds, f.room)
	f.cancel()
	return true
}

// stallEvery is how often a feed checks that its consumer still delivers:
// two of the consumer's idle heartbeats, and at least two seconds.
func (f *feed) stallEvery() time.Duration {
	return max(2*f.e.n.cfg.FeedHeartbeat, 2*time.Second)
}

// checkStall asks the stream, off the feed's goroutine, for the sequence
// of the room's newest record. The client library's ordered consumer
// resets itself when its heartbeats stop, but after a stream leader's
// death it can end up subscribed to nothing and never say so: the room's
// members then miss text the stream acknowledged; or it retries its
// reset with pauses that grow to 10 s. Comparing what is stored with
// what was applied finds that from outside. Run checks every stallEvery,
// and at once when the consumer reports missed heartbeats.
func (f *feed) checkStall() {
	// A feed that no session holds still needs its records while the
	// room lists a member of this node: it stays until it applies that
	// member's leave (stopIfUnheld), which a stalled consumer never
	// brings.
	if f.checking || f.restarting || f.r.Locals() == 0 && f.r.OwnMembers() == 0 {
		return
	}
	f.checking = true
	e, st, js, stream, subj := f.e, f.st, f.e.jsOf(f.room), f.stream, f.subj
	e.wg.Go(func() {
		ctx, cancel := context.WithTimeout(f.ctx, 2*time.Second)
		defer cancel()
		res := lastStored{st: st}
		if res.st == nil {
			res.st, res.err = js.Stream(ctx, stream)
		}
		if res.err == nil {
			var msg *jetstream.RawStreamMsg
			msg, res.err = res.st.GetLastMsgForSubject(ctx, subj)
			switch {
			case errors.Is(res.err, jetstream.ErrMsgNotFound):
				res.err = nil
			case res.err == nil:
				res.seq = msg.Sequence
			}
		}
		f.checks <- res // buffered for the one check under way
	})
}

// stallChecked acts on a stall check: a record that the stream holds
// unapplied after the consumer missed its heartbeats (and applied nothing
// since), or at two checks in a row while nothing was applied in
// between, means the consumer delivers no more, and it is replaced by a
// new one that starts after the last record applied.
func (f *feed) stallChecked(last lastStored) {
	f.checking = false
	if last.st != nil {
		f.st = last.st
	}
	if last.err != nil {
		// No leader yet, or a slow answer: the next check asks again.
		f.e.log.Debug("checking a room's consumer", "room", f.room, "err", last.err)
		return
	}
	applied := f.r.Applied()
	if last.seq <= applied {
		// silent stays: a stream without a leader stores nothing new
		// until it has one, and the consumer is still the one that
		// missed its heartbeats. (If the library's own reset mended it
		// and the room went quiet, a later check may replace a healthy
		// consumer: a few milliseconds, nothing lost or shown twice.)
		f.behind = false
		return
	}
	// Behind after missed heartbeats is evidence enough: the stream
	// holds what the consumer, silent, did not bring.
	if !f.silent && (!f.behind || applied != f.behindAt) {
		f.behind, f.behindAt = true, applied
		return
	}
	f.behind, f.silent = false, false
	f.e.log.Warn("room consumer delivers nothing the stream holds; starting a new one", "room", f.room, "applied", applied, "stored", last.seq)
	f.e.metrics.restarts.Inc()
	f.restartConsumer(applied)
}

// restartRetry is how long after a failed restart of a consumer the feed
// checks its room again (each attempt waits up to 2 s for an answer),
// doubled after each failure in a row up to maxRestartRetry.
const (
	restartRetry    = 250 * time.Millisecond
	maxRestartRetry = 4 * time.Second
)

// restartConsumer replaces the feed's consumer by one that starts after
// stream sequence after. The old one is stopped, and the new one
// started, off run: the client library holds a consumer's lock while it
// retries the consumer's creation (each request may wait 10 s for a
// stream without a leader), and stopping the consumer waits for that
// lock. Meanwhile the feed goes on showing live text and serving its
// sessions. Records the old consumer still hands over are dropped.
func (f *feed) restartConsumer(after uint64) {
	if oldCC, old := f.cc, f.cons; oldCC != nil {
		// Once: after a failed restart the feed has no consumer.
		f.cc, f.cons = nil, nil
		f.e.wg.Go(func() {
			oldCC.Stop()
			if !f.e.halting.Load() {
				f.deleteConsumer(old)
			}
		})
	}
	f.gen++
	f.restarting = true
	gen, hook := f.gen, f.restartHook
	f.e.wg.Go(func() {
		if hook != nil {
			hook()
		}
		// Short: a request the stream cannot answer yet (no leader) is
		// better asked again at the next check than waited for.
		ctx, cancel := context.WithTimeout(f.ctx, 2*time.Second)
		defer cancel()
		c := consuming{after: after}
		begun := time.Now()
		c.cons, c.cc, c.err = f.startConsumer(ctx, after, gen)
		c.took = time.Since(begun)
		select {
		case f.restarted <- c:
		case <-f.ctx.Done(): // the feed is gone: nobody else stops it
			if c.err == nil {
				c.cc.Stop()
				if !f.e.halting.Load() {
					f.deleteConsumer(c.cons)
				}
			}
		}
	})
}

// consumerRestarted takes the consumer restartConsumer started.
func (f *feed) consumerRestarted(c consuming) {
	f.restarting = false
	if c.err != nil {
		// The evidence against the old consumer holds: check again
		// shortly, and a room still behind tries again at once.
		f.silent = true
		f.retryIn = min(max(2*f.retryIn, restartRetry), maxRestartRetry)
		f.e.log.Warn("restarting a room's consumer", "room", f.room, "err", c.err, "took", c.took, "retry_in", f.retryIn)
		time.AfterFunc(f.retryIn, func() {
			select {
			case f.recheck <- struct{}{}:
			default: // a check is asked for already
			}
		})
		return
	}
	f.retryIn = 0
	f.e.log.Info("room consumer restarted", "room", f.room, "after", c.after, "took", c.took)
	f.cons, f.cc = c.cons, c.cc
}

// load reads the room's snapshot and starts its consumer after it,
// retrying until it succeeds or the feed is released.
func (f *feed) load() bool {
	select {
	case <-f.e.ready:
	case <-f.ctx.Done():
		return false
	}
	backoff := 20 * time.Millisecond
	for {
		err := f.tryLoad()
		if err == nil {
			return true
		}
		if f.ctx.Err() != nil || f.dropIfUnheld() {
			// Unloaded, the feed knows of no member of this node to
			// remove: it goes once nobody waits for it.
			return false
		}
		f.e.log.Warn("loading a room; retrying", "room", f.room, "err", err, "retry_in", backoff)
		select {
		case <-f.ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (f *feed) tryLoad() error {
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	cfg := f.e.roomConfig(f)
	var r *room.Room
	var rev uint64
	entry, err := f.e.kv.Get(ctx, f.key)
	switch {
	case err == nil:
		rev = entry.Revision()
		f.keepFrom = entry.Created()
		if r, err = room.Restore(f.room, entry.Value(), cfg); err != nil {
			// A damaged snapshot, or one of a newer format: the stream
			// holds the history; the next snapshot replaces this one.
			f.e.log.Error("rebuilding a room from its stream", "room", f.room, "err", err)
			r = nil
		} else if r, err = f.checkAhead(ctx, r); err != nil {
			return err
		}
	case errors.Is(err, jetstream.ErrKeyNotFound):
	default:
		return fmt.Errorf("node: reading the snapshot of room %s: %w", f.room, err)
	}
	if r == nil {
		if r, err = room.New(f.room, cfg); err != nil {
			return fmt.Errorf("node: opening room %s: %w", f.room, err)
		}
	}
	cons, cc, err := f.startConsumer(ctx, r.Applied(), f.gen)
	if err != nil {
		return err
	}
	f.cons, f.cc = cons, cc
	f.r = r
	f.snapRev = rev
	f.nextSnap = f.e.n.cfg.SnapshotEvery
	return nil
}

// checkAhead returns r, restored from a snapshot, or nil if the snapshot
// covers records past the last the room's stream holds: a faulty node
// wrote it, or the stream was deleted and made again. The feed would skip
// every record up to the snapshot's seq; it rebuilds the room from the
// stream instead, and the next snapshot replaces that one.
func (f *feed) checkAhead(ctx context.Context, r *room.Room) (*room.Room, error) {
	st, err := f.e.jsOf(f.room).Stream(ctx, f.stream)
	if err != nil {
		return nil, fmt.Errorf("node: reading the stream of room %s: %w", f.room, err)
	}
	if last := st.CachedInfo().State.LastSeq; r.Applied() > last {
		f.e.log.Error("rebuilding a room from its stream: its snapshot is past the stream's last record", "room", f.room, "snapshot_seq", r.Applied(), "stream_last", last)
		return nil, nil
	}
	return r, nil
}

// startConsumer starts an ordered consumer of the room's records after
// stream sequence after, whose records carry generation gen. It touches
// nothing of the feed's but its channel in, so it may run off run.
func (f *feed) startConsumer(ctx context.Context, after, gen uint64) (jetstream.Consumer, jetstream.ConsumeContext, error) {
	ocfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{f.subj},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second,
	}
	if after > 0 {
		ocfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		ocfg.OptStartSeq = after + 1
	}
	cons, err := f.e.jsOf(f.room).OrderedConsumer(ctx, f.stream, ocfg)
	if err != nil {
		return nil, nil, fmt.Errorf("node: creating the consumer of room %s: %w", f.room, err)
	}
	hb := f.e.n.cfg.FeedHeartbeat
	cc, err := cons.Consume(func(msg jetstream.Msg) { f.handle(msg, gen) },
		jetstream.PullHeartbeat(hb),
		jetstream.PullExpiry(max(5*time.Second, 4*hb)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			f.e.log.Debug("room consumer", "room", f.room, "err", err)
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				raiseTo(&f.missedGen, gen)
				select {
				case f.missed <- struct{}{}:
				default: // one is waiting already, and reads missedGen
				}
			}
		}))
	if err != nil {
		f.deleteConsumer(cons)
		return nil, nil, fmt.Errorf("node: consuming room %s: %w", f.room, err)
	}
	return cons, cc, nil
}

// raiseTo sets a to v unless it holds more already.
func raiseTo(a *atomic.Uint64, v uint64) {
	for old := a.Load(); old < v; old = a.Load() {
		if a.CompareAndSwap(old, v) {
			return
		}
	}
}

// handle runs on the consumer's goroutine: it decodes a record and hands
// it to run.
func (f *feed) handle(msg jetstream.Msg, gen uint64) {
	md, err := msg.Metadata()
	if err != nil {
		f.e.log.Warn("dropping a room record without metadata", "room", f.room, "err", err)
		return
	}
	var rec record
	if err := json.Unmarshal(msg.Data(), &rec); err != nil {
		f.e.log.Warn("dropping a malformed room record", "room", f.room, "seq", md.Sequence.Stream, "err", err)
		rec = record{} // still counts as applied
	}
	select {
	case f.in <- incoming{seq: md.Sequence.Stream, rec: rec, at: time.Now(), stored: md.Timestamp, gen: gen}:
	case <-f.ctx.Done():
	}
}

// unload stops the consumer and, on a graceful stop, writes a last
// snapshot if this node is the room's steward.
func (f *feed) unload() {
	if f.liveSub != nil {
		_ = f.liveSub.Unsubscribe()
	}
	if f.cc != nil { // nil after a failed restart
		f.cc.Stop()
		select {
		case <-f.cc.Closed():
		case <-time.After(2 * time.Second):
		}
		if f.e.halting.Load() {
			return
		}
		f.deleteConsumer(f.cons)
	} else if f.e.halting.Load() {
		return
	}
	if f.snapBusy {
		select {
		case res := <-f.snaps:
			f.snapWritten(res)
		case <-time.After(2 * time.Second):
			return
		}
	}
	if f.since > 0 && f.r.Steward(f.e.peers()) {
		if data, ok := f.snapshotData(); ok {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := f.e.writeSnapshot(ctx, f.key, data, f.snapRev, f.r.Applied()); err != nil {
				f.e.log.Warn("writing the last snapshot of a room", "room", f.room, "err", err)
			}
		}
	}
}

func (f *feed) deleteConsumer(cons jetstream.Consumer) {
	name := cons.CachedInfo().Name
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = f.e.js.DeleteConsumer(ctx, f.stream, name)
}

// apply applies one record of the room's stream, then runs the barriers
// it passed and considers a snapshot.
func (f *feed) apply(in incoming) {
	if in.gen != f.gen {
		return // from a consumer the feed replaced: the new one brings it
	}
	f.silent = false
	f.received = in.at
	res := f.r.Apply(in.seq, in.rec)
	if res.Skipped {
		return // already in the snapshot the feed started from
	}
	f.since++
	if f.keepFrom.IsZero() {
		f.keepFrom = in.stored
	}
	if res.Duplicates > 0 {
		f.e.metrics.duplicates.Add(float64(res.Duplicates))
	}
	if res.Moved > 0 {
		f.e.metrics.moved.Add(float64(res.Moved))
	}
	if len(res.Unstored) > 0 {
		// Sampled: a user whose two devices keep typing over each other
		// makes one for nearly every chunk (room/live.go).
		f.e.unstoredLog.Log(f.e.log, slog.LevelInfo, "text shown live was never stored; its members get the room's state again", "room", f.room, "stored", res.Unstored, "seq", in.seq)
	}
	for _, key := range res.Lost {
		// Its join again was refused: the room filled while its node was
		// cut off. The room told it; its reader takes the room off its
		// list at its next message (session.dropLostRooms).
		f.e.log.Info("a session lost its place in a room that filled while its node was cut off", "room", f.room, "session", key)
		if s := f.sessions[key]; s != nil {
			s.loseRoom(f.room)
			f.e.n.metrics.errorSent(wire.CodeRemoved) // the room sent it
		}
	}
	if len(f.waits) > 0 {
		applied := f.r.Applied()
		var later []barrier
		for _, b := range f.waits {
			if b.seq <= applied {
				b.fn()
			} else {
				later = append(later, b)
			}
		}
		f.waits = later
	}
	if f.since >= f.nextSnap {
		f.maybeSnapshot()
	}
}

// reconcile stores what the room's Reconcile asks for: the leave of
// stale members and the join of local sessions the room lost. It returns
// those records.
func (f *feed) reconcile(now time.Time) []record {
	// Called while the node stops too: it sends the states the room owes
	// its sessions (room/live.go), which stay until they move.
	f.r.StoreLeader(f.e.streamLeader(f.stream))
	recs := f.r.Reconcile(now, f.e.peers())
	if f.e.closing.Load() {
		return nil // the node is stopping: its sessions' leaves are on their way, or its peers' cleanup
	}
	for _, rec := range recs {
		switch rec.Op {
		case room.OpLeave:
			f.e.log.Info("removing stale members from a room", "room", f.room, "sessions", rec.Keys)
		case room.OpJoin:
			f.e.log.Info("joining a room again for a session it lost", "room", f.room, "session", rec.Key)
		}
		f.publishAsync(rec)
	}
	return recs
}

func (f *feed) publishAsync(rec record) {
	e, name := f.e, f.room
	e.wg.Go(func() {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		defer cancel()
		if _, err := e.publish(ctx, name, rec, ""); err != nil && e.ctx.Err() == nil {
			e.log.Warn("publishing a room record", "room", name, "op", rec.Op, "err", err)
		}
	})
}

// maybeSnapshot starts writing a snapshot if this node is the steward
// and no write is under way.
func (f *feed) maybeSnapshot() {
	every := f.e.n.cfg.SnapshotEvery
	f.nextSnap = f.since + every
	if f.snapBusy || !f.r.Steward(f.e.peers()) {
		return
	}
	data, ok := f.snapshotData()
	if !ok {
		return
	}
	f.snapBusy = true
	e, key, rev, seq, since, at := f.e, f.key, f.snapRev, f.r.Applied(), f.since, time.Now()
	e.wg.Go(func() {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		defer cancel()
		res, err := e.writeSnapshot(ctx, key, data, rev, seq)
		res.since, res.at, res.err = since, at, err
		f.snaps <- res // buffered for the one write under way
	})
}

// keepSnapshot writes the room's snapshot again, if this node is its
// steward, when what the room needs from storage is a quarter of the
// retention old: the snapshot and the records after it then never
// expire while the room has members, however long it stays quiet. After
// an attempt it waits keepBackoff before the next, should that one fail.
func (f *feed) keepSnapshot(now time.Time) {
	every := f.e.snapshotEvery()
	if f.snapBusy || !keepDue(now, f.keepFrom, f.keepNext, every) {
		return
	}
	f.keepNext = now.Add(keepBackoff(every))
	f.maybeSnapshot()
}

// snapshotData encodes the room's snapshot within what the bus carries
// (cut as room.Room.SnapshotWithin says), or reports false if even its
// members and seqs are too large for the bus.
func (f *feed) snapshotData() ([]byte, bool) {
	data, err := f.r.SnapshotWithin(f.e.snapshotLimit())
	switch {
	case errors.Is(err, room.ErrSnapshotTooLarge):
		f.e.log.Warn("room snapshot too large for the bus; replay grows", "room", f.room, "err", err)
		return nil, false
	case err != nil:
		f.e.log.Error("encoding a room snapshot", "room", f.room, "err", err)
		return nil, false
	}
	return data, true
}

func (f *feed) snapWritten(res snapResult) {
	f.snapBusy = false
	if res.err != nil {
		f.e.log.Warn("writing a room snapshot", "room", f.room, "err", res.err)
		return
	}
	f.snapRev = res.rev
	f.keepFrom = res.at
	f.since = max(f.since-res.since, 0)
	f.nextSnap = f.since + f.e.n.cfg.SnapshotEvery
	f.e.metrics.snapshots.Inc()
}

// writeSnapshot stores data, the snapshot as of stream sequence seq, if
// the stored one is older. rev is the revision the writer last saw (0 for
// none). It returns the revision now stored and the sequence it covers.
func (e *roomEngine) writeSnapshot(ctx context.Context, key string, data []byte, rev, seq uint64) (snapResult, error) {
	for range 3 {
		next, err := e.putSnapshot(ctx, key, data, rev)
		if err == nil {
			return snapResult{rev: next, seq: seq}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return snapResult{}, fmt.Errorf("node: writing the snapshot of room %s: %w", key, err)
		}
		// Someone else wrote one: keep theirs if it is as new as ours,
		// whatever its format.
		entry, gerr := e.kv.Get(ctx, key)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) {
			rev = 0 // the one this writer saw expired meanwhile
			continue
		}
		if gerr != nil {
			return snapResult{}, fmt.Errorf("node: reading the snapshot of room %s after a conflict: %w", key, gerr)
		}
		if other, err := room.SnapshotSeq(entry.Value()); err == nil && other >= seq {
			return snapResult{rev: entry.Revision(), seq: other}, nil
		}
		rev = entry.Revision()
	}
	return snapResult{}, fmt.Errorf("node: writing the snapshot of room %s: lost three races", key)
}

// putSnapshot stores data under key if the key's revision is still rev
// (0: the key holds nothing), as the bucket's Create and Update do, and
// under a retention with a TTL of its own (snapshotTTL). A revision that
// moved on is jetstream.ErrKeyExists.
func (e *roomEngine) putSnapshot(ctx context.Context, key string, data []byte, rev uint64) (uint64, error) {
	ttl := e.snapshotTTL()
	if ttl <= 0 {
		if rev == 0 {
			return e.kv.Create(ctx, key, data)
		}
		return e.kv.Update(ctx, key, data, rev)
	}
	msg := &nats.Msg{Subject: "$KV." + e.bucket + "." + key, Data: data}
	ack, err := e.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(ttl))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return 0, fmt.Errorf("%w: %w", jetstream.ErrKeyExists, err)
	}
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// lostPlace reports whether err, from a feed's resync, says the room took
// the session out: its join again was refused (room.Result.Lost).
func lostPlace(err error) bool {
	return errors.Is(err, room.ErrFull) || errors.Is(err, room.ErrUserSessions)
}

// roomErrorFor is the error a join or re-join of name gets for err: limit
// for a state too large to send (joining again gives the same), else
// unavailable, to retry.
func roomErrorFor(name string, err error) wire.Message {
	if errors.Is(err, room.ErrStateTooLarge) {
		return roomError(wire.CodeLimit, name, 0, "joining room %s: %v: it has too many users with long names to send its state in one line", name, err)
	}
	return roomError(wire.CodeUnavailable, name, 0, "joining room %s: %v; try again", name, err)
}
