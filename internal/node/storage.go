package node

import (
	"time"
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
const (
	storageCheckEvery = time.Second
	storageRetryEvery = 5 * time.Second
	restartFree       = 64 << 20
	freePercent       = 10
)

// storageWatch decides, from what watchStorage reads each second, what
// the node does about its embedded JetStream. It reads no clock and does
// no I/O: the caller passes the time and what it read.
type storageWatch struct {
	lost    bool      // JetStream stopped, and not current again since
	tried   time.Time // the last restart attempt
	settled bool      // the last read found JetStream stopped, and the stop finished
}

// storageAction is what storageWatch.next tells the node to do.
type storageAction int

const (
	storageKeep    storageAction = iota // nothing changes
	storageLose                         // JetStream stopped: step aside
	storageWait                         // stopped, and too little space to restart
	storageRestart                      // stopped, with space: restart it now
	storageBack                         // running and current again: store again
)

// storageRead is what the watch read: whether JetStream is stopped and
// whether nats-server is still taking it down, whether it follows its
// metadata leader, and the data directory's free space and size (known
// false when they could not be read).
type storageRead struct {
	stopped, stopping, current bool
	free, size                 int64
	known                      bool
}

// next takes what was read at now and says what to do. A restart waits
// for two reads in a row that find the stop finished, so that no part of
// nats-server's stop is left to take down what the restart starts.
func (w *storageWatch) next(now time.Time, r storageRead) storageAction {
	settledBefore := w.settled
	w.settled = r.stopped && !r.stopping
	switch {
	case !w.lost && r.stopped:
		w.lost = true
		return storageLose
	case !w.lost:
		return storageKeep
	case !r.stopped && r.current:
		w.lost = false
		return storageBack
	case !r.stopped:
		return storageKeep // restarted; not current yet
	case !settledBefore || r.stopping || now.Sub(w.tried) < storageRetryEvery:
		return storageKeep
	case r.known && r.free < restartNeeds(r.size):
		return storageWait
	}
	w.tried = now
	return storageRestart
}

// restartNeeds is the free space a file system of size bytes needs
// before the watch restarts JetStream on it.
func restartNeeds(size int64) int64 { return min(restartFree, size*freePercent/100) }

// watchStorage runs storageWatch every storageCheckEvery until the node
// stops; it runs only with an embedded JetStream.
func (n *Node) watchStorage(dataDir string) {
	tick := time.NewTicker(storageCheckEvery)
	defer tick.Stop()
	var w storageWatch
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
		r := storageRead{stopped: n.bus.JetStreamStopped()}
		if r.stopped {
			r.stopping = n.bus.JetStreamStopping()
			r.free, r.size, r.known = diskSpace(dataDir)
		} else if w.lost {
			r.current = n.bus.JetStreamCurrent()
		}
		switch w.next(now, r) {
		case storageLose:
			n.storageStopped.Store(true)
			n.metrics.storageStopped.Set(1)
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
			n.metrics.storageStopped.Set(0)
			n.log.Info("the embedded JetStream runs again and follows its metadata leader: this node stores text again")
		}
	}
}
