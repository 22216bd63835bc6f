package node

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/bus"
	"github.com/switchboard/switchboard/internal/logsample"
	"github.com/switchboard/switchboard/wire"
)

// maxEntrySize is the largest directory entry message a node decodes, in
// bytes: five fields of directory.DefaultLimits().MaxField, escaped at
// worst, and the rest.
const maxEntrySize = 8 << 10

// entryQueue is how many entries' messages may wait for run: twice the
// entries a directory holds (directory.DefaultLimits), so that a whole
// directory's answers to a sync request fit while a heartbeat's worth
// arrives too. Past it messages are dropped (queueEntry, and nats.go's
// slow consumer before it) and a peer's next heartbeat repairs what was
// lost.
var entryQueue = 2 * directory.DefaultLimits().MaxEntries

// maxIncarnationAhead is how far ahead of this node's clock a peer's
// incarnation may be (an incarnation is its node's start time in
// nanoseconds, incarnation.go). The table takes a node's entries only
// from its newest incarnation, so one entry from the far future, a
// forger's, would make every real heartbeat of that node stale for as
// long as the forged incarnation is ahead: for ever at the largest. A
// day is far beyond any clock skew between hosts that keep time.
const maxIncarnationAhead = 24 * time.Hour

// dropLogEvery is how often each kind of dropped or refused entry is
// logged at most; the line counts what was dropped in between.
const dropLogEvery = 5 * time.Second

// entrySubject is the subject node id publishes its entry on.
func (n *Node) entrySubject(id string) string {
	return n.subject("entry") + "." + bus.Token(id)
}

// answerSubject is the subject node from sends its entry on to node to
// alone: to's answer to a sync request, or news for a newcomer.
func (n *Node) answerSubject(from, to string) string {
	return n.entrySubject(from) + ".to." + bus.Token(to)
}

// directSubject is where the peers' answers to this node alone arrive:
// every answerSubject(peer, this node).
func (n *Node) directSubject() string {
	return n.subject("entry") + ".*.to." + bus.Token(n.cfg.ID)
}

// subscribeEntries subscribes, on the directory connection, to every
// node's entry subject and to the answers addressed to this node alone.
// queueEntry hands each message to run (n.entryMsgs), which checks it
// with acceptEntry. The caller flushes.
//
// The subscriptions take callbacks, not n.entryMsgs itself, although a
// channel would save a goroutine's wake-up per message: nats.go bounds a
// channel subscription by its messages alone, and neither nats-server
// (for what arrives over a route) nor nats.go bounds a message's size,
// so entryQueue messages of any size could wait there before run dropped
// them. A callback subscription is bounded in bytes as well, by
// SetPendingLimits, and its callback drops an oversized message before
// it takes a place in the queue. Each subscription delivers in order from
// its own goroutine; the two may interleave differently than they
// arrived, which the table's sequence numbers make harmless (an answer
// and a heartbeat of the same node are numbered alike).
func (n *Node) subscribeEntries() ([]*nats.Subscription, error) {
	drops := newDropLog(n.log, dropLogEvery)
	queue := func(m *nats.Msg) { n.queueEntry(m, drops) }
	var subs []*nats.Subscription
	for _, subject := range []string{n.subject("entry") + ".*", n.directSubject()} {
		sub, err := n.bus.Dir.Subscribe(subject, queue)
		if err != nil {
			return subs, fmt.Errorf("node: subscribing to directory entries on %s: %w", subject, err)
		}
		subs = append(subs, sub)
		// As many messages as the queue holds, at their largest.
		if err := sub.SetPendingLimits(entryQueue, entryQueue*maxEntrySize); err != nil {
			return subs, fmt.Errorf("node: bounding the directory subscription on %s: %w", subject, err)
		}
	}
	return subs, nil
}

// queueEntry hands m to run unless it carries headers, is larger than an
// entry can be or run is entryQueue messages behind; then it drops m,
// logged by drops at most once every dropLogEvery with a count. It never
// blocks: the subscription's goroutine calls it, and a peer's next
// heartbeat repairs what was dropped.
//
// Headers are refused here, before the message takes a place in the
// queue: nats.go's Data excludes them, so a message of a few bytes of
// data could hold megabytes of headers in each of the queue's places,
// past the size check below. A node publishes its entries without any;
// a message the NATS server itself sends (a stream's RePublish, a direct
// get's answer) has them and gets past the server's publish
// permissions. The log line gives their count, not their contents,
// which the sender chose.
func (n *Node) queueEntry(m *nats.Msg, drops *dropLog) {
	if len(m.Header) > 0 {
		drops.note("dropping a directory entry with headers (nodes send none: did a stream republish it?)", m.Subject, fmt.Errorf("%d header fields", len(m.Header)))
		return
	}
	if len(m.Data) > maxEntrySize {
		drops.note("dropping an oversized directory entry", m.Subject, fmt.Errorf("%d bytes, the most is %d", len(m.Data), maxEntrySize))
		return
	}
	select {
	case n.entryMsgs <- m:
	default:
		drops.note("dropping a directory entry: too many wait for the directory", m.Subject, fmt.Errorf("%d waiting", entryQueue))
	}
}

// acceptEntry decodes the entry in m, received at now, and says whether
// run may apply it. An entry is taken only from its own node's subjects
// (node X publishes on entry.<X>, and answers node Y on entry.<X>.to.<Y>;
// the embedded server lets each node's directory connection publish
// there alone); an entry for this node's ID never comes from this node
// (its connection does not echo), so it is dropped. So are malformed and
// misfiled entries, and those whose incarnation is more than
// maxIncarnationAhead ahead of now. Each kind is logged by drops at most
// once every dropLogEvery with a count (queueEntry has dropped those
// with headers and the oversized already).
func (n *Node) acceptEntry(m *nats.Msg, now time.Time, drops *dropLog) (directory.Entry, bool) {
	var e directory.Entry
	if err := json.Unmarshal(m.Data, &e); err != nil {
		drops.note("dropping a malformed directory entry", m.Subject, err)
		return directory.Entry{}, false
	}
	if err := e.Validate(); err != nil {
		drops.note("dropping an invalid directory entry", m.Subject, err)
		return directory.Entry{}, false
	}
	if m.Subject != n.entrySubject(e.ID) && m.Subject != n.answerSubject(e.ID, n.cfg.ID) {
		drops.note("dropping a directory entry published on another node's subject", m.Subject, fmt.Errorf("entry for %q", e.ID))
		return directory.Entry{}, false
	}
	if e.ID == n.cfg.ID {
		drops.note("ignoring an entry for this node's own ID from elsewhere (another node with the same ID?)", m.Subject, fmt.Errorf("incarnation %d, addr %s", e.Incarnation, e.Addr))
		return directory.Entry{}, false
	}
	if limit := uint64(now.Add(maxIncarnationAhead).UnixNano()); e.Incarnation > limit {
		drops.note("dropping a directory entry whose incarnation is more than a day ahead of this node's clock (is either clock wrong?)", m.Subject,
			fmt.Errorf("entry for %q, incarnation %d, at most %d", e.ID, e.Incarnation, limit))
		return directory.Entry{}, false
	}
	return e, true
}

// dropLog logs dropped directory entries and refusals, each kind
// (message) at most once per interval at warn level, with how many were
// dropped since its last line (package logsample). It is safe for
// concurrent use.
type dropLog struct {
	log   *slog.Logger
	kinds logsample.Kinds
}

func newDropLog(log *slog.Logger, interval time.Duration) *dropLog {
	return &dropLog{log: log, kinds: logsample.Kinds{Period: interval}}
}

// note records one drop of kind msg, about subject, for err.
func (d *dropLog) note(msg, subject string, err error) {
	d.sample(msg, "subject", subject, "err", err)
}

// sample logs msg with attrs unless a line of the same msg was logged
// less than the interval ago; then it only counts it.
func (d *dropLog) sample(msg string, attrs ...any) {
	d.kinds.Log(d.log, slog.LevelWarn, msg, attrs...)
}

// run owns the directory table. It applies the peers' entries, publishes
// this node's entry on change (coalesced) and as a heartbeat, marks silent
// peers down, and pushes fresh directories to attached clients when the
// membership changes.
func (n *Node) run() {
	cfg := n.cfg
	table := directory.NewTable(cfg.ID, directory.Timeouts{DownAfter: 3 * cfg.Heartbeat, RemoveAfter: cfg.RemoveAfter},
		directory.WithLimits(directory.DefaultLimits()))
	refusals := newDropLog(n.log, dropLogEvery)
	// The heartbeat slows as the cluster grows when the bus reports a
	// peer's death (gone), and keeps cfg.Heartbeat otherwise.
	ceiling := cfg.Heartbeat
	if n.gone != nil {
		ceiling = cfg.HeartbeatMax
	}
	every := directory.HeartbeatFor(cfg.Heartbeat, ceiling, 1)
	n.heartbeatMS.Store(every.Milliseconds())
	heartbeat := time.NewTicker(every)
	defer heartbeat.Stop()
	// Silence is checked when the table says a peer's time may be up
	// (NextTick), and at least every heartbeat: an idle node wakes for
	// it about once a heartbeat instead of on a fast tick. rearmCheck is
	// defined below, with the view it also minds.
	check := time.NewTimer(every)
	defer check.Stop()
	// The node is up once it has heard its peers for a heartbeat and its
	// rooms can be loaded and stored (their streams have leaders).
	readyTimer := time.NewTimer(cfg.Heartbeat)
	defer readyTimer.Stop()
	heard := false
	var roomsReady <-chan struct{}
	if n.rooms != nil {
		roomsReady = n.rooms.ready
	}
	publishTimer := newStoppedTimer()
	defer publishTimer.Stop()
	pushTimer := newStoppedTimer()
	defer pushTimer.Stop()
	var pushPending bool
	// The nodes whose membership or status changed since the last push:
	// what a push of changes (a delta) carries.
	changed := map[string]struct{}{}
	var publishAt time.Time // when the pending publish is due; zero: none
	var lastPublish time.Time
	var lastStatus directory.Status // of the last entry published
	// The view a hello reads is rebuilt at once when the membership
	// changes, and at most every viewEvery when only users or ages did:
	// a change of users is due then (viewDue, a wake-up of its own), a
	// heartbeat's fresher age waits for the next wake-up.
	var viewStale, viewDue bool
	var viewAt time.Time
	// A change of membership or status not yet in a stored view, for
	// n.dirChanged.
	var shownChange bool
	// rearmCheck sets the check for the next peer whose time may be up,
	// or for a stale view's rebuild, whichever comes first. It runs only
	// after a change that can bring either sooner (rearm): a heartbeat
	// that changes nothing only moves its peer's time later, and the
	// check then fires early, finds nothing and is set again.
	rearm := false
	rearmCheck := func(now time.Time) {
		d := every
		if at, ok := table.NextTick(); ok {
			d = min(d, at.Sub(now))
		}
		if viewDue {
			d = min(d, viewAt.Add(viewEvery(cfg)).Sub(now))
		}
		check.Reset(max(d, time.Millisecond))
	}

	// schedulePublishIn publishes the entry after d, or sooner if a
	// publish is already due sooner.
	schedulePublishIn := func(d time.Duration) {
		at := time.Now().Add(d)
		if !publishAt.IsZero() && !at.Before(publishAt) {
			return
		}
		publishAt = at
		publishTimer.Reset(d)
	}
	schedulePublish := func() { schedulePublishIn(cfg.Coalesce) }
	schedulePush := func() {
		if !pushPending {
			pushPending = true
			pushTimer.Reset(cfg.PushDelay)
		}
	}
	note := func(c directory.Change) {
		n.metrics.changes.WithLabelValues(c.Kind.String()).Inc()
		if c.Kind == directory.Stale {
			return
		}
		if c.Kind == directory.Refused {
			refusals.note("refusing a directory entry past the directory's limits", c.ID, c.Err)
			return
		}
		if c.Kind == directory.Removed && n.rooms != nil {
			// Back after this, the node is a newcomer: whatever
			// incarnation it brings is its newest.
			n.rooms.forgetIncarnation(c.ID)
		}
		viewStale = true
		if c.Kind != directory.Refreshed || c.Content {
			viewDue, rearm = true, true
		}
		if c.Kind == directory.Added || c.Kind == directory.Removed {
			if d := directory.HeartbeatFor(cfg.Heartbeat, ceiling, table.Len()); d != every {
				// Announce the new interval within half the shorter of
				// the two, long before a peer would miss a heartbeat at
				// the old one; the wait gathers the steps of a
				// newcomer's table filling up (one per 10 nodes at the
				// slowed pace) into one or two entries, not one each.
				announceIn := min(every, d) / 2
				every = d
				n.heartbeatMS.Store(every.Milliseconds())
				table.SetDownAfter(directory.HeartbeatMisses * max(cfg.Heartbeat, every))
				heartbeat.Reset(every)
				schedulePublishIn(announceIn)
			}
		}
		if c.Membership() {
			changed[c.ID] = struct{}{}
			schedulePush()
			viewAt = time.Time{} // rebuild the view at once
			shownChange = true
		}
	}
	// The peers answered alone since the last heartbeat: a newcomer's
	// entry and its sync request, arriving together, get one answer. No
	// more are answered in a heartbeat than a directory holds nodes, so
	// a flood of requests under made-up names costs a bounded map.
	answered := map[string]struct{}{}
	answer := func(peer string) {
		if peer == cfg.ID || len(answered) >= directory.DefaultLimits().MaxEntries {
			return
		}
		if _, ok := answered[peer]; ok {
			return
		}
		answered[peer] = struct{}{}
		n.answerPeer(n.Status(), peer)
	}
	steps := newMinority(cfg.ID, minorityForget, n.minorityGrace())
	if cfg.Bus != "" {
		steps.vouchFor = busVouchFor
	}
	var away awayRound // when the sessions were last told to move, and whom it asked
	apply := func(e directory.Entry, now time.Time) {
		c := table.Apply(e, now)
		steps.goodbye(c) // a peer's own goodbye, if the table took it
		if n.rooms != nil && (c.Kind == directory.Added || c.Kind == directory.Refreshed || c.Kind == directory.StatusChanged) {
			// Only what the table took: it tells a peer's runs apart.
			n.rooms.noteIncarnation(e.ID, e.Incarnation)
		}
		if c.Membership() && e.ID != cfg.ID {
			// A peer's own word: it came, or says its status changed
			// (a death seen by silence or by the bus is logged where it
			// is noticed).
			n.log.Info("peer changed: its entry says so", "peer", c.ID, "kind", c.Kind.String(), "from", c.From, "to", c.To)
		}
		note(c)
		if c.Kind == directory.Added && e.ID != cfg.ID {
			// A newcomer: tell it about us without waiting for a
			// heartbeat; the others know us already.
			answer(e.ID)
		}
	}
	entryDrops := newDropLog(n.log, dropLogEvery)
	receive := func(m *nats.Msg, now time.Time) {
		if e, ok := n.acceptEntry(m, now, entryDrops); ok {
			n.metrics.received.Inc()
			apply(e, now)
		}
	}
	publish := func(now time.Time) {
		e := n.publishSelf(now, n.Status())
		lastPublish, lastStatus = now, e.Status
		publishAt = time.Time{}
		publishTimer.Stop()
		apply(e, now)
	}

	now := time.Now()
	publish(now)
	if err := n.bus.Dir.Publish(n.subject("sync"), []byte(cfg.ID)); err != nil {
		n.log.Warn("asking peers for their entries", "err", err)
	}
	n.view.Store(&view{nodes: table.Nodes(now), taken: now, parts: &n.parts})

	for {
		select {
		case <-n.ctx.Done():
			return
		case m := <-n.entryMsgs:
			now = time.Now()
			receive(m, now)
			// Apply whatever else is waiting before taking a snapshot.
		drain:
			for range cap(n.entryMsgs) {
				select {
				case m := <-n.entryMsgs:
					receive(m, now)
				default:
					break drain
				}
			}
		case <-n.syncReq:
			now = time.Now()
			publish(now)
		case peer := <-n.answerReq:
			now = time.Now()
			answer(peer)
		case conn := <-n.gone:
			now = time.Now()
			for _, c := range table.Disconnected(conn, now) {
				n.metrics.disconnects.Inc()
				n.log.Info("peer changed: its bus connection closed", "peer", c.ID, "kind", c.Kind.String(), "to", c.To)
				note(c)
			}
		case <-n.changed:
			if n.Status() != lastStatus {
				schedulePublish() // a status change goes out at once
			} else {
				// Users alone: at most once per usersEvery, which grows
				// with the cluster, so that a storm of attaches does not
				// cost every peer a message per attach.
				schedulePublishIn(max(cfg.Coalesce, time.Until(lastPublish.Add(usersEvery(cfg, table.Len(), every)))))
			}
			continue
		case <-publishTimer.C:
			if publishAt.IsZero() {
				continue // stopped after it fired: published already
			}
			now = time.Now()
			publish(now)
		case <-heartbeat.C:
			now = time.Now()
			clear(answered)
			away = n.checkMajority(steps, now, away)
			if now.Sub(lastPublish) >= every/2 || n.Status() != lastStatus {
				// An entry published within half a heartbeat was one.
				publish(now)
			}
		case <-readyTimer.C:
			heard = true
			if roomsReady == nil {
				n.ready.Store(true)
				now = time.Now()
				publish(now)
			}
		case <-roomsReady:
			roomsReady = nil
			if heard {
				n.ready.Store(true)
				now = time.Now()
				publish(now)
			}
		case <-check.C:
			now = time.Now()
			rearm = true
			for _, c := range table.Tick(now) {
				n.log.Info("peer changed", "peer", c.ID, "kind", c.Kind.String(), "to", c.To)
				note(c)
			}
		case <-pushTimer.C:
			pushPending = false
			n.pushDirectory(changed)
			changed = map[string]struct{}{}
			continue
		}
		if viewStale && now.Sub(viewAt) >= viewEvery(cfg) {
			n.view.Store(&view{nodes: table.Nodes(now), taken: now, parts: &n.parts})
			viewStale, viewDue, viewAt = false, false, now
			if shownChange {
				shownChange = false
				select {
				case n.dirChanged <- struct{}{}:
				default:
				}
			}
		}
		if rearm {
			rearmCheck(now)
			rearm = false
		}
	}
}

// watchDisconnects, with Config.BusSystem, has the bus report every
// closed connection of the external NATS to run (n.gone), which marks
// the peer whose entry names it down at once. Without BusSystem it does
// nothing. Start calls it once the directory is subscribed.
func (n *Node) watchDisconnects() error {
	if n.cfg.BusSystem == "" {
		return nil
	}
	gone := make(chan string, 256)
	err := n.bus.WatchDisconnects(func(conn string) {
		select {
		case gone <- conn:
		case <-n.ctx.Done():
		}
	})
	if err != nil {
		return fmt.Errorf("node: watching the bus for closed connections: %w", err)
	}
	n.gone = gone
	return nil
}

// usersEvery is how often at most a node publishes its entry for a change
// of users alone, in a cluster whose directory holds size nodes and whose
// heartbeat is every: 2 ms per peer, from Coalesce up to the base
// Heartbeat, so that every peer receives at most about 500 such updates
// a second from all of them; and once the heartbeat has slowed with the
// cluster's size (directory.HeartbeatFor), no more often than a
// heartbeat: users then travel in the heartbeat's budget, and a peer
// receives at most about 50 entries a second in all, in a storm of
// attaches as when idle (a heartbeat is skipped after a publish).
// Status changes are not held back.
func usersEvery(cfg Config, size int, every time.Duration) time.Duration {
	d := min(cfg.Heartbeat, max(cfg.Coalesce, time.Duration(size-1)*2*time.Millisecond))
	if every > cfg.Heartbeat {
		d = max(d, every)
	}
	return d
}

// viewEvery is how often at most the view hellos read is rebuilt when only
// users or ages changed (a heartbeat, a peer's users): a quarter of the
// heartbeat. A membership change rebuilds it at once.
func viewEvery(cfg Config) time.Duration { return cfg.Heartbeat / 4 }

// publishSelf publishes this node's entry with the given status, on its
// own entry subject over the directory connection, and returns it. It may
// be called from run and, once, from Shutdown, which publishes Down: that
// goodbye is flushed before it returns.
func (n *Node) publishSelf(now time.Time, status directory.Status) directory.Entry {
	e := n.sendSelf(status, n.entrySubject(n.cfg.ID))
	if status == directory.Down {
		if err := n.bus.Dir.FlushTimeout(time.Second); err != nil {
			n.log.Warn("flushing the goodbye entry", "err", err)
		}
	}
	return e
}

// answerPeer sends this node's entry with the given status to peer
// alone: its answer to peer's sync request, or news for a newcomer that
// the other peers need not hear again. run calls it.
func (n *Node) answerPeer(status directory.Status, peer string) {
	n.sendSelf(status, n.answerSubject(n.cfg.ID, peer))
	n.metrics.answers.Inc()
}

// sendSelf publishes this node's entry with the given status on subject
// over the directory connection, and returns it.
func (n *Node) sendSelf(status directory.Status, subject string) directory.Entry {
	seq := n.seq.Add(1)
	if n.leaving.Load() {
		// Shutdown set leaving before it took the goodbye's seq: an
		// entry of run's numbered after the goodbye would say the node
		// is back, and peers would keep it up until its heartbeats stop.
		status = directory.Down
	}
	e := directory.Entry{
		Node: directory.Node{
			ID:          n.cfg.ID,
			Addr:        n.addr,
			HTTP:        n.httpAdvertised,
			Group:       n.cfg.Group,
			Status:      status,
			Users:       int(n.users.Load()),
			Capacity:    int(n.capacity.Load()),
			Version:     n.cfg.Version,
			HeartbeatMS: n.heartbeatMS.Load(),
		},
		Incarnation: n.incarnation,
		Seq:         seq,
		Conn:        n.bus.DirConn(),
	}
	data, err := json.Marshal(e)
	if err != nil {
		n.log.Error("encoding own entry", "err", err)
		return e
	}
	if err := n.bus.Dir.Publish(subject, data); err != nil {
		n.log.Warn("publishing own entry", "subject", subject, "err", err)
	}
	return e
}

// pushDirectory tells every attached session that the nodes in changed
// changed. A session whose hello asked for deltas and that was sent the
// push before this one (or said hello since) gets only the changes: one
// line, the same for all of them. Every other session gets the view its
// hello asked for, drawn afresh (pushLines bounds the draws); so does
// everyone when the changes would not make a small line.
func (n *Node) pushDirectory(changed map[string]struct{}) {
	now := time.Now()
	v := n.view.Load()
	// A session whose generation is gen-1 holds what the last push (or
	// a hello since) told it, so the changes since then are all it needs.
	gen := n.pushGen.Add(1)
	delta, err := v.deltaLine(n.cfg.Service, n.cfg.ID, now, changed)
	if err != nil {
		n.log.Error("encoding a directory delta", "err", err)
	}
	lines := newPushLines(v, n.cfg.Service, n.cfg.ID, now)
	n.sessionsMu.Lock()
	targets := make([]*session, 0, len(n.sessions))
	for s := range n.sessions {
		if s.attached.Load() {
			targets = append(targets, s)
		}
	}
	n.sessionsMu.Unlock()
	deltas := 0
	for _, s := range targets {
		if delta != nil && s.deltas.Load() && s.dirGen.Swap(gen) == gen-1 {
			s.push(delta)
			deltas++
			continue
		}
		s.dirGen.Store(gen)
		w := viewWant{}
		if p := s.want.Load(); p != nil {
			w = *p
		}
		line, err := lines.line(w)
		if err != nil {
			n.log.Error("encoding directory push", "err", err)
			return
		}
		s.push(line)
	}
	n.metrics.pushes.Add(float64(len(targets)))
	n.metrics.deltaPushes.Add(float64(deltas))
}

func newStoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// How a node steps aside when it cannot see a majority of its cluster
// (minority.go): after minorityGrace without one it reports degraded
// (the directory, /readyz 503) and refuses attaches; after moveAfter more
// it closes its sessions with `shutdown`, which clients take as "attach
// elsewhere". It heals by itself: a majority seen again for minorityGrace
// makes it up; a peer unseen is forgotten after minorityForget of time
// with a majority (minority.go). A node that cannot store while it sees
// a majority steps aside at once, and asks its sessions to move rather
// than closing them while another node is up; it closes a session still
// there movedCloseAfter after its ask (sendAway).
const (
	minorityForget = 10 * time.Minute
	moveAfter      = 10 * time.Second
	// movedCloseAfter is the clients' whole move, their 10 s to attach
	// and join elsewhere and their 10 s before they retire the old
	// connection, and a margin: a session closed sooner might leave
	// before its rooms have it on its new node.
	movedCloseAfter = 30 * time.Second
)

// minorityGrace is how long a node may miss a majority before it steps
// aside: the rooms' presence grace, so that a peer paused for a moment
// changes nothing.
func (n *Node) minorityGrace() time.Duration {
	return max(3*time.Second, 10*n.cfg.Heartbeat)
}

// degradedWhy says why a degraded node stepped aside: its embedded
// JetStream stopped (or the node stopped it to restart it) or its bus
// runs none (storage.go), its external bus
// is unreachable, or it cannot see a majority of its cluster.
func (n *Node) degradedWhy() string {
	if n.cfg.Bus != "" && !n.bus.Conn.IsConnected() {
		return "cannot reach its bus"
	}
	if n.storageStopped.Load() && n.cfg.Bus != "" {
		return "cannot store text (its bus's JetStream does not answer: are the bus servers' stores full?)"
	}
	if n.storageLeaderless.Load() {
		return "cannot store text (its JetStream has no metadata leader: are most of the cluster's nodes gone?)"
	}
	if n.storageStopped.Load() && n.storageRepairing.Load() {
		return "cannot store text (it restarts its JetStream: Raft groups of it stopped on a failed write; is its descriptor table full?)"
	}
	if n.storageStopped.Load() {
		return "cannot store text (its JetStream stopped: is its data directory full?)"
	}
	if n.majorityBack.Load() {
		if n.cfg.Bus != "" {
			return "sees a majority of its cluster or its bus answers it again; up once it has held that for the grace"
		}
		return "sees a majority of its cluster again; up once it has held it for the grace"
	}
	if n.cfg.Bus != "" {
		return "cannot see a majority of its cluster, and its bus's JetStream does not answer it"
	}
	return "cannot see a majority of its cluster"
}

// checkMajority updates n.degraded from steps, the directory as of now
// and whether the node can store (storage.go), and sends the sessions
// away once the node has been degraded for moveAfter, or at once when it
// cannot store (again every moveAfter while it stays so): asked to move
// when the node alone cannot store and another is up, closed otherwise
// (sendAway). It returns the last round in which the sessions were sent.
// Only run calls it.
func (n *Node) checkMajority(steps *minority, now time.Time, last awayRound) awayRound {
	unreachable := n.cfg.Bus != "" && !n.bus.Conn.IsConnected()
	// A node that cannot store steps aside and moves its sessions at
	// once: no grace, since its storage comes back only once its disk
	// has room, not in a moment as a peer or a link may. One whose
	// JetStream has lost its metadata leader steps aside but keeps its
	// sessions: that is the cluster's loss (a majority of its servers
	// gone), and no other node can store either.
	lost := n.storageStopped.Load() && !n.storageLeaderless.Load()
	v := n.view.Load()
	byBus, hadMajority := steps.byBus, steps.minoritySince.IsZero()
	minority := steps.observe(v.nodes, v.taken, unreachable, n.busAnswered(), now)
	if hadMajority && !steps.minoritySince.IsZero() && n.cfg.Bus != "" {
		select { // ask the bus at once: only its answer to a question asked now vouches
		case n.busAsk <- struct{}{}:
		default:
		}
	}
	if steps.byBus && !byBus {
		n.log.Warn("sees no majority of its cluster, but its bus's JetStream answers it: stays up (on an external bus the bus, not a count of peers, says who can store)")
	}
	degraded := minority || n.storageStopped.Load()
	n.majorityBack.Store(steps.recovering())
	if degraded != n.degraded.Swap(degraded) {
		if degraded {
			switch {
			case lost:
				n.log.Warn(n.degradedWhy()+": stepping aside (degraded), refusing attaches", "move_sessions_in", time.Duration(0))
			case !minority:
				n.log.Warn(n.degradedWhy()+": stepping aside (degraded), refusing attaches; its sessions stay, since no node can store", "sessions", n.Users())
			default:
				n.log.Warn(n.degradedWhy()+": stepping aside (degraded), refusing attaches", "move_sessions_in", moveAfter)
			}
		} else {
			if n.cfg.Bus != "" {
				n.log.Info("sees a majority of its cluster or its bus answers it, and can store: up again")
			} else {
				n.log.Info("a majority of the cluster is back, and the node can store: up again")
			}
		}
	}
	if !degraded {
		return awayRound{at: last.at} // those it asked may stay
	}
	if (!lost && steps.degradedFor(now) < moveAfter) || now.Sub(last.at) < moveAfter {
		return last
	}
	n.sessionsMu.Lock()
	present := make([]*session, 0, len(n.sessions))
	for s := range n.sessions {
		present = append(present, s)
	}
	n.sessionsMu.Unlock()
	// The node alone cannot store while it sees a majority and the others
	// can: its sessions leave make-before-break, as from a drain (no
	// presence change in their rooms). Otherwise the node's view of its
	// peers is in doubt, or no one can store: it closes them.
	canMove := lost && !minority && !unreachable && n.otherNodeUp()
	ask, closing, asked := sendAway(present, func(s *session) bool { return s.answered.Load() }, last.asked, now, canMove, movedCloseAfter)
	if len(ask)+len(closing) == 0 {
		return awayRound{at: now, asked: asked}
	}
	why := n.degradedWhy()
	if len(ask) > 0 {
		n.log.Warn("asking sessions to move: "+why, "sessions", len(ask), "closing_after", movedCloseAfter)
	}
	if len(closing) > 0 {
		n.log.Warn("telling sessions to attach elsewhere: "+why, "sessions", len(closing))
	}
	// Off run's goroutine: a move line is a directory view per session,
	// tens of microseconds each, and run publishes the heartbeats.
	n.wg.Go(func() {
		for _, s := range ask {
			if line, ok := n.moveFor(s, why); ok {
				s.push(line)
			} else {
				closing = append(closing, s)
			}
		}
		closeSessions(closing, &wire.Error{Code: wire.CodeShutdown, Text: "node " + n.cfg.ID + " " + why + "; attach elsewhere", Fatal: true})
	})
	return awayRound{at: now, asked: asked}
}

// sendAway decides a round of sending a degraded node's sessions away:
// of present, those to ask to move and those to close, and the asks to
// remember for the next round. When the sessions cannot move (canMove
// false) it closes them all. Otherwise it asks each whose attach was
// answered and that it has not asked before (asked holds the times of
// its asks), keeps one asked less than after ago, and closes the rest:
// those asked after or more ago (their moves failed, or their clients
// ignore moves) and those not yet answered.
func sendAway[S comparable](present []S, answered func(S) bool, asked map[S]time.Time, now time.Time, canMove bool, after time.Duration) (ask, closing []S, next map[S]time.Time) {
	if !canMove {
		return nil, present, nil
	}
	next = make(map[S]time.Time)
	for _, s := range present {
		at, was := asked[s]
		switch {
		case !answered(s), was && now.Sub(at) >= after:
			closing = append(closing, s)
		case was:
			next[s] = at
		default:
			ask = append(ask, s)
			next[s] = now
		}
	}
	return ask, closing, next
}

// awayRound is run's record of the last round in which checkMajority
// sent the sessions away: when, and those it asked to move (rather than
// closed) with the time of each ask, which it closes if they are still
// there movedCloseAfter after it (sendAway).
type awayRound struct {
	at    time.Time
	asked map[*session]time.Time
}
