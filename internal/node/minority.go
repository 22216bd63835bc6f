package node

import (
	"time"

	"github.com/switchboard/switchboard/directory"
)

// minority decides from this node's directory whether the node still sees
// a majority of the cluster it has known, and so whether it should step
// aside (status degraded). It reads no clock and does no I/O: the caller
// passes the time and the directory.
//
// The cluster it has known is this node and every peer it has seen
// reachable (any status but down) and heard from twice, minus the peers
// that said they were leaving. Heard twice: an entry published once and
// never again (a forgery under a made-up ID, or a node that died at
// once) would otherwise count for good, and a few of them would keep the
// node from ever seeing a majority again, so from ever forgetting them. A peer partitioned away or paused stays counted, whether or
// not the directory still lists it, so a node cut off alone does not come
// to think it is a cluster of one. A peer not seen for the forget
// interval is forgotten (it died for good and did not say goodbye), but
// that interval runs only while the node sees a majority: a node cut off
// from the others stays degraded however long the cut lasts, where
// forgetting them would make it up, alone, unable to store anything.
//
// Both ways need the grace: the node is degraded once it has seen no
// majority for the grace, and up again once it has seen one at every
// observation for the grace, so that a link or a peer at the edge of the
// table's timeout does not make it flap between up and degraded.
//
// On an external bus the bus's word stands for a majority (observe's
// answered, vouchFor): "sees a majority" above, the forget interval and
// held included, then reads "sees a majority or is vouched for".
type minority struct {
	self   string
	forget time.Duration // how long a peer not seen stays counted, in time with a majority
	grace  time.Duration // how long without a majority before degraded, and with one before up again
	// seen holds, for each peer counted, the held time when it was last
	// seen reachable.
	seen map[string]time.Duration
	// heard holds, for each peer reachable at the last observation and
	// not yet counted, when it was last heard from as of then: it counts
	// once heard from again.
	heard map[string]time.Time
	// held is the time the node has seen a majority, summed over the
	// spans between two observations that both saw one; last is the
	// previous observation, lastHeld whether it saw a majority.
	held     time.Duration
	last     time.Time
	lastHeld bool
	lostAt   time.Time // when the majority was lost; zero while held
	backAt   time.Time // when a degraded node saw the majority again; zero while it does not
	// degraded: the grace passed without a majority, and the majority has
	// not been held for the grace since.
	degraded bool
	// byBus: the last observation saw no majority of peers and held only
	// because the bus vouched for the node.
	byBus bool
	// minoritySince: since when the node has seen no majority of its
	// peers (zero while it sees one); only an answer to a question asked
	// since then vouches for it.
	minoritySince time.Time
	// vouchFor is how long an answer from the node's external bus vouches
	// for it (busVouchFor); zero without an external bus: never.
	vouchFor time.Duration
}

// heardAgain is how much later than before a peer must have been last
// heard from to count as heard again: more than the wobble of a time
// rebuilt from an age in whole milliseconds, far less than a heartbeat.
const heardAgain = 5 * time.Millisecond

func newMinority(self string, forget, grace time.Duration) *minority {
	return &minority{self: self, forget: forget, grace: grace, seen: make(map[string]time.Duration), heard: make(map[string]time.Time)}
}

// observe takes the directory, whose ages are as of taken, at now and
// reports whether the node is degraded. Unreachable forces the majority
// lost (for instance: the external bus is unreachable, so the directory
// is not current). Answered is when the latest question the node's
// external bus's JetStream answered was asked (zero: none, or no bus):
// an answer to a question asked since the node last saw a majority, and
// at most vouchFor ago, holds the majority whatever the node sees of its
// peers (vouched), since the node can store and a peer it does not see
// is not on the bus. An answer from before the peers vanished vouches
// for nothing: a node cut off from its bus still holds one for a while.
// Unreachable wins over vouched.
func (m *minority) observe(nodes []directory.Node, taken time.Time, unreachable bool, answered, now time.Time) bool {
	if m.lastHeld {
		m.held += max(0, now.Sub(m.last))
	}
	up := 1 // this node
	heard := make(map[string]time.Time, len(m.heard))
	for i := range nodes {
		n := &nodes[i]
		if n.ID == m.self || n.Status == directory.Down {
			continue
		}
		if _, ok := m.seen[n.ID]; !ok {
			// Ages come in whole milliseconds: the time rebuilt from one
			// wobbles by up to one from view to view. Heard again, a peer
			// moves it by a heartbeat.
			at := taken.Add(-time.Duration(n.AgeMS) * time.Millisecond)
			if before, ok := m.heard[n.ID]; !ok || at.Sub(before) <= heardAgain {
				if !ok {
					before = at
				}
				heard[n.ID] = before // not counted until heard from again
				continue
			}
		}
		m.seen[n.ID] = m.held
		up++
	}
	m.heard = heard
	majority := 2*up > 1+len(m.seen)
	if majority {
		m.minoritySince = time.Time{}
	} else if m.minoritySince.IsZero() {
		m.minoritySince = now
	}
	vouched := m.vouchFor > 0 && !answered.IsZero() && now.Sub(answered) <= m.vouchFor && !answered.Before(m.minoritySince)
	held := (majority || vouched) && !unreachable
	m.byBus = held && !majority
	if held {
		for id, at := range m.seen {
			if m.held-at > m.forget {
				delete(m.seen, id)
			}
		}
	}
	m.last, m.lastHeld = now, held
	switch {
	case held && !m.degraded:
		m.lostAt, m.backAt = time.Time{}, time.Time{}
	case held:
		if m.backAt.IsZero() {
			m.backAt = now
		}
		if now.Sub(m.backAt) >= m.grace {
			m.lostAt, m.backAt, m.degraded = time.Time{}, time.Time{}, false
		}
	default:
		m.backAt = time.Time{}
		if m.lostAt.IsZero() {
			m.lostAt = now
		}
		m.degraded = m.degraded || now.Sub(m.lostAt) >= m.grace
	}
	return m.degraded
}

// recovering reports whether a degraded node sees a majority again and
// waits out the grace before it is up.
func (m *minority) recovering() bool { return m.degraded && !m.backAt.IsZero() }

// degradedFor is how long the node has been without a majority past the
// grace period: 0 while it sees one (also while it waits out the grace
// to be up again) or is within the grace.
func (m *minority) degradedFor(now time.Time) time.Duration {
	if m.lostAt.IsZero() || !m.backAt.IsZero() {
		return 0
	}
	return max(0, now.Sub(m.lostAt)-m.grace)
}

// goodbye takes what the directory table made of a peer's entry, c, and
// forgets the peer if the table took it down by the peer's own word: a
// graceful stop shrinks the cluster. An entry saying down that the table
// did not take (older than what it holds, refused, or this node's own)
// forgets no one: a delayed goodbye from a peer's previous run would
// otherwise shrink the cluster this node counts, and a majority would
// be easier to reach than it is.
func (m *minority) goodbye(c directory.Change) {
	if c.ID == m.self || c.To != directory.Down {
		return
	}
	switch c.Kind {
	case directory.Added, directory.Refreshed, directory.StatusChanged:
		delete(m.seen, c.ID)
		delete(m.heard, c.ID)
	}
}
