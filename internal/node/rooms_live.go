package node

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/wire"
)

// Live text: the fast path of a room's text.
//
// A session's chunks are published, as they are read, on the room's live
// subject switchboard.<service>.live.<room> (core NATS: no storage, no
// acknowledgement), at the same time as the room's writer stores them.
// Every node with members in the room subscribes to the subject and
// shows the chunks to its members at once (room.Room.ApplyLive); when the
// stored record arrives through the room's consumer, it goes only to the
// members that did not see it live. A keystroke therefore reaches the
// screens in one hop through the bus instead of after a replicated write,
// while the ack still means stored on a quorum and the stream remains
// what joiners, snapshots and the order of each sender's text rest on.
//
// The fast path may lose or reorder nothing that matters: one node's
// chunks for a room go out on one connection, so they arrive in the order
// published, and a chunk that does not follow the last one shown of its
// sender is dropped here and comes through the stream instead. Chunks
// that arrive while the feed's queue is full are dropped too.

// liveQueue is how many live records a feed holds before dropping.
const liveQueue = 1024

// liveSubjectOf is the subject of room's live text.
func (e *roomEngine) liveSubjectOf(room string) string {
	return e.livePrefix + roomToken(room)
}

// connOf is the engine's bus connection that carries room's records and
// live text.
func (e *roomEngine) connOf(room string) *nats.Conn {
	return e.conns[e.shardOf(room)%len(e.conns)]
}

// publishLive shows recs, a session's checked chunks of f's room in the
// order sent, to the node's own members through f, and publishes them on
// the room's live subject for the other nodes. It does not wait: the bus
// client writes them out from its buffer. The room's connections have no
// echo, so the node does not receive its own publish.
func (e *roomEngine) publishLive(f *feed, recs []record) {
	rec := recs[0]
	if len(recs) > 1 {
		rec = record{Op: recBatch, Recs: recs}
	}
	f.takeLive(liveRec{rec: rec, at: time.Now()})
	data, err := wire.AppendJSON(nil, rec)
	if err != nil {
		return // records of strings and numbers always encode
	}
	if err := e.connOf(f.room).Publish(e.liveSubjectOf(f.room), data); err != nil {
		e.log.Debug("publishing live text", "room", f.room, "err", err)
		return
	}
	e.metrics.livePublished.Add(float64(len(recs)))
}

// liveRec is a live record received by a feed.
type liveRec struct {
	rec record
	at  time.Time
}

// subscribeLive subscribes the feed to its room's live text. Without it
// the room still works, through the stream alone.
func (f *feed) subscribeLive() {
	sub, err := f.e.connOf(f.room).Subscribe(f.e.liveSubjectOf(f.room), f.handleLive)
	if err != nil {
		f.e.log.Warn("subscribing to a room's live text; its text comes through the stream only", "room", f.room, "err", err)
		return
	}
	// Live text is dropped here when the feed falls behind, never held
	// in the client library's buffer.
	_ = sub.SetPendingLimits(liveQueue, 64<<20)
	f.liveSub = sub
}

// handleLive runs on the subscription's goroutine: it decodes a live
// record and hands it to run, or drops it if run is behind.
func (f *feed) handleLive(msg *nats.Msg) {
	var rec record
	if err := json.Unmarshal(msg.Data, &rec); err != nil || (rec.Op != recText && rec.Op != recBatch) {
		return
	}
	f.takeLive(liveRec{rec: rec, at: time.Now()})
}

// takeLive hands a live record to run, or drops it if run is behind.
func (f *feed) takeLive(in liveRec) {
	select {
	case f.live <- in:
	default:
		f.e.metrics.liveDropped.Inc()
	}
}

// applyLive shows a live record's chunks to the local members.
func (f *feed) applyLive(in liveRec) {
	f.received = in.at
	if n := f.r.ApplyLive(in.rec); n > 0 {
		f.e.metrics.liveShown.Add(float64(n))
	}
}

// livePrefix is the start of every live subject of the service.
func livePrefix(service string) string {
	return "switchboard." + strings.ReplaceAll(service, ".", "_") + ".live."
}
