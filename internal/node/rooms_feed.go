package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// maxSenders is how many senders a room remembers before it forgets the
// departed ones whose current line is empty (the same ones, at the same
// record, on every node). A forgotten sender counts from seq 1 again.
const maxSenders = 1000

// member is one session in a room, as the room's stream records it.
type member struct {
	User string `json:"user"`
	Node string `json:"node"`
	Inc  uint64 `json:"inc"`
}

// snapshot is a room's state as of stream sequence Seq, as stored in the
// snapshot bucket.
type snapshot struct {
	Seq     uint64            `json:"seq"`
	State   rtt.State         `json:"state"`
	Members map[string]member `json:"members"`
}

// incoming is a record delivered by the room's consumer.
type incoming struct {
	seq uint64
	rec record
	at  time.Time // when this node's consumer received it
}

// localMember is a session of this node in the room.
type localMember struct {
	s        *session
	user     string
	active   bool      // it has the room's state and receives deliveries
	rejected bool      // its join was refused: the room was full
	leaving  bool      // it has asked to leave
	retryAt  time.Time // earliest time to publish its join again
}

// barrier runs fn once the feed has applied the record at seq.
type barrier struct {
	seq uint64
	fn  func()
}

// snapResult reports a snapshot write.
type snapResult struct {
	rev, seq uint64
	since    int // records the snapshot covered past the previous one
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
	done   chan struct{} // closed when run returns
	snaps  chan snapResult

	keys map[string]bool // guarded by e.mu: the local sessions holding the feed

	// Owned by run.
	text     *rtt.Room
	applied  uint64    // the stream sequence of the last record applied
	received time.Time // when the consumer received the record being applied
	members  map[string]member
	users    map[string]int // user -> sessions in the room
	senders  map[string]bool
	local    map[string]*localMember
	waits    []barrier
	since    int // records applied since the last snapshot
	nextSnap int // since-count at which to consider a snapshot again
	snapRev  uint64
	snapBusy bool
	absent   map[string]time.Time // peer -> when the directory first missed it
	suspect  map[string]time.Time // own session key -> when first seen stale
	dropAt   time.Time            // earliest time to publish another cleanup
	cc       jetstream.ConsumeContext
	cons     jetstream.Consumer
}

func newFeed(e *roomEngine, room string) *feed {
	f := &feed{
		e:       e,
		room:    room,
		stream:  e.streamOf(room),
		subj:    e.subjectOf(room),
		key:     roomToken(room),
		cmds:    make(chan func()),
		in:      make(chan incoming, 1024),
		done:    make(chan struct{}),
		snaps:   make(chan snapResult, 1),
		keys:    make(map[string]bool),
		local:   make(map[string]*localMember),
		absent:  make(map[string]time.Time),
		suspect: make(map[string]time.Time),
	}
	f.ctx, f.cancel = context.WithCancel(e.ctx)
	return f
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

// register adds s, under key, as a local session that does not receive
// deliveries yet. It must come before the session's join is published, so
// that the feed never takes the join for a stale session.
func (f *feed) register(ctx context.Context, key string, s *session) error {
	return f.do(ctx, func() { f.local[key] = &localMember{s: s, user: s.user} })
}

// activate waits until the feed has applied the join stored at seq, then
// sends the session the room's full state and starts its deliveries. It
// returns errRoomFull if the join was refused.
func (f *feed) activate(ctx context.Context, key string, seq uint64) error {
	res := make(chan error, 1)
	err := f.do(ctx, func() {
		f.after(seq, func() {
			lm := f.local[key]
			switch {
			case lm == nil:
				res <- errFeedClosed
			case lm.rejected:
				res <- errRoomFull
			default:
				lm.active = true
				lm.s.push(f.stateLine())
				res <- nil
			}
		})
	})
	if err != nil {
		return err
	}
	select {
	case err := <-res:
		return err
	case <-f.done:
		return errFeedClosed
	case <-ctx.Done():
		return fmt.Errorf("node: waiting for room %s to load: %w", f.room, ctx.Err())
	}
}

// resync sends the room's full state again to an active session.
func (f *feed) resync(ctx context.Context, key string) error {
	return f.do(ctx, func() {
		if lm := f.local[key]; lm != nil && lm.active {
			lm.s.push(f.stateLine())
		}
	})
}

// markLeaving notes that the session under key is about to publish its
// leave, so that the feed does not publish its join again meanwhile.
func (f *feed) markLeaving(ctx context.Context, key string) error {
	return f.do(ctx, func() {
		if lm := f.local[key]; lm != nil {
			lm.leaving = true
		}
	})
}

// detach removes the session under key once the feed has applied the
// record at seq (at once for 0) and waits for that.
func (f *feed) detach(ctx context.Context, key string, seq uint64) error {
	res := make(chan struct{})
	err := f.do(ctx, func() {
		f.after(seq, func() {
			delete(f.local, key)
			close(res)
		})
	})
	if err != nil {
		return err
	}
	select {
	case <-res:
		return nil
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("node: leaving room %s: %w", f.room, ctx.Err())
	}
}

// after runs fn once the record at seq is applied: now if it is.
func (f *feed) after(seq uint64, fn func()) {
	if seq <= f.applied {
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
	tick := time.NewTicker(max(2*f.e.n.cfg.Heartbeat, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case fn := <-f.cmds:
			fn()
		case in := <-f.in:
			f.apply(in)
			// Apply what else is waiting before serving anything else.
			for range len(f.in) {
				f.apply(<-f.in)
			}
		case <-tick.C:
			f.reconcile(time.Now())
		case res := <-f.snaps:
			f.snapWritten(res)
		}
	}
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
		if f.ctx.Err() != nil {
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
	var snap snapshot
	var rev uint64
	entry, err := f.e.kv.Get(ctx, f.key)
	switch {
	case err == nil:
		if err := json.Unmarshal(entry.Value(), &snap); err != nil {
			f.e.log.Error("ignoring a damaged room snapshot", "room", f.room, "err", err)
			snap = snapshot{}
		}
		rev = entry.Revision()
	case errors.Is(err, jetstream.ErrKeyNotFound):
	default:
		return fmt.Errorf("node: reading the snapshot of room %s: %w", f.room, err)
	}
	text, err := rtt.FromState(0, snap.State)
	if err != nil {
		f.e.log.Error("ignoring an invalid room snapshot", "room", f.room, "err", err)
		snap = snapshot{}
		text = rtt.NewRoom(0)
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{f.subj},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second,
	}
	if snap.Seq > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = snap.Seq + 1
	}
	cons, err := f.e.jsOf(f.room).OrderedConsumer(ctx, f.stream, cfg)
	if err != nil {
		return fmt.Errorf("node: creating the consumer of room %s: %w", f.room, err)
	}
	hb := f.e.n.cfg.FeedHeartbeat
	cc, err := cons.Consume(f.handle,
		jetstream.PullHeartbeat(hb),
		jetstream.PullExpiry(max(5*time.Second, 4*hb)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			f.e.log.Debug("room consumer", "room", f.room, "err", err)
		}))
	if err != nil {
		f.deleteConsumer(cons)
		return fmt.Errorf("node: consuming room %s: %w", f.room, err)
	}
	f.cons, f.cc = cons, cc
	f.text = text
	f.applied = snap.Seq
	f.snapRev = rev
	f.members = make(map[string]member, len(snap.Members))
	f.users = make(map[string]int)
	f.senders = make(map[string]bool)
	for key, m := range snap.Members {
		f.members[key] = m
		f.users[m.User]++
	}
	for from := range snap.State.Live {
		f.senders[from] = true
	}
	for from := range snap.State.Seqs {
		f.senders[from] = true
	}
	f.nextSnap = f.e.n.cfg.SnapshotEvery
	return nil
}

// handle runs on the consumer's goroutine: it decodes a record and hands
// it to run.
func (f *feed) handle(msg jetstream.Msg) {
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
	case f.in <- incoming{seq: md.Sequence.Stream, rec: rec, at: time.Now()}:
	case <-f.ctx.Done():
	}
}

// unload stops the consumer and, on a graceful stop, writes a last
// snapshot if this node is the room's steward.
func (f *feed) unload() {
	f.cc.Stop()
	select {
	case <-f.cc.Closed():
	case <-time.After(2 * time.Second):
	}
	if f.e.halting.Load() {
		return
	}
	f.deleteConsumer(f.cons)
	if f.snapBusy {
		select {
		case res := <-f.snaps:
			f.snapWritten(res)
		case <-time.After(2 * time.Second):
			return
		}
	}
	if f.since > 0 && f.isSteward(f.e.peers()) {
		if data, ok := f.snapshotData(); ok {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := f.e.writeSnapshot(ctx, f.key, data, f.snapRev, f.applied); err != nil {
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

// apply applies one record of the room's stream.
func (f *feed) apply(in incoming) {
	if in.seq <= f.applied {
		return // already in the snapshot the feed started from
	}
	f.applied = in.seq
	f.received = in.at
	f.since++
	rec := in.rec
	switch rec.Op {
	case recText:
		f.applyText(rec)
	case recJoin:
		f.applyJoin(rec)
	case recLeave:
		f.applyLeave(rec)
	}
	if len(f.senders) > maxSenders {
		f.forgetDeparted()
	}
	if len(f.waits) > 0 {
		var later []barrier
		for _, b := range f.waits {
			if b.seq <= f.applied {
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

func (f *feed) applyText(rec record) {
	if rec.User == "" {
		return
	}
	res := f.text.Apply(rec.User, rec.Seq, rec.T)
	f.senders[rec.User] = true
	if res.Duplicate {
		f.e.metrics.duplicates.Inc()
		return
	}
	f.deliver(wire.Message{Op: wire.OpText, Room: f.room, From: rec.User, Seq: rec.Seq, T: rec.T}, rec.Key)
}

func (f *feed) applyJoin(rec record) {
	if rec.Key == "" || rec.User == "" {
		return
	}
	if _, ok := f.members[rec.Key]; ok {
		return // a retried join
	}
	if f.users[rec.User] == 0 && len(f.users) >= f.e.n.cfg.MaxParticipants {
		if lm := f.local[rec.Key]; lm != nil {
			lm.rejected = true
		}
		return
	}
	f.members[rec.Key] = member{User: rec.User, Node: rec.Node, Inc: rec.Inc}
	f.users[rec.User]++
	if f.users[rec.User] == 1 {
		f.deliver(wire.Message{Op: wire.OpPresence, Room: f.room, User: rec.User, Event: "join"}, "")
	}
}

func (f *feed) applyLeave(rec record) {
	var gone []string
	for _, key := range rec.Keys {
		m, ok := f.members[key]
		if !ok {
			continue
		}
		delete(f.members, key)
		if f.users[m.User]--; f.users[m.User] <= 0 {
			delete(f.users, m.User)
			gone = append(gone, m.User)
		}
	}
	slices.Sort(gone)
	for _, user := range slices.Compact(gone) {
		f.deliver(wire.Message{Op: wire.OpPresence, Room: f.room, User: user, Event: "leave"}, "")
	}
	// A leaver whose user stays in the room through another session
	// still hears that it left.
	for _, key := range rec.Keys {
		if lm := f.local[key]; lm != nil && lm.active && lm.leaving && f.users[lm.user] > 0 {
			f.send(lm, wire.Message{Op: wire.OpPresence, Room: f.room, User: lm.user, Event: "leave"})
		}
	}
}

// forgetDeparted forgets senders who are not in the room and have no
// current line, in name order, until a quarter of maxSenders is free.
func (f *feed) forgetDeparted() {
	var idle []string
	for from := range f.senders {
		if f.users[from] == 0 && f.text.Live(from) == "" {
			idle = append(idle, from)
		}
	}
	slices.Sort(idle)
	for _, from := range idle {
		if len(f.senders) <= maxSenders*3/4 {
			break
		}
		f.text.Forget(from)
		delete(f.senders, from)
	}
}

// deliver sends m to every active local session but the one under except.
func (f *feed) deliver(m wire.Message, except string) {
	var line []byte
	for key, lm := range f.local {
		if !lm.active || key == except {
			continue
		}
		if line == nil {
			var err error
			if line, err = wire.Encode(m); err != nil {
				f.e.log.Error("encoding a room delivery", "room", f.room, "err", err)
				return
			}
		}
		lm.s.push(line)
		f.e.metrics.delivered(f.received)
	}
}

func (f *feed) send(lm *localMember, m wire.Message) {
	line, err := wire.Encode(m)
	if err != nil {
		f.e.log.Error("encoding a room message", "room", f.room, "err", err)
		return
	}
	lm.s.push(line)
}

// stateLine encodes the room's full state for a session. A state that
// would not fit one protocol line (wire.MaxLine) loses its oldest
// completed lines first, then the beginning of its longest live lines,
// replaced by U+FFFD.
func (f *feed) stateLine() []byte {
	st := f.text.State()
	rs := &wire.RoomState{
		Lines: make([]wire.Line, len(st.Lines)),
		Live:  make(map[string]string, len(f.users)),
		Seqs:  st.Seqs,
		Users: slices.Sorted(maps.Keys(f.users)),
	}
	for i, l := range st.Lines {
		rs.Lines[i] = wire.Line{From: l.From, Text: l.Text}
	}
	for user := range f.users {
		rs.Live[user] = st.Live[user]
	}
	for from, text := range st.Live {
		if text != "" {
			rs.Live[from] = text
		}
	}
	m := wire.Message{Op: wire.OpRoom, Room: f.room, State: rs}
	for {
		line, err := wire.Encode(m)
		if err != nil {
			f.e.log.Error("encoding a room state", "room", f.room, "err", err)
			return nil
		}
		if len(line)-1 <= wire.MaxLine {
			return line
		}
		if len(rs.Lines) > 0 {
			rs.Lines = rs.Lines[(len(rs.Lines)+3)/4:]
			continue
		}
		longest := ""
		for from, text := range rs.Live {
			if len(text) > len(rs.Live[longest]) {
				longest = from
			}
		}
		text := rs.Live[longest]
		if len(text) <= 16 {
			return line // nothing left to shorten: send it anyway
		}
		cut := len(text) / 2
		for cut < len(text) && !utf8.RuneStart(text[cut]) {
			cut++
		}
		rs.Live[longest] = "\ufffd" + text[cut:]
	}
}

// reconcile checks the members against the directory and the local
// sessions: it publishes the leave of stale members and the join of
// local sessions the room lost.
func (f *feed) reconcile(now time.Time) {
	if f.e.closing.Load() {
		return // the node is stopping: its sessions' leaves are on their way, or its peers' cleanup
	}
	peers := f.e.peers()
	self := f.e.n.cfg.ID
	var own, foreign []string
	seenAbsent := make(map[string]bool)
	for key, m := range f.members {
		if m.Node == self {
			if m.Inc == f.e.inc && f.local[key] != nil {
				delete(f.suspect, key)
				continue
			}
			// Stale only if it stays so for a while: a session's own
			// leave is usually on its way.
			first, ok := f.suspect[key]
			if !ok {
				f.suspect[key] = now
			} else if now.Sub(first) >= time.Second {
				own = append(own, key)
			}
			continue
		}
		ps := peers(m.Node)
		switch {
		case ps.newest > m.Inc, ps.present && ps.status == directory.Down:
			foreign = append(foreign, key)
		case !ps.present:
			seenAbsent[m.Node] = true
			first, ok := f.absent[m.Node]
			if !ok {
				f.absent[m.Node] = now
			} else if now.Sub(first) >= f.absentGrace() {
				foreign = append(foreign, key)
			}
		}
	}
	for id := range f.absent {
		if !seenAbsent[id] {
			delete(f.absent, id)
		}
	}
	for key := range f.suspect {
		if _, ok := f.members[key]; !ok {
			delete(f.suspect, key)
		}
	}
	stale := own
	if len(foreign) > 0 && f.isSteward(peers) {
		stale = append(stale, foreign...)
	}
	if len(stale) > 0 && !now.Before(f.dropAt) {
		f.dropAt = now.Add(2 * time.Second)
		slices.Sort(stale)
		f.e.log.Info("removing stale members from a room", "room", f.room, "sessions", stale)
		f.publishAsync(record{Op: recLeave, Keys: stale})
	}
	for key, lm := range f.local {
		if _, ok := f.members[key]; ok || !lm.active || lm.leaving || lm.rejected || now.Before(lm.retryAt) {
			continue
		}
		lm.retryAt = now.Add(2 * time.Second)
		f.e.log.Info("joining a room again for a session it lost", "room", f.room, "session", key)
		f.publishAsync(record{Op: recJoin, User: lm.user, Key: key, Node: self, Inc: f.e.inc})
	}
}

// absentGrace is how long a member's node may be missing from the
// directory before the member counts as stale: long enough for a new
// node's first entry to arrive everywhere.
func (f *feed) absentGrace() time.Duration {
	return max(3*time.Second, 10*f.e.n.cfg.Heartbeat)
}

// isSteward reports whether this node is the room's steward: the lowest
// ID among itself and the nodes, not down, of the room's members.
func (f *feed) isSteward(peers func(string) peerState) bool {
	self := f.e.n.cfg.ID
	for _, m := range f.members {
		if m.Node >= self {
			continue
		}
		if ps := peers(m.Node); ps.present && ps.status != directory.Down && ps.newest <= m.Inc {
			return false
		}
	}
	return true
}

func (f *feed) publishAsync(rec record) {
	e, room := f.e, f.room
	e.wg.Go(func() {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		defer cancel()
		if _, err := e.publish(ctx, room, rec, ""); err != nil && e.ctx.Err() == nil {
			e.log.Warn("publishing a room record", "room", room, "op", rec.Op, "err", err)
		}
	})
}

// maybeSnapshot starts writing a snapshot if this node is the steward
// and no write is under way.
func (f *feed) maybeSnapshot() {
	every := f.e.n.cfg.SnapshotEvery
	f.nextSnap = f.since + every
	if f.snapBusy || !f.isSteward(f.e.peers()) {
		return
	}
	data, ok := f.snapshotData()
	if !ok {
		return
	}
	f.snapBusy = true
	e, key, rev, seq, since := f.e, f.key, f.snapRev, f.applied, f.since
	e.wg.Go(func() {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		defer cancel()
		res, err := e.writeSnapshot(ctx, key, data, rev, seq)
		res.since, res.err = since, err
		f.snaps <- res // buffered for the one write under way
	})
}

// snapshotData encodes the room's snapshot, or reports false if it is
// too large for the bus.
func (f *feed) snapshotData() ([]byte, bool) {
	data, err := json.Marshal(snapshot{Seq: f.applied, State: f.text.State(), Members: f.members})
	if err != nil {
		f.e.log.Error("encoding a room snapshot", "room", f.room, "err", err)
		return nil, false
	}
	if limit := f.e.n.bus.Conn.MaxPayload() - 4096; int64(len(data)) > limit {
		f.e.log.Warn("room snapshot too large for the bus; replay grows", "room", f.room, "bytes", len(data), "limit", limit)
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
	f.since = max(f.since-res.since, 0)
	f.nextSnap = f.since + f.e.n.cfg.SnapshotEvery
	f.e.metrics.snapshots.Inc()
}

// writeSnapshot stores data, the snapshot as of stream sequence seq, if
// the stored one is older. rev is the revision the writer last saw (0 for
// none). It returns the revision now stored and the sequence it covers.
func (e *roomEngine) writeSnapshot(ctx context.Context, key string, data []byte, rev, seq uint64) (snapResult, error) {
	for range 3 {
		var err error
		var next uint64
		if rev == 0 {
			next, err = e.kv.Create(ctx, key, data)
		} else {
			next, err = e.kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			return snapResult{rev: next, seq: seq}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return snapResult{}, fmt.Errorf("node: writing the snapshot of room %s: %w", key, err)
		}
		// Someone else wrote one: keep theirs if it is as new as ours.
		entry, gerr := e.kv.Get(ctx, key)
		if gerr != nil {
			return snapResult{}, fmt.Errorf("node: reading the snapshot of room %s after a conflict: %w", key, gerr)
		}
		var other struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal(entry.Value(), &other) == nil && other.Seq >= seq {
			return snapResult{rev: entry.Revision(), seq: other.Seq}, nil
		}
		rev = entry.Revision()
	}
	return snapResult{}, fmt.Errorf("node: writing the snapshot of room %s: lost three races", key)
}
