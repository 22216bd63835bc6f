package node

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/room"
)

// RoomSnapshot returns the stored snapshot of room. For tests.
func (n *Node) RoomSnapshot(ctx context.Context, name string) ([]byte, error) {
	e := n.rooms
	if e == nil || !e.Ready() {
		return nil, fmt.Errorf("node %s: rooms not ready", n.cfg.ID)
	}
	entry, err := e.kv.Get(ctx, roomToken(name))
	if err != nil {
		return nil, fmt.Errorf("node %s: reading the snapshot of %s: %w", n.cfg.ID, name, err)
	}
	return entry.Value(), nil
}

// PutRoomSnapshot stores data as the snapshot of room, whatever is
// stored. For tests.
func (n *Node) PutRoomSnapshot(ctx context.Context, name string, data []byte) error {
	e := n.rooms
	if e == nil || !e.Ready() {
		return fmt.Errorf("node %s: rooms not ready", n.cfg.ID)
	}
	if _, err := e.kv.Put(ctx, roomToken(name), data); err != nil {
		return fmt.Errorf("node %s: writing the snapshot of %s: %w", n.cfg.ID, name, err)
	}
	return nil
}

// RoomRecords counts the records of room its stream holds. For tests.
func (n *Node) RoomRecords(ctx context.Context, name string) (uint64, error) {
	e := n.rooms
	if e == nil || !e.Ready() {
		return 0, fmt.Errorf("node %s: rooms not ready", n.cfg.ID)
	}
	st, err := e.js.Stream(ctx, e.streamOf(name))
	if err != nil {
		return 0, fmt.Errorf("node %s: looking up the stream of %s: %w", n.cfg.ID, name, err)
	}
	subj := e.subjectOf(name)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return 0, fmt.Errorf("node %s: reading the stream of %s: %w", n.cfg.ID, name, err)
	}
	return info.State.Subjects[subj], nil
}

// StoreRoomRecord stores rec in room's stream as a session's node would,
// and returns its stream sequence. For tests.
func (n *Node) StoreRoomRecord(ctx context.Context, name string, rec room.Record) (uint64, error) {
	e := n.rooms
	if e == nil || !e.Ready() {
		return 0, fmt.Errorf("node %s: rooms not ready", n.cfg.ID)
	}
	return e.publish(ctx, name, rec, "")
}
