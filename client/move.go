package client

import (
	"errors"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/wire"
)

// A node that drains, rebalances, or cannot store sends its sessions
// "move" (docs/protocol.md, "Drain and move"). The session then moves
// make-before-break:
//
//  1. it stops reading the old connection; text typed meanwhile still
//     goes out on it until the room is joined on the new connection,
//     and is resent there (the servers store it once);
//  2. it picks a node from the directory the move carried, in which the
//     node that asked is draining or degraded (and the failover machine
//     excludes it too), and attaches there, with the same failover order
//     as after a drop but no drop: nothing is reported Disconnected;
//  3. it joins its rooms on the new connection; each room's state says
//     what of its text is stored, and the rest is resent with the same
//     seqs (the servers drop duplicates). Other members see no presence
//     change: the user is in each room through the old session until the
//     new one has joined;
//  4. once every room's state is in (or after retireAfter), it closes
//     the old connection, whose session then leaves its rooms.
//
// When no other node takes the session within moveTimeout, it goes back
// to reading the old connection, and fails over as usual when the node
// closes it (with "shutdown" at the drain's deadline, or 30 s after the
// move from a node that cannot store).

// moveTimeout bounds a move's search for a new node.
const moveTimeout = 10 * time.Second

// retireAfter bounds how long a move keeps the old connection open while
// its rooms are joined on the new one.
const retireAfter = 10 * time.Second

// errMoveAsked is the cause recorded against the node that asked: one
// draining, rebalancing, or stepped aside because it cannot store.
var errMoveAsked = errors.New("client: the node asked the session to move")

// moveAsked is a move the node asked for: what readLoop returns to
// supervise.
type moveAsked struct {
	dir  *wire.Directory
	text string
}

func (m *moveAsked) Error() string { return "client: asked to move: " + m.text }

// retiring is the connection a move left behind.
type retiring struct {
	c *Conn
	w *writer
}

// takeMove returns the move the node asked for, if any, and forgets it.
func (s *Session) takeMove() *moveAsked {
	s.mu.Lock()
	defer s.mu.Unlock()
	mv := s.move
	s.move = nil
	return mv
}

// moveFrom attaches the session to another node while old, to from, is
// still open, and rejoins the rooms there. It reports whether the
// session moved; when it did not, old is still the session's connection.
func (s *Session) moveFrom(old *Conn, oldW *writer, from directory.Node, mv *moveAsked) bool {
	r := &retiring{c: old, w: oldW}
	s.mu.Lock()
	s.retireLocked() // a move still overlapping from before: let it go now
	s.retiring = r
	for _, room := range s.rooms {
		room.viaOld = room.synced
	}
	s.mu.Unlock()
	now := time.Now()
	deadline := now.Add(moveTimeout)
	s.machine.Next(failover.Outcome{Kind: failover.Begin, Deadline: deadline}, now)
	act := s.machine.Next(failover.Outcome{Kind: failover.Refused, Node: from.ID, Status: directory.Draining, Err: errMoveAsked}, now)
	if err := s.connect(s.ctx, act, mv.dir, now, deadline); err != nil {
		s.mu.Lock()
		if s.retiring == r {
			s.retiring = nil // still the session's connection
		}
		for _, room := range s.rooms {
			room.viaOld = false
		}
		s.mu.Unlock()
		if s.ctx.Err() == nil {
			s.opts.logger.Warn("asked to move, but no other node took the session; staying until the node closes it", "node", from.ID, "err", err)
		}
		return false
	}
	s.mu.Lock()
	s.moves++
	ev := Event{Kind: Moved, Node: s.node, Reason: "moved off " + from.ID + " (asked to move): " + s.reason}
	s.rejoinLocked()
	if s.roomsSyncedLocked() {
		s.retireLocked()
	}
	s.mu.Unlock()
	time.AfterFunc(retireAfter, func() {
		s.mu.Lock()
		if s.retiring == r {
			s.retireLocked()
		}
		s.mu.Unlock()
	})
	s.opts.logger.Info("session moved", "from", from.ID, "node", ev.Node.ID, "reason", ev.Reason)
	s.emit(ev)
	return true
}

// roomsSyncedLocked reports whether every room's state has come on the
// current connection.
func (s *Session) roomsSyncedLocked() bool {
	for _, r := range s.rooms {
		if !r.synced {
			return false
		}
	}
	return true
}

// retireLocked closes the connection a move left, if any, off the
// caller's goroutine (closing waits for its writer).
func (s *Session) retireLocked() {
	r := s.retiring
	if r == nil {
		return
	}
	s.retiring = nil
	for _, room := range s.rooms {
		room.viaOld = false
	}
	go func() {
		r.c.Close()
		r.w.close()
	}()
}

// Moves counts how many times a node asked the session to move (a
// draining, rebalancing or degraded one) and it moved.
func (s *Session) Moves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.moves
}
