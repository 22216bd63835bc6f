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
// reachable (any status but down) in the last forget interval, minus the
// peers that said they were leaving. A peer partitioned away or paused
// stays counted, whether or not the directory still lists it, so a node
// cut off alone does not come to think it is a cluster of one.
type minority struct {
	self   string
	forget time.Duration        // how long a peer not seen stays counted
	grace  time.Duration        // how long without a majority before degraded
	seen   map[string]time.Time // peer -> when last seen reachable
	lostAt time.Time            // when the majority was lost; zero while held
}

func newMinority(self string, forget, grace time.Duration) *minority {
	return &minority{self: self, forget: forget, grace: grace, seen: make(map[string]time.Time)}
}

// observe takes the directory as of now and reports whether the node is
// degraded: it has seen no majority for at least the grace period.
// Unreachable forces the majority lost (for instance: the external bus is
// unreachable, so the directory is not current).
func (m *minority) observe(nodes []directory.Node, unreachable bool, now time.Time) bool {
	up := 1 // this node
	for i := range nodes {
		n := &nodes[i]
		if n.ID == m.self || n.Status == directory.Down {
			continue
		}
		m.seen[n.ID] = now
		up++
	}
	for id, at := range m.seen {
		if now.Sub(at) > m.forget {
			delete(m.seen, id)
		}
	}
	if known := 1 + len(m.seen); 2*up > known && !unreachable {
		m.lostAt = time.Time{}
		return false
	}
	if m.lostAt.IsZero() {
		m.lostAt = now
	}
	return now.Sub(m.lostAt) >= m.grace
}

// degradedFor is how long the node has been without a majority past the
// grace period (0 while it has one or is within the grace).
func (m *minority) degradedFor(now time.Time) time.Duration {
	if m.lostAt.IsZero() {
		return 0
	}
	return max(0, now.Sub(m.lostAt)-m.grace)
}

// left forgets a peer that announced it is leaving: a graceful stop
// shrinks the cluster.
func (m *minority) left(id string) { delete(m.seen, id) }
