package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/drain"
	"github.com/switchboard/switchboard/wire"
)

// aloneAfter is how long a drain that may give up (Leave, on SIGTERM)
// waits while no other node is up before it stops waiting for moves that
// cannot happen: the sessions have nowhere to go.
const aloneAfter = time.Second

// DrainStatus is where a drain to empty stands, as GET /v1/drain reports
// it.
type DrainStatus struct {
	// Node is the node's ID, Status its status.
	Node   string           `json:"node"`
	Status directory.Status `json:"status"`
	// Draining: the node admits no new session.
	Draining bool `json:"draining"`
	// Paced: a drain to empty was started (Drain); the fields below
	// describe it.
	Paced bool `json:"paced"`
	// Started and Deadline bound the drain's window.
	Started  time.Time `json:"started,omitzero"`
	Deadline time.Time `json:"deadline,omitzero"`
	// Total is the sessions attached when it started; Asked how many
	// were asked to move so far; Reasked how many asks went again to a
	// session still attached drain.ReaskAfter (20 s) after its last ask
	// (its move failed), while another node was up, at most
	// drain.MaxAsks (3) asks a session; Sessions how many are attached
	// now.
	Total    int `json:"total"`
	Asked    int `json:"asked"`
	Reasked  int `json:"reasked"`
	Sessions int `json:"sessions"`
	// Closed counts the sessions closed with "shutdown" at the deadline
	// (clients that ignored the ask, or had nowhere to go).
	Closed int `json:"closed"`
	// Done: the drain ended, Empty: with no session left.
	Done  bool `json:"done"`
	Empty bool `json:"empty"`
	// Reason says how it ended: "empty", "deadline", "alone" (no other
	// node up to move to) or "cancelled".
	Reason string `json:"reason,omitempty"`
}

// drainRun is one drain to empty. mu guards the fields after it, which
// Status reads and a stop joining the drain writes; only the drain loop
// changes plan.
type drainRun struct {
	stop     chan struct{} // closed by SetDraining(false)
	done     chan struct{} // closed when the loop ends
	wake     chan struct{} // a stop joined: the loop looks at stopBy at once
	stopOnce sync.Once

	mu      sync.Mutex
	plan    drain.Plan
	giveUp  bool      // stop waiting when no other node is up (Leave)
	stopBy  time.Time // a stop's grace ends then (DrainToStop); zero: none
	asked   int       // sessions asked (once or more)
	reasked int       // asks again
	closed  int
	reason  string
}

// Drain starts a drain to empty: the node admits no new session, asks
// its attached sessions to move (the "move" message) in batches spread
// over within (package drain), and at the deadline closes whoever is
// left with "shutdown". It returns at once, with a channel closed when
// the drain ends: the node is empty or the deadline passed. The node
// stays draining afterwards, until SetDraining(false) or shutdown. A
// drain already under way keeps its schedule, and Drain returns its
// channel; one cancelled (SetDraining(false)) is over, whether or not
// its loop has ended yet.
//
// A session still attached drain.ReaskAfter after its ask (its move
// failed) is asked again while another node is up, at most drain.MaxAsks
// times in one drain. Each drain asks every session afresh: one asked by
// a drain cancelled since, or by the rebalancer, is asked again.
func (n *Node) Drain(within time.Duration) <-chan struct{} { return n.startDrain(within, false) }

// DrainToStop is Drain for a node about to stop (SIGTERM with a grace):
// the same paced drain, except that it also ends once no other node has
// been up for a second, when the sessions have nowhere to move, rather
// than holding the stop until the deadline. The caller then calls
// Shutdown. Joining a drain under way whose deadline comes after within
// from now, it re-plans the sessions not yet asked over within
// (drain.Plan.Hasten), so that they are all asked before the stop.
func (n *Node) DrainToStop(within time.Duration) <-chan struct{} { return n.startDrain(within, true) }

func (n *Node) startDrain(within time.Duration, giveUp bool) <-chan struct{} {
	n.drainMu.Lock()
	defer n.drainMu.Unlock()
	if d := n.drainRun; d != nil {
		select {
		case <-d.done:
		case <-d.stop:
			// Cancelled, its loop not yet ended: a drain asked for
			// now is a new one, not that one's end.
		default:
			if giveUp {
				by := time.Now().Add(within)
				d.mu.Lock()
				d.giveUp = true
				if d.stopBy.IsZero() || by.Before(d.stopBy) {
					d.stopBy = by
				}
				d.mu.Unlock()
				select {
				case d.wake <- struct{}{}:
				default: // a wake pending already
				}
			}
			return d.done
		}
	}
	n.SetDraining(true)
	now := time.Now()
	d := &drainRun{plan: drain.New(now, within, n.Users()), giveUp: giveUp,
		stop: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	n.drainRun = d
	n.log.Info("drain started", "within", within, "sessions", d.plan.Total(), "deadline", d.plan.Deadline().Format(time.RFC3339Nano))
	if n.ctx == nil || n.ctx.Err() != nil {
		d.reason = "stopped"
		close(d.done)
		return d.done
	}
	n.wg.Go(func() { n.drainLoop(d) })
	return d.done
}

// DrainStatus reports the drain under way or the last one.
func (n *Node) DrainStatus() DrainStatus {
	st := DrainStatus{Node: n.cfg.ID, Status: n.Status(), Draining: n.draining.Load(), Sessions: n.Users()}
	n.drainMu.Lock()
	d := n.drainRun
	n.drainMu.Unlock()
	if d == nil {
		return st
	}
	st.Paced = true
	// done first, the fields after: the loop's end sets the reason under
	// d.mu, then closes done, so a drain seen done has its reason to
	// read. The other way round, the end could come between the two
	// reads, and a status said done with no reason (which drain, the
	// command, reports as a drain that ended before the node was empty).
	select {
	case <-d.done:
		st.Done = true
	default:
	}
	d.mu.Lock()
	st.Started = d.plan.Deadline().Add(-d.plan.Window())
	st.Deadline = d.plan.Deadline()
	st.Total = d.plan.Total()
	st.Asked, st.Reasked, st.Closed, st.Reason = d.asked, d.reasked, d.closed, d.reason
	d.mu.Unlock()
	st.Empty = st.Sessions == 0
	return st
}

// cancelDrainLocked stops a drain under way (SetDraining(false), which
// holds drainMu); the sessions already asked have moved or are moving.
func (n *Node) cancelDrainLocked() {
	d := n.drainRun
	if d != nil {
		d.stopOnce.Do(func() { close(d.stop) })
	}
}

// drainLoop asks the sessions to move on the plan's schedule until the
// node is empty, the deadline passes, or the drain is cancelled. It asks
// again, while another node is up, the sessions whose asks went stale
// (drain.Asks, its own: a drain asks every session afresh).
func (n *Node) drainLoop(d *drainRun) {
	end := func(reason string) {
		d.mu.Lock()
		d.reason = reason
		asked, reasked, closed := d.asked, d.reasked, d.closed
		d.mu.Unlock()
		n.log.Info("drain ended", "reason", reason, "asked", asked, "reasked", reasked, "closed", closed, "sessions", n.Users())
		close(d.done)
	}
	asks := drain.NewAsks[*session](n.cfg.MoveReaskAfter, drain.MaxAsks)
	plan := d.plan // the loop's own; it changes d.plan under d.mu
	tick := time.NewTicker(plan.Tick())
	defer tick.Stop()
	var aloneSince time.Time
	for {
		now := time.Now()
		if n.Users() == 0 {
			end("empty")
			return
		}
		d.mu.Lock()
		giveUp, stopBy, asked := d.giveUp, d.stopBy, d.asked
		d.mu.Unlock()
		if !stopBy.IsZero() && stopBy.Before(plan.Deadline()) {
			// A stop joined, its grace shorter than what is left.
			plan = plan.Hasten(now, stopBy, asked, n.notAsked(asks))
			d.mu.Lock()
			d.plan = plan
			d.mu.Unlock()
			tick.Reset(plan.Tick())
			n.log.Info("drain hastened for a stop", "deadline", plan.Deadline().Format(time.RFC3339Nano), "asked", asked)
		}
		up := n.otherNodeUp()
		if giveUp && !up {
			if aloneSince.IsZero() {
				aloneSince = now
			} else if now.Sub(aloneSince) >= aloneAfter {
				n.closeRest(d, "no other node is up")
				end("alone")
				return
			}
		} else {
			aloneSince = time.Time{}
		}
		if plan.Expired(now) {
			n.closeRest(d, "the drain's deadline passed")
			end("deadline")
			return
		}
		due, all := plan.Due(now)
		first := max(due-asked, 0)
		if all {
			first = -1
		}
		again := 0
		if up {
			again = -1
		}
		firsts, agains := n.askToMove(asks, now, up, first, again, nil, "is draining")
		if firsts+agains > 0 {
			d.mu.Lock()
			d.asked += firsts
			d.reasked += agains
			d.mu.Unlock()
		}
		if agains > 0 {
			n.log.Info("drain: asked sessions again whose move failed", "sessions", agains)
		}
		select {
		case <-tick.C:
		case <-d.wake:
		case <-d.stop:
			end("cancelled")
			return
		case <-n.ctx.Done():
			end("stopped")
			return
		}
	}
}

// otherNodeUp reports whether the directory lists another node up: one a
// moving session could attach to.
func (n *Node) otherNodeUp() bool {
	for _, e := range n.view.Load().nodes {
		if e.ID != n.cfg.ID && e.Status == directory.Up {
			return true
		}
	}
	return false
}

// notAsked counts the sessions on the node that asks has never asked.
func (n *Node) notAsked(asks *drain.Asks[*session]) int {
	n.sessionsMu.Lock()
	defer n.sessionsMu.Unlock()
	k := 0
	for s := range n.sessions {
		if asks.Times(s) == 0 {
			k++
		}
	}
	return k
}

// askToMove sends "move", saying why, to attached sessions that asks
// allows at now (up: another node is up to move to) and eligible accepts
// (nil: any): up to first sessions never asked, and up to again sessions
// asked before whose asks went stale (a bound below zero: all of them).
// It records each ask in asks, which the caller's loop owns, and returns
// how many of each it asked. A session is asked only once its attached
// answer is queued, so that the move comes after it; one that attaches
// as a drain begins is asked at one of its later ticks.
func (n *Node) askToMove(asks *drain.Asks[*session], now time.Time, up bool, first, again int, eligible func(*session) bool, why string) (firsts, agains int) {
	var batch []*session
	nf, na := 0, 0
	n.sessionsMu.Lock()
	for s := range n.sessions {
		if first >= 0 && nf >= first && again >= 0 && na >= again {
			break
		}
		if !s.answered.Load() || !asks.Askable(s, now, up) || (eligible != nil && !eligible(s)) {
			continue
		}
		if asks.Times(s) == 0 {
			if first >= 0 && nf >= first {
				continue
			}
			nf++
		} else {
			if again >= 0 && na >= again {
				continue
			}
			na++
		}
		batch = append(batch, s)
	}
	n.sessionsMu.Unlock()
	for _, s := range batch {
		line, ok := n.moveFor(s, why)
		if !ok {
			continue
		}
		if asks.Asked(s, now) > 1 {
			agains++
		} else {
			firsts++
		}
		s.push(line)
	}
	return firsts, agains
}

// moveFor is s's move message, saying why (moveLine); false, logged,
// when it cannot be encoded.
func (n *Node) moveFor(s *session, why string) ([]byte, bool) {
	line, err := s.moveLine(why)
	if err != nil {
		n.log.Error("encoding a move", "session", s.id, "err", err)
		return nil, false
	}
	return line, true
}

// moveLine is the move message for s: its view of a fresh directory (the
// whole one while it fits in a line, as for refusals), in which this node
// is draining (degraded, when it is), whatever the view has caught up
// with yet.
func (s *session) moveLine(why string) ([]byte, error) {
	n := s.n
	m := wire.Message{Op: wire.OpMove,
		Message: fmt.Sprintf("node %s %s; attach to another node, join your rooms there, then close this connection", n.cfg.ID, why)}
	reserve := 256
	if b, err := wire.Encode(m); err == nil {
		reserve = len(b) + 1 // and the comma before "directory"
	}
	dir := s.viewDirectory(reserve)
	self := directory.Draining
	if n.degraded.Load() {
		self = directory.Degraded
	}
	for i := range dir.Nodes {
		if dir.Nodes[i].ID == n.cfg.ID {
			dir.Nodes[i].Status = self
		}
	}
	m.Dir = dir
	return wire.Encode(m)
}

// closeRest closes every session still on the node with "shutdown".
func (n *Node) closeRest(d *drainRun, why string) {
	n.sessionsMu.Lock()
	rest := make([]*session, 0, len(n.sessions))
	for s := range n.sessions {
		rest = append(rest, s)
	}
	n.sessionsMu.Unlock()
	if len(rest) > 0 {
		n.log.Info("drain: closing the sessions left", "sessions", len(rest), "why", why)
	}
	reason := wire.Errorf(wire.CodeShutdown, "node %s is draining and %s", n.cfg.ID, why)
	reason.Fatal = true
	closeSessions(rest, reason)
	d.mu.Lock()
	d.closed += len(rest)
	d.mu.Unlock()
}
