package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/room"
)

// SetRoomClock makes n's room feeds run their presence rules at the times
// clock returns instead of time.Now. For tests: clock must never go back.
func (n *Node) SetRoomClock(clock func() time.Time) { n.rooms.clock.Store(&clock) }

// ReconcileRoom runs one presence check of n's feed of room, at the room
// clock's time, and returns the records it stored. For tests.
func (n *Node) ReconcileRoom(ctx context.Context, name string) ([]room.Record, error) {
	e := n.rooms
	e.mu.Lock()
	f := e.feeds[name]
	e.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("node %s holds no feed of room %s", n.cfg.ID, name)
	}
	res := make(chan []record, 1)
	if err := f.do(ctx, func() { res <- f.reconcile(e.now()) }); err != nil {
		return nil, err
	}
	select {
	case recs := <-res:
		return recs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// DeafenDirectory stops n hearing its peers' directory entries, as a node
// paused or cut off from the exchange would: its directory marks them
// down after three heartbeats, while n still publishes its own entry and
// stores records. The function it returns makes n hear them again. For
// tests; not concurrent with Close.
func (n *Node) DeafenDirectory() (restore func() error) {
	prefix := n.subject("entry") + "."
	for _, sub := range n.subs {
		if strings.HasPrefix(sub.Subject, prefix) {
			_ = sub.Unsubscribe()
		}
	}
	return func() error {
		subs, err := n.subscribeEntries()
		n.subs = append(n.subs, subs...)
		if err != nil {
			return fmt.Errorf("node %s: hearing directory entries again: %w", n.cfg.ID, err)
		}
		return n.bus.Dir.Flush()
	}
}

// StoreRoomLeave stores the leave of the session with the given ID on
// node nodeID in room, as the cleanup of the cluster's majority stores
// one for a member whose node it saw down. For tests.
func (n *Node) StoreRoomLeave(ctx context.Context, name, nodeID, session string) error {
	_, err := n.rooms.publish(ctx, name, record{Op: recLeave, Keys: []string{nodeID + "/" + session}}, "")
	return err
}

// RoomBacklog is how many records n's feed of room has received and not
// yet applied (0 if it holds none). For tests.
func (n *Node) RoomBacklog(name string) int {
	e := n.rooms
	e.mu.Lock()
	f := e.feeds[name]
	e.mu.Unlock()
	if f == nil {
		return 0
	}
	return len(f.in)
}

// RoomsStopping reports whether n's rooms have begun to stop (Shutdown
// stores its members' leaves, then closes its sessions). For tests.
func (n *Node) RoomsStopping() bool { return n.rooms.closing.Load() }
