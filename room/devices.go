package room

import (
	"errors"
	"hash/fnv"
)

// Devices: two sessions of one user that type the same seq.
//
// Seqs are the user's, not the session's: a client counts on from where
// the room's state says its user stopped. Two clients of one user (a
// phone and a laptop) that type at the same moment, each before it has
// seen the other's chunk, can therefore send the same seq with other
// text. Taken for a resend, the second chunk would be acknowledged (its
// record was stored) and dropped: text its typist saw acknowledged, lost.
//
// A client that names its device at attach (Record.Dev) lets the room
// tell the two apart. The room keeps, for each user in it, the last
// RecentChunks chunks with a device it stored of that user: the seq each
// was stored under, the seq its session sent, and its device. A chunk
// with a device at or below the user's last stored seq is then
//
//   - a resend, dropped as before, when the same device's chunk with that
//     seq is among them, or when the seq is older than all of them (the
//     room no longer knows, and takes it for a resend, as it always did);
//   - otherwise another device's chunk under a seq already taken: the
//     room stores it under the user's next seq (the last stored plus
//     one), so it is delivered, kept in the history and counted in the
//     state's seqs like any other; the ack its session gets still names
//     the seq it sent.
//
// The session that typed a moved chunk gets the room's state once the
// record is applied: its own view holds the chunk under the seq it sent,
// where the room holds the other device's, and its client drops that one
// as its own text. The state puts the room's view in place of its own
// and shows it the seq to count on from. It gets at most one such state
// every MovedStateEvery records, so that a session sending seqs it knows
// taken, to be moved, cannot have a state (up to a line of 64 KiB)
// encoded and sent for each of its chunks; meanwhile its chunks are
// moved all the same, and its view lacks the other device's text until
// its next state.
//
// A chunk without a device is always judged by its seq alone. The
// decision depends only on the records applied and on what a snapshot
// holds (the recent chunks are part of it), so every node takes the
// same one. The room forgets a user's recent chunks when the user's last
// session leaves, or when it forgets the sender: a later resend of the
// user's is then judged by its seq alone.

// MovedStateEvery is how many records the room applies at least between
// two states it sends a session for its moved chunks.
const MovedStateEvery = 16

// RecentChunks is how many of a user's last stored chunks the room keeps
// while the user is in it.
const RecentChunks = 16

// maxSeq is the largest seq a chunk is stored under: 2^53-1, the largest
// integer every JSON reader holds exactly. A chunk that would have to be
// stored above it is taken for a resend.
const maxSeq = 1<<53 - 1

// recentChunk is one chunk the room stored of a user.
type recentChunk struct {
	seq  uint64 // the seq it was stored under
	sent uint64 // the seq its session sent: seq, or lower where the room moved it
	dev  uint64 // devHash of its device, 0 for none
}

// devHash is the 64-bit FNV-1a hash of a device name, 0 for none (and 1
// for a name that hashes to 0).
func devHash(dev string) uint64 {
	if dev == "" {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(dev))
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

// storeSeq is the seq a text chunk of user with seq sent, from the device
// hashed to dev, is stored under: sent itself when it is above the user's
// last stored seq or is a resend (then Apply drops it), the user's next
// seq when it is another device's chunk under a seq already taken.
func (r *Room) storeSeq(user string, sent, dev uint64) uint64 {
	last := r.text.Seq(user)
	if sent == 0 || sent > last || dev == 0 || last >= maxSeq {
		return sent
	}
	recent := r.recent[user]
	if len(recent) == 0 || sent < recent[0].seq {
		return sent // older than what the room knows: a resend
	}
	for _, c := range recent {
		if c.dev == dev && c.sent == sent {
			return sent // this device's own: a resend
		}
	}
	return last + 1
}

// remember notes a chunk of user stored under seq, sent under sent from
// the device hashed to dev, if the user is in the room and the chunk
// named its device. Chunks without one need no note: none can be a
// resend of a chunk with a device, and no chunk without one is judged
// by the notes.
func (r *Room) remember(user string, seq, sent, dev uint64) {
	if r.users[user] == 0 || seq == 0 || dev == 0 {
		return
	}
	recent := r.recent[user]
	if len(recent) == RecentChunks {
		recent = append(recent[:0], recent[1:]...)
	}
	r.recent[user] = append(recent, recentChunk{seq: seq, sent: sent, dev: dev})
}

// restoreRecent takes a snapshot's recent chunks of user, checking that a
// room could have kept them: the user in the room, at most RecentChunks,
// stored seqs rising up to the user's last, none sent above its own.
func (r *Room) restoreRecent(user string, recent []recentV2) error {
	if r.users[user] == 0 {
		return errors.New("recent chunks of a user not in the room")
	}
	if len(recent) > RecentChunks {
		return errors.New("too many recent chunks")
	}
	kept := make([]recentChunk, len(recent))
	for i, c := range recent {
		if c.Seq == 0 || c.Sent == 0 || c.Sent > c.Seq || (i > 0 && c.Seq <= recent[i-1].Seq) || c.Seq > r.text.Seq(user) {
			return errors.New("recent chunks out of order")
		}
		kept[i] = recentChunk{seq: c.Seq, sent: c.Sent, dev: c.Dev}
	}
	r.recent[user] = kept
	return nil
}

// resendMoved sends the room's state to the active local sessions whose
// chunks Apply moved, unless they got one since epoch (resendStates) or
// one for a moved chunk within the last MovedStateEvery records.
func (r *Room) resendMoved(epoch uint64) {
	keys := r.moved
	r.moved = nil
	line, err := r.StateLine()
	if err != nil {
		return // it keeps its view; its next join brings the state
	}
	var next uint64
	for _, key := range keys {
		lm := r.local[key]
		if lm == nil || !lm.active || lm.since > epoch || (lm.movedAt != 0 && r.applied-lm.movedAt < MovedStateEvery) {
			continue
		}
		lm.movedAt = r.applied
		if next == 0 {
			r.epoch++
			next = r.epoch
		}
		lm.since = next
		r.cfg.Sink.Deliver(key, line)
	}
}
