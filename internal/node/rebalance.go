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
// up, it compares its sessions with the mean of the up nodes' in its
// directory, and asks its surplus to move (the same "move" as a drain)
// as drain.Rebalancer decides: only after the excess held, at most Rate a
// second, down to the mean and never below. Sessions younger than
// RebalanceMinAge are never asked, nor any asked before.
func (n *Node) rebalanceLoop() {
	r := drain.NewRebalancer(n.cfg.Rebalance)
	tick := time.NewTicker(rebalanceEvery)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		if n.Status() != directory.Up {
			r.Step(now, 0, nil) // resets the hold
			continue
		}
		self, asked := n.Users(), n.askedHere()
		loads := []int{self}
		for _, e := range n.view.Load().nodes {
			if e.ID != n.cfg.ID && e.Status == directory.Up {
				loads = append(loads, e.Users)
			}
		}
		want := r.Step(now, self-asked, loads)
		if want == 0 {
			continue
		}
		oldEnough := func(s *session) bool { return now.Sub(s.attachAt) >= n.cfg.RebalanceMinAge }
		if got := n.askToMove(want, oldEnough, "is rebalancing its load"); got > 0 {
			n.log.Info("rebalancing: asked sessions to move", "asked", got, "sessions", self, "nodes_up", len(loads))
		}
	}
}

// askedHere counts the attached sessions asked to move that have not
// left yet.
func (n *Node) askedHere() int {
	n.sessionsMu.Lock()
	defer n.sessionsMu.Unlock()
	k := 0
	for s := range n.sessions {
		if s.attached.Load() && s.moveAsked.Load() {
			k++
		}
	}
	return k
}
