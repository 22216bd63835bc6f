package node

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchboard/switchboard/directory"
)

// A node whose storage fails under it: the embedded JetStream keeps the
// rooms' replicas in the data directory, and nats-server stops its
// JetStream by itself when a write finds that directory's file system
// full, and leaves it stopped. Without a watch the node would go on
// saying up while text typed on it may never be stored or acknowledged
// (whenever a stream's leader was this node).
//
// watchStorage reads JetStream's state every storageCheckEvery, and
// storageWatch decides. When JetStream has stopped, the node steps aside
// at its next heartbeat (checkMajority: degraded, /readyz 503, attaches
// refused with draining) and tells its sessions to attach elsewhere,
// where the other replicas keep the rooms; the clients send their
// unacknowledged text again there. Once nats-server has finished the
// stop, and the file system has restartFree bytes free (or freePercent
// of its size, if that is less; where the free space cannot be read it
// does not wait for it), it restarts JetStream on the same directory
// (bus.RestartJetStream, as nats-server's configuration reload does),
// every storageRetryEvery until it runs; once JetStream follows its
// metadata leader again the node comes back up by itself.
//
// A JetStream that runs may still store nothing: once a majority of the
// servers it has known are gone its Raft groups elect no leader, and
// nats-server keeps every server it has known in its peer sets, those
// that stopped gracefully too (the directory forgets a node that says
// goodbye; JetStream does not). So the watch also reads whether JetStream
// knows its metadata leader, and a ready node that has known none
// for leaderlessFor (longer than an election: nats-server's timeout is 4
// to 9 s, twice that when a vote splits) steps aside until one is
// elected again (storageLeaderless): degraded and refusing attaches, but
// keeping its sessions (checkMajority), since no other node of its
// cluster can store either. The count starts once the node is ready: a
// node starting waits for its first election however long it takes.
// (A leader left without a quorum keeps saying so for 10 s before it
// steps down, nats-server's lostQuorumInterval, and the count starts
// then.)
//
// And a JetStream that runs may have lost some of its Raft groups on this
// node: nats-server stops a group for good when a write of its log or of
// its term and vote fails, as any write that must open a file does while
// the process's descriptor table is full (a stranger flooding the cluster
// port fills it; security.md). The stream goes on with its other copies,
// one fewer to lose, for as long as the node runs. So the watch reads the
// groups that stopped (bus.StoppedGroups). Once one of them has been
// stopped for stoppedGroupFor, and for a random part of as much more
// (so that nodes flooded together do not repair together) the table has
// had stoppedGroupFree descriptors free and every peer the node lists
// has been up (a repair takes the node's copies away for a few seconds:
// not while another node's are gone too; unless JetStream knows no
// metadata leader, when the peers may wait on this very repair), the
// node steps aside (storageRepair), and a check later stops JetStream
// (storageStop). The stop goes as above: once it has finished, and the
// table still has room, JetStream starts again, every group from its
// state on disk, caught up from its leader, and the node comes back up.
// A repair within repairStreakWithin of the last waits repairBackoff
// longer, doubled for each one in the streak up to repairBackoffMax, so
// that groups that fail again and again (a flood that comes back) do not
// send the node's sessions away every few seconds.
const (
	storageCheckEvery  = time.Second
	storageRetryEvery  = 5 * time.Second
	restartFree        = 64 << 20
	freePercent        = 10
	leaderlessFor      = 20 * time.Second
	stoppedGroupFor    = 5 * time.Second
	stoppedGroupFree   = 256
	repairBackoff      = 15 * time.Second
	repairBackoffMax   = 5 * time.Minute
	repairStreakWithin = 10 * time.Minute
)

// repairJitter draws how much longer than stoppedGroupFor a repair
// waits, at random below as much again.
func repairJitter() time.Duration { return rand.N(stoppedGroupFor) }

// peersUp reports whether every peer in the node's directory is up or
// full: none down, starting, degraded or draining.
func (n *Node) peersUp() bool {
	for _, p := range n.view.Load().nodes {
		if p.ID != n.cfg.ID && p.Status != directory.Up && p.Status != directory.Full {
			return false
		}
	}
	return true
}

// storageWatch decides, from what watchStorage reads each second, what
// the node does about its embedded JetStream. It reads no clock and does
// no I/O: the caller passes the time and what it read.
type storageWatch struct {
	lost    bool      // JetStream stopped or leaderless, and not current again since
	tried   time.Time // the last restart attempt
	settled bool      // the last read found JetStream stopped, and the stop finished
	// leaderless: since when JetStream has known no metadata leader while
	// the node was ready (a node starting waits for its first election
	// without stepping aside), zero while it knows one.
	leaderless time.Time
	// noLeader: lost holds because JetStream knew no leader, not because
	// it stopped (a stop meanwhile is told, and handled, as a stop).
	noLeader bool
	// leaderlessFor is how long JetStream may know no leader while the
	// node is ready before the node steps aside (leaderlessFor the
	// constant, unless a test set it).
	leaderlessFor time.Duration
	// stoppedSince: since when each Raft group the last read found
	// stopped, while JetStream runs, has been found so in every read.
	stoppedSince map[string]time.Time
	// eligibleSince: since when a group has been stopped stoppedGroupFor
	// with room in the table and the peers up, in every read; zero when
	// the last read found otherwise.
	eligibleSince time.Time
	// jitter is how long a repair waits once eligible, before any
	// backoff; the caller draws it, below stoppedGroupFor.
	jitter time.Duration
	// streak counts the repairs in a row each within repairStreakWithin
	// of the one before; lastRepair is when the last was decided.
	streak     int
	lastRepair time.Time
	// repairing: the watch stepped aside to start JetStream's stopped
	// groups again, and JetStream has not come back yet; stopPending:
	// the stop is the next thing to do.
	repairing, stopPending bool
}

// storageAction is what storageWatch.next tells the node to do.
type storageAction int

const (
	storageKeep       storageAction = iota // nothing changes
	storageLose                            // JetStream stopped: step aside
	storageWait                            // stopped, and too little space to restart
	storageRestart                         // stopped, with space: restart it now
	storageBack                            // running and current again: store again
	storageLeaderless                      // running, but without a metadata leader for too long: step aside
	storageRepair                          // running, with a Raft group stopped for too long: step aside to restart it
	storageStop                            // a check after storageRepair: stop JetStream now
)

// storageRead is what the watch read: whether the node is ready (it has
// been up: its rooms' storage had leaders), whether JetStream is stopped
// and whether nats-server is still taking it down, whether it knows its
// metadata leader (read while it runs) and follows it (read while the
// node stands aside), and the data directory's free space and size
// (known false when they could not be read).
type storageRead struct {
	ready, stopped, stopping, leader, current bool
	free, size                                int64
	known                                     bool
	// stoppedGroups: the Raft groups stopped while JetStream runs (read
	// while it runs); room: the descriptor table has stoppedGroupFree
	// free (read when a repair may follow); peersUp: every peer the node
	// lists is up (likewise).
	stoppedGroups []string
	room, peersUp bool
}

// next takes what was read at now and says what to do. A restart waits
// for two reads in a row that find the stop finished, so that no part of
// nats-server's stop is left to take down what the restart starts.
func (w *storageWatch) next(now time.Time, r storageRead) storageAction {
	settledBefore := w.settled
	w.settled = r.stopped && !r.stopping
	switch {
	case r.stopped:
		w.leaderless = time.Time{} // a restart waits for an election afresh
	case r.leader:
		w.leaderless = time.Time{}
	case r.ready && w.leaderless.IsZero():
		w.leaderless = now
	}
	eligible := w.stoppedFor(now, r) && r.room && (r.peersUp || !r.leader)
	switch {
	case !eligible:
		w.eligibleSince = time.Time{}
	case w.eligibleSince.IsZero():
		w.eligibleSince = now
	}
	switch {
	case w.stopPending && !r.stopped:
		w.stopPending = false
		return storageStop
	case r.stopped && (!w.lost || w.noLeader):
		w.lost, w.noLeader, w.stopPending = true, false, false
		return storageLose
	case !w.lost && !w.leaderless.IsZero() && now.Sub(w.leaderless) >= w.limit():
		w.lost, w.noLeader = true, true
		return storageLeaderless
	case !r.stopped && !w.stopPending && eligible && now.Sub(w.eligibleSince) >= w.repairDelay(now):
		// Whether JetStream runs as it should, lost its leader (a
		// stopped metadata group leaves it leaderless for good) or was
		// just started again and is not current yet.
		if !w.lastRepair.IsZero() && now.Sub(w.lastRepair) < repairStreakWithin {
			w.streak++
		} else {
			w.streak = 1
		}
		w.lastRepair = now
		w.stoppedSince, w.eligibleSince = nil, time.Time{}
		w.repairing, w.stopPending = true, true
		return storageRepair
	case !w.lost:
		return storageKeep
	case !r.stopped && r.current:
		w.lost, w.noLeader, w.repairing = false, false, false
		return storageBack
	case !r.stopped:
		return storageKeep // restarted; not current yet
	case !settledBefore || r.stopping || now.Sub(w.tried) < storageRetryEvery:
		return storageKeep
	case r.known && r.free < restartNeeds(r.size):
		return storageWait
	case w.repairing && !r.room:
		return storageKeep // the table is full again: a start now would fail part-way
	}
	w.tried = now
	return storageRestart
}

// stoppedFor notes which Raft groups r found stopped, and since when, and
// reports whether one of them has been stopped for stoppedGroupFor.
func (w *storageWatch) stoppedFor(now time.Time, r storageRead) bool {
	if r.stopped || len(r.stoppedGroups) == 0 {
		w.stoppedSince = nil
		return false
	}
	since := make(map[string]time.Time, len(r.stoppedGroups))
	overdue := false
	for _, g := range r.stoppedGroups {
		t, ok := w.stoppedSince[g]
		if !ok {
			t = now
		}
		since[g] = t
		overdue = overdue || now.Sub(t) >= stoppedGroupFor
	}
	w.stoppedSince = since
	return overdue
}

// repairDelay is how long a repair waits once eligible: the jitter, and
// after a repair within repairStreakWithin, repairBackoff doubled for
// each repair in the streak but the first, up to repairBackoffMax.
func (w *storageWatch) repairDelay(now time.Time) time.Duration {
	if w.streak == 0 || now.Sub(w.lastRepair) >= repairStreakWithin {
		return w.jitter
	}
	return w.jitter + min(repairBackoffMax, repairBackoff<<min(w.streak-1, 10))
}

// limit is how long the watch lets JetStream know no leader.
func (w *storageWatch) limit() time.Duration {
	if w.leaderlessFor > 0 {
		return w.leaderlessFor
	}
	return leaderlessFor
}

// restartNeeds is the free space a file system of size bytes needs
// before the watch restarts JetStream on it.
func restartNeeds(size int64) int64 { return min(restartFree, size*freePercent/100) }

// watchStorage runs storageWatch every storageCheckEvery until the node
// stops; it runs only with an embedded JetStream.
func (n *Node) watchStorage(dataDir string) {
	tick := time.NewTicker(storageCheckEvery)
	defer tick.Stop()
	w := storageWatch{leaderlessFor: n.cfg.leaderlessFor, jitter: repairJitter()}
	var waitLogged time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		if n.ctx.Err() != nil {
			return // the tick and the stop came together; the bus may be closing
		}
		now := time.Now()
		r := storageRead{ready: n.ready.Load(), stopped: n.bus.JetStreamStopped()}
		if r.stopped {
			r.stopping = n.bus.JetStreamStopping()
			r.free, r.size, r.known = diskSpace(dataDir)
			r.room = w.repairing && descriptorsFree(stoppedGroupFree)
		} else {
			r.leader = n.bus.JetStreamLeaderKnown()
			r.current = w.lost && r.leader && n.bus.JetStreamCurrent()
			r.stoppedGroups = n.bus.StoppedGroups()
			if len(r.stoppedGroups) > 0 {
				r.room = descriptorsFree(stoppedGroupFree)
				r.peersUp = n.peersUp()
			}
		}
		switch w.next(now, r) {
		case storageLeaderless:
			n.storageLeaderless.Store(true)
			n.storageStopped.Store(true)
			n.metrics.storageStopped.Set(1)
			n.log.Error("the embedded JetStream has known no metadata leader for "+w.limit().String()+" (a majority of the cluster's servers gone, stopped gracefully or not): this node cannot store text and steps aside until one is elected",
				"data", dataDir)
		case storageRepair:
			// Aside now (at the next heartbeat); the stop, which takes a
			// few seconds, at the next check.
			n.storageRepairing.Store(true)
			n.storageLeaderless.Store(false)
			n.storageStopped.Store(true)
			n.metrics.storageStopped.Set(1)
			n.metrics.storageRepairs.Inc()
			n.log.Error("Raft groups of the embedded JetStream stopped on this node (nats-server stops one for good when a write fails, as every file it opens does while the descriptor table is full): this node steps aside, stops its JetStream and starts it again",
				"groups", r.stoppedGroups, "repairs_in_a_row", w.streak)
			w.jitter = repairJitter()
		case storageStop:
			if err := n.bus.StopJetStream(); err != nil {
				// Still running: as before the repair, whose groups are
				// counted afresh.
				n.log.Warn("stopping the embedded JetStream", "err", err)
				w.repairing = false
				n.storageRepairing.Store(false)
				n.storageLeaderless.Store(w.noLeader)
				n.storageStopped.Store(w.lost)
				if !w.lost {
					n.metrics.storageStopped.Set(0)
				}
			}
		case storageLose:
			n.storageLeaderless.Store(false)
			n.storageStopped.Store(true)
			n.metrics.storageStopped.Set(1)
			if w.repairing {
				n.log.Warn("the embedded JetStream stopped, to start its stopped Raft groups again: this node cannot store text and steps aside until it runs", "data", dataDir)
				break
			}
			n.log.Error("the embedded JetStream stopped (nats-server stops it when a write finds the data directory full): this node cannot store text and steps aside until it can",
				"data", dataDir, "free_bytes", r.free, "size_bytes", r.size, "known", r.known)
		case storageWait:
			if now.Sub(waitLogged) >= time.Minute {
				waitLogged = now
				n.log.Warn("waiting for free space in the data directory before restarting JetStream",
					"data", dataDir, "free_bytes", r.free, "want_bytes", restartNeeds(r.size))
			}
		case storageRestart:
			n.metrics.storageRestarts.Inc()
			if err := n.bus.RestartJetStream(); err != nil {
				n.log.Warn("restarting the embedded JetStream", "data", dataDir, "free_bytes", r.free, "err", err)
				continue
			}
			n.log.Info("restarted the embedded JetStream on the data directory", "data", dataDir, "free_bytes", r.free)
		case storageBack:
			n.storageStopped.Store(false)
			n.storageLeaderless.Store(false)
			n.storageRepairing.Store(false)
			n.metrics.storageStopped.Set(0)
			n.log.Info("the embedded JetStream runs and follows its metadata leader again: this node stores text again")
		}
	}
}

// A node on an external bus (--bus) stores nothing itself: the bus's
// nats-servers keep the rooms, and each stops its own JetStream when its
// store directory fills, until its operator reloads or restarts it. One
// such server changes nothing while the others keep a quorum of each
// stream; when every server of the bus has stopped, nothing can be
// stored or loaded, and the node would go on saying up.
//
// watchBusStorage asks the bus for the account's JetStream information
// ($JS.API.INFO) every busCheckEvery, waiting as long for the answer, and
// busStorageWatch decides. JetStream's metadata leader answers; a server
// whose JetStream stopped answers nothing, and a bus electing its
// metadata leader (nats-server's election timeout is 4 to 9 s) answers
// nothing or "cluster not available"; without that leader no room can be
// loaded either (its consumers are created through it). A record the
// node stored since the last question counts as an answer, so that a
// metadata leader slow to answer (it serves these questions after every
// other API request) while the streams store does not look silent. So
// the node steps aside when the bus has said JetStream is not enabled
// (an account or bus without it; no responders) busMissesToLose times in
// a row, or when no question asked in busSilentFor has been answered,
// longer than an election; as when its embedded JetStream stops:
// degraded, /readyz 503, sessions told to attach elsewhere, where a node
// of another bus may take them. After busAnswersToBack answers in a row
// it stores again: a bus that answers a question now and then, among
// silences, would otherwise make the node send its sessions away at
// every silence and take them back at every answer. While the bus is
// unreachable the watch counts nothing: the node steps aside for that
// already (checkMajority).
const (
	busCheckEvery    = 2 * time.Second
	busMissesToLose  = 2
	busAnswersToBack = 2
	busSilentFor     = 15 * time.Second
)

// busVouchFor is how long after it was asked a question the bus's
// JetStream answered vouches for the node (busAnswered): three questions
// missed (one is asked every busCheckEvery, each waiting as long) and a
// fourth under way.
const busVouchFor = 4 * busCheckEvery

// busAnswered is when the latest question the node's external bus's
// JetStream answered was asked, while all the node's connections were
// on one server (onOneServer); when a record the node stored since a
// question stood for the answer, when that earlier question was asked.
// Zero: none, or no external bus. An answer asked within busVouchFor,
// and since the node last saw a majority of its peers, vouches that the
// node can store: it then stays up though it sees no such majority
// (minority.observe), and its rooms remove the members of peers gone
// from the bus (roomEngine.peers): on a bus the bus, not a count of
// peers, says who can store, and the peers it does not see are not on
// the bus.
func (n *Node) busAnswered() time.Time {
	if at := n.busAnsweredAt.Load(); at != nil {
		return *at
	}
	return time.Time{}
}

// onOneServer reports whether every connection of the node to its bus is
// on the server nc is on, so that an answer over nc vouches for all of
// them (busAnswered): a node whose directory connection were on a server
// cut off from the rest of the bus, and its rooms' on the other side,
// would otherwise be vouched for while it sees only the cut-off side.
// The node's connections try the servers in one order (bus.serverOrder);
// they may differ for a moment after one of them moved.
func (n *Node) onOneServer(nc *nats.Conn) bool {
	id := nc.ConnectedServerId()
	if id == "" {
		return false
	}
	for _, c := range n.busConns() {
		if c.ConnectedServerId() != id {
			return false
		}
	}
	return true
}

// busRead is what one question to the bus found.
type busRead int

const (
	busAnswered    busRead = iota // JetStream answered, or stored a record since the last question
	busNoJetStream                // no responders, or JetStream not enabled
	busSilent                     // no answer in time, or no metadata leader
	busUnreachable                // the node is not connected to the bus
)

// busReadNames are the result labels of switchboard_bus_checks_total.
var busReadNames = map[busRead]string{
	busAnswered:    "answered",
	busNoJetStream: "no_jetstream",
	busSilent:      "silent",
	busUnreachable: "unreachable",
}

// busStorageWatch decides, from what watchBusStorage reads, whether the
// node can store on its bus. It reads no clock and does no I/O: the
// caller passes the time of each read.
type busStorageWatch struct {
	misses int       // reads in a row that said JetStream is not enabled
	since  time.Time // when the first of the reads in a row without an answer was asked; zero after an answer
	lost   bool      // stepped aside, and not busAnswersToBack answers in a row since
	// answers counts the reads in a row that were answered.
	answers int
}

// next takes one read, asked at now, and says what to do: storageLose,
// storageBack or storageKeep.
func (w *busStorageWatch) next(now time.Time, r busRead) storageAction {
	if r != busAnswered {
		w.answers = 0
	}
	switch r {
	case busAnswered:
		w.misses, w.since = 0, time.Time{}
		w.answers++
		if w.lost && w.answers >= busAnswersToBack {
			w.lost = false
			return storageBack
		}
		return storageKeep
	case busUnreachable:
		w.misses, w.since = 0, time.Time{}
		return storageKeep
	case busNoJetStream:
		w.misses++
	default:
		w.misses = 0
	}
	if w.since.IsZero() {
		w.since = now
	}
	if !w.lost && (w.misses >= busMissesToLose || now.Sub(w.since) >= busSilentFor) {
		w.lost = true
		return storageLose
	}
	return storageKeep
}

// readBus asks js for the account's JetStream information over nc, for
// at most busCheckEvery. The error is what the question met when it was
// not answered (nil when nc was not connected).
func readBus(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (busRead, error) {
	if !nc.IsConnected() {
		return busUnreachable, nil
	}
	ctx, cancel := context.WithTimeout(ctx, busCheckEvery)
	defer cancel()
	_, err := js.AccountInfo(ctx)
	switch {
	case err == nil:
		return busAnswered, nil
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		// jetstream reports no responders as not enabled.
		return busNoJetStream, err
	case !nc.IsConnected():
		return busUnreachable, err
	default:
		return busSilent, err
	}
}

// watchBusStorage runs busStorageWatch every busCheckEvery, asking js
// over nc, until the node stops; it runs only on an external bus.
func (n *Node) watchBusStorage(nc *nats.Conn, js jetstream.JetStream) {
	tick := time.NewTicker(busCheckEvery)
	defer tick.Stop()
	var w busStorageWatch
	var movedAt time.Time // when the node last moved to another server (nextBusServer)
	split := 0            // reads in a row that found the node's connections on more than one server
	regroupAfter := 2     // reads split before Regroup; doubles while regroups do not hold (a server in lame duck)
	var askedBefore time.Time
	storedBefore := n.rooms.stored.Load()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		case <-n.busAsk:
		}
		asked, stored := time.Now(), n.rooms.stored.Load()
		r, err := readBus(n.ctx, nc, js)
		if n.ctx.Err() != nil {
			return
		}
		answered := asked
		if r == busSilent && stored != storedBefore {
			r = busAnswered // the streams store; their metadata leader is slow
			// A record stored since the question before: the bus
			// answered at some time after that question was asked.
			answered = askedBefore
		}
		storedBefore, askedBefore = stored, asked
		grouped := n.onOneServer(nc)
		if r == busAnswered && !answered.IsZero() && grouped {
			n.busAnsweredAt.Store(&answered)
		}
		n.metrics.busChecks[r].Inc()
		if r != busAnswered {
			n.log.Debug("the bus's JetStream did not answer", "found", busReadNames[r], "connected_to", nc.ConnectedUrlRedacted(), "err", err)
		}
		switch w.next(asked, r) {
		case storageLose:
			n.storageStopped.Store(true)
			n.metrics.storageStopped.Set(1)
			n.log.Error("the bus's JetStream does not serve this node (nats-server stops its JetStream when its store directory is full, until it is reloaded): this node cannot store text and steps aside until it can",
				"connected_to", nc.ConnectedUrlRedacted(), "found", busReadNames[r], "err", err)
		case storageBack:
			n.storageStopped.Store(false)
			n.metrics.storageStopped.Set(0)
			n.log.Info("the bus's JetStream answers again: this node stores text again")
		}
		if w.lost && r == busSilent && asked.Sub(movedAt) >= busSilentFor && n.ctx.Err() == nil && n.nextBusServer(nc) {
			movedAt, split = asked, 0
			continue
		}
		// Connections split over servers for two reads in a row (not a
		// move under way) go back to one (bus.Regroup); a regroup that
		// does not hold (its server refuses them: lame duck) is tried
		// again ever later, up to every minute.
		if split++; grouped {
			n.bus.Regrouped()
			split, regroupAfter = 0, 2
		}
		if split >= regroupAfter && n.ctx.Err() == nil {
			split = 0
			if moved := n.bus.Regroup(n.busConns()); moved > 0 {
				regroupAfter = min(2*regroupAfter, 30)
				n.log.Info("the node's connections to its bus were on more than one server: moving them to one", "moved", moved)
			}
		}
	}
}

// nextBusServer moves every connection of the node to the next server of
// its bus, the one after the current in the node's order (nats.go's
// ForceReconnect), and reports whether it did: not when --bus names only
// one server. The server the node is on may be cut off from the rest of
// the bus: it answers the connections' pings, so they stay, but its
// JetStream has no metadata leader and never answers. The rest of the
// bus is reachable through the servers named in --bus; those the cut-off
// server gossiped, it stops naming once it finds its routes gone, and
// nats.go drops them then, so they are not counted. watchBusStorage
// calls it once the node has stepped aside for its bus's silence, and
// again every busSilentFor while the silence lasts (not for a bus that
// says it runs no JetStream: moving would not change that); where the
// whole bus is silent (electing) the node only changes servers.
func (n *Node) nextBusServer(nc *nats.Conn) bool {
	if named := len(nc.Servers()) - len(nc.DiscoveredServers()); named < 2 || !nc.IsConnected() {
		return false
	}
	n.log.Warn("the bus's JetStream does not answer the node on its server: moving the node's connections to the next server", "server", nc.ConnectedServerName())
	n.bus.NextServer(n.busConns())
	return true
}

// busConns are the node's connections to its bus: its own, the
// directory's and the rooms'.
func (n *Node) busConns() []*nats.Conn {
	return append([]*nats.Conn{n.bus.Conn, n.bus.Dir}, n.rooms.conns...)
}
