package node

import (
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/drain"
)

// rebalanceEvery is how often a node with Config.Rebalance on checks its
// load against the mean.
const rebalanceEvery = 250 * time.Millisecond

// rebalanceLoop evens out the load (Config.Rebalance): while the node is
// up or full, it compares its load, sessions over capacity, with the mean load of
// the up nodes in its directory, and asks its surplus to move (the same
// "move" as a drain) as drain.Rebalancer decides: only after the excess
// held, at most Rate a second, down to the mean load times its capacity
// and never below, never more than the others have room for. Sessions
// younger than RebalanceMinAge are never asked. A session asked is
// counted as on its way elsewhere until its ask goes stale
// (drain.ReaskAfter); one still attached then counts as staying, and may
// be asked again, at most drain.MaxAsks times. While the node is neither
// up nor full (draining, say), it forgets its asks: a drain asks every session
// afresh, and after one the rebalancer starts over.
func (n *Node) rebalanceLoop() {
	r := drain.NewRebalancer(n.cfg.Rebalance)
	asks := drain.NewAsks[*session](n.cfg.MoveReaskAfter, drain.MaxAsks)
	tick := time.NewTicker(rebalanceEvery)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		// A full node sheds too (it is the most loaded), and keeps its
		// asks across a flip between up and full; draining, starting or
		// stepped aside it does not.
		if st := n.Status(); st != directory.Up && st != directory.Full {
			r.Step(now, drain.Load{}, 0, nil) // resets the hold
			if asks.Len() > 0 {
				asks = drain.NewAsks[*session](n.cfg.MoveReaskAfter, drain.MaxAsks)
			}
			continue
		}
		self := drain.Load{Users: n.Users(), Capacity: int(n.capacity.Load())}
		var others []drain.Load
		for _, e := range n.view.Load().nodes {
			if e.ID != n.cfg.ID && e.Status == directory.Up {
				others = append(others, drain.Load{Users: e.Users, Capacity: e.Capacity})
			}
		}
		want := r.Step(now, self, n.onTheirWay(asks, now), others)
		if want == 0 {
			continue
		}
		oldEnough := func(s *session) bool { return now.Sub(s.attachAt) >= n.cfg.RebalanceMinAge }
		why := "is rebalancing its load"
		firsts, _ := n.askToMove(asks, now, true, want, 0, oldEnough, why)
		agains := 0
		if firsts < want {
			_, agains = n.askToMove(asks, now, true, 0, want-firsts, oldEnough, why)
		}
		if firsts+agains > 0 {
			n.log.Info("rebalancing: asked sessions to move", "asked", firsts, "reasked", agains, "sessions", self.Users, "capacity", self.Capacity, "nodes_up", len(others)+1)
		}
	}
}

// onTheirWay counts the attached sessions asks asked to move whose asks
// are not stale at now: sessions on their way elsewhere. It forgets the
// sessions that left.
func (n *Node) onTheirWay(asks *drain.Asks[*session], now time.Time) int {
	n.sessionsMu.Lock()
	defer n.sessionsMu.Unlock()
	k := 0
	asks.Keep(func(s *session) bool {
		_, here := n.sessions[s]
		if here && s.attached.Load() && asks.Pending(s, now) {
			k++
		}
		return here
	})
	return k
}
