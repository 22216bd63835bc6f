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
	// were asked to move so far; Sessions how many are attached now.
	Total    int `json:"total"`
	Asked    int `json:"asked"`
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

// drainRun is one drain to empty. The drain loop owns plan; mu guards
// the rest, which Status reads.
type drainRun struct {
	plan     drain.Plan
	giveUp   bool          // stop waiting when no other node is up (Leave)
	stop     chan struct{} // closed by SetDraining(false)
	done     chan struct{} // closed when the loop ends
	stopOnce sync.Once

	mu     sync.Mutex
	asked  int
	closed int
	reason string
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
func (n *Node) Drain(within time.Duration) <-chan struct{} { return n.startDrain(within, false) }

// DrainToStop is Drain for a node about to stop (SIGTERM with a grace):
// the same paced drain, except that it also ends once no other node has
// been up for a second, when the sessions have nowhere to move, rather
// than holding the stop until the deadline. The caller then calls
// Shutdown.
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
				d.mu.Lock()
				d.giveUp = true
				d.mu.Unlock()
			}
			return d.done
		}
	}
	n.SetDraining(true)
	now := time.Now()
	d := &drainRun{plan: drain.New(now, within, n.Users()), giveUp: giveUp, stop: make(chan struct{}), done: make(chan struct{})}
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
	st.Started = d.plan.Deadline().Add(-d.plan.Window())
	st.Deadline = d.plan.Deadline()
	st.Total = d.plan.Total()
	d.mu.Lock()
	st.Asked, st.Closed, st.Reason = d.asked, d.closed, d.reason
	d.mu.Unlock()
	select {
	case <-d.done:
		st.Done = true
	default:
	}
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
// node is empty, the deadline passes, or the drain is cancelled.
func (n *Node) drainLoop(d *drainRun) {
	end := func(reason string) {
		d.mu.Lock()
		d.reason = reason
		asked, closed := d.asked, d.closed
		d.mu.Unlock()
		n.log.Info("drain ended", "reason", reason, "asked", asked, "closed", closed, "sessions", n.Users())
		close(d.done)
	}
	tick := time.NewTicker(d.plan.Tick())
	defer tick.Stop()
	var aloneSince time.Time
	for {
		now := time.Now()
		if n.Users() == 0 {
			end("empty")
			return
		}
		d.mu.Lock()
		giveUp := d.giveUp
		d.mu.Unlock()
		if giveUp && !n.otherNodeUp() {
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
		if d.plan.Expired(now) {
			n.closeRest(d, "the drain's deadline passed")
			end("deadline")
			return
		}
		due, all := d.plan.Due(now)
		d.mu.Lock()
		want := due - d.asked
		d.mu.Unlock()
		if all {
			want = -1
		}
		if want != 0 {
			asked := n.askToMove(want, nil, "is draining")
			d.mu.Lock()
			d.asked += asked
			d.mu.Unlock()
		}
		select {
		case <-tick.C:
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

// askToMove sends "move" to up to max attached sessions not asked yet
// (all of them when max < 0) that eligible accepts (nil: any), saying
// why, and returns how many it asked. A session is asked only once its
// attached answer is queued, so that the move comes after it; one that
// attaches as a drain begins is asked at one of its later ticks.
func (n *Node) askToMove(max int, eligible func(*session) bool, why string) int {
	var batch []*session
	n.sessionsMu.Lock()
	for s := range n.sessions {
		if max >= 0 && len(batch) >= max {
			break
		}
		if s.answered.Load() && !s.moveAsked.Load() && (eligible == nil || eligible(s)) {
			batch = append(batch, s)
		}
	}
	n.sessionsMu.Unlock()
	asked := 0
	for _, s := range batch {
		if !s.moveAsked.CompareAndSwap(false, true) {
			continue // asked meanwhile, by another caller
		}
		line, err := s.moveLine(why)
		if err != nil {
			s.moveAsked.Store(false)
			n.log.Error("encoding a move", "session", s.id, "err", err)
			continue
		}
		s.push(line)
		asked++
	}
	return asked
}

// moveLine is the move message for s: its view of a fresh directory (the
// whole one while it fits in a line, as for refusals), in which this node
// is draining, whatever the view has caught up with yet.
func (s *session) moveLine(why string) ([]byte, error) {
	n := s.n
	m := wire.Message{Op: wire.OpMove,
		Message: fmt.Sprintf("node %s %s; attach to another node, join your rooms there, then close this connection", n.cfg.ID, why)}
	reserve := 256
	if b, err := wire.Encode(m); err == nil {
		reserve = len(b) + 1 // and the comma before "directory"
	}
	dir := s.viewDirectory(reserve)
	for i := range dir.Nodes {
		if dir.Nodes[i].ID == n.cfg.ID {
			dir.Nodes[i].Status = directory.Draining
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
