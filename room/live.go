package room

import "github.com/switchboard/switchboard/wire"

// Live text: chunks shown before they are stored.
//
// A node publishes its sessions' chunks to the other nodes as typed, on
// a fast path without storage, and stores them in the room's stream at
// the same time. ApplyLive shows such a chunk to the local sessions at
// once; when the same chunk later comes through the stream, Apply shows
// it only to the sessions that did not see it live. The stream stays the
// room's truth: the text model (Text, Seq, snapshots, the state a
// joining session gets) changes only through Apply.
//
// The rules keep each sender's text in order and shown once per session:
//
//   - A live chunk is shown only if it is the sender's next one, its seq
//     one above the last this node showed of that sender (live or
//     stored). A live chunk that comes early (one before it was lost on
//     the fast path) or late (the stream was faster) is dropped: the
//     stream brings it in order.
//   - A chunk shown live waits, with its text and the moment it was
//     shown, until the stream brings it. If the stored chunk has the same
//     seq and text it goes only to the sessions activated or resynced
//     since it was shown (they got a state without it); with other text it
//     goes to everyone, like any chunk not shown live. Waiting chunks of a
//     sender below a stored seq were never stored (their node died before
//     it stored them and the sender resent nothing): they are dropped, and
//     the sessions shown them get the room's state once the record is
//     applied, in place of its chunks (one of those could come after a
//     later chunk of its sender shown live). A session gets at most one
//     such state between two calls of Reconcile: one sent a state since
//     the last call is owed the next, gets no text until then, and
//     gets it from the next call. So do the sessions shown
//     chunks of a user whose last session leaves while they wait: a
//     session stores its text before its leave, so they were never
//     stored, and no session of the user is left to store them.
//   - A session that got its state after one of a sender's waiting
//     chunks was shown lacks that chunk until the stream brings it, so
//     the sender's later live chunks skip it too, until none of the
//     sender's chunks waits: it gets them from the stream, after the
//     one it lacks. Otherwise it would see the
//     sender's next chunk before the stored copy of the one it lacks.
//   - A live chunk is not shown to its sender's other sessions (another
//     device of the same user): they get it from the stream, under the
//     seq it is stored as. Seqs are the user's, and a client counts on
//     above the chunks of its user it is shown; counting above a live
//     chunk that the room then moves (devices.go), because another
//     device's chunk took its seq first, would leave a seq that nothing
//     is stored under, which every reader shows as text lost (U+FFFD).
//   - When the stream brings other text under a seq of a sender that
//     was shown live, or skips it, the sender's next LiveHold chunks
//     come only through the stream, and twice as many each time it
//     happens again within as many chunks after the last hold ended (up
//     to MaxLiveHold). Each such chunk costs every member shown it the
//     room's state; a user who makes it happen on purpose (two sessions
//     sending the same seqs, so that the room moves one: devices.go)
//     would otherwise cost every member of the room a state of up to
//     64 KiB for every other chunk.
//   - At most MaxLive chunks of one sender wait; beyond that the sender's
//     next chunks come only through the stream until it catches up.
//   - A sender the room forgot (Config.MaxSenders) counts from seq 1
//     again, so a late live copy of one of their chunks the stream
//     brought before they were forgotten would look new. Until the room
//     has forgotten at least MaxSenders other senders, their live chunks
//     up to the last seq shown of them before come only through the
//     stream.
//
// Receivers therefore see each sender's chunks in that sender's order,
// each once, but two senders' chunks may interleave differently on two
// nodes (docs/protocol.md says so). Text shown live whose sender's node
// and client both died before storing it stays on the screens that
// showed it, and is not in the room's history, until its sender stores
// more text or leaves the room (or is removed from it).

// MaxLive is how many chunks of one sender may wait, shown live, for the
// stream to bring them.
const MaxLive = 256

// LiveHold and MaxLiveHold bound how many of a sender's chunks come only
// through the stream after the stream brought other text under a seq of
// theirs shown live (holdLive).
const (
	LiveHold    = 16
	MaxLiveHold = 4096
)

// liveOff is a sender's live text held back: chunks up to until come
// through the stream alone; span is how many the hold covered.
type liveOff struct {
	until, span uint64
}

// holdLive holds back the live text of user, under one of whose seqs
// the stream brought other text than was shown live: for LiveHold
// chunks, or twice the last hold's span if that hold ended less than its
// span ago.
func (r *Room) holdLive(user string) {
	last := max(r.text.Seq(user), r.shown[user])
	span := uint64(LiveHold)
	if off, ok := r.liveOff[user]; ok && last <= off.until+off.span {
		span = min(2*off.span, MaxLiveHold)
	}
	r.liveOff[user] = liveOff{until: last + span, span: span}
}

// liveChunk is a chunk shown live, waiting for the stream.
type liveChunk struct {
	seq  uint64
	text string
	// epoch splits the local sessions: those that got their last state
	// at or before it were shown the chunk live, the others were not.
	// It is r.epoch when the chunk was shown, or the epoch of the
	// sender's oldest chunk still waiting then.
	epoch uint64
}

// ApplyLive shows the text chunks of rec, a text or batch record that is
// not stored yet, to the active local sessions of other users, following
// the rules above. It returns how many chunks it
// showed. It changes nothing but what was shown.
func (r *Room) ApplyLive(rec Record) int {
	rec = rec.valid()
	shown := 0
	switch rec.Op {
	case OpText:
		if r.applyLive(rec) {
			shown++
		}
	case OpBatch:
		for _, chunk := range rec.Recs {
			if chunk.Op == OpText && r.applyLive(chunk) {
				shown++
			}
		}
	}
	return shown
}

func (r *Room) applyLive(rec Record) bool {
	if rec.User == "" || rec.Seq == 0 || rec.Seq != r.lastShown(rec.User)+1 || len(rec.T) > wire.MaxChunkLimit {
		return false
	}
	if _, known := r.shown[rec.User]; !known && r.users[rec.User] == 0 &&
		(len(r.shown) >= r.cfg.MaxSenders || len(r.live) >= r.cfg.MaxSenders) {
		// A sender not a member (not yet, as this node has applied the
		// stream, or any more) past MaxSenders of them: the stream
		// brings what it stored. Live text under made-up names cannot
		// grow what the room keeps.
		return false
	}
	if off, ok := r.liveOff[rec.User]; ok && rec.Seq <= off.until {
		return false // held back: the stream brings it
	}
	if rec.Seq <= r.goneAt(rec.User) {
		// The sender was forgotten lately (Config.MaxSenders): this may
		// be a late copy of a chunk the stream brought before, which the
		// room no longer knows. The stream brings it if it is new.
		return false
	}
	waiting := r.live[rec.User]
	if len(waiting) >= MaxLive {
		return false
	}
	// A session that got its state after the sender's oldest waiting
	// chunk was shown lacks that chunk until the stream brings it: it
	// gets this one from the stream too, after it.
	at := r.epoch
	if len(waiting) > 0 {
		at = waiting[0].epoch
	}
	r.live[rec.User] = append(waiting, liveChunk{seq: rec.Seq, text: rec.T, epoch: at})
	r.shown[rec.User] = rec.Seq
	m := wire.Message{Op: wire.OpText, Room: r.name, From: rec.User, Seq: rec.Seq, T: rec.T}
	r.deliverTo(m, rec.Key, func(lm *local) bool { return lm.since <= at && lm.user != rec.User })
	return true
}

// lastShown is the seq of the last chunk of user shown here, live or
// stored.
func (r *Room) lastShown(user string) uint64 {
	return max(r.shown[user], r.text.Seq(user))
}

// stored is what storedLive learnt of a stored chunk.
type stored struct {
	same      bool   // it was shown live with the same text
	shownAt   uint64 // the epoch it was shown at, if same
	phantom   bool   // chunks of its sender shown live were never stored
	phantomAt uint64 // the latest epoch one of them was shown at
}

// storedLive is Apply's side of live text: it takes the waiting chunks of
// rec's sender up to rec's seq and says whether rec itself was shown live
// with the same text, and whether text shown live was never stored.
func (r *Room) storedLive(rec Record) stored {
	var res stored
	waiting := r.live[rec.User]
	i := 0
	for ; i < len(waiting) && waiting[i].seq <= rec.Seq; i++ {
		switch w := waiting[i]; {
		case w.seq == rec.Seq && w.text == rec.T:
			res.same, res.shownAt = true, w.epoch
		default:
			// Shown live, but the stream holds other text at its seq
			// or skipped it: its sender's node died before storing it
			// and the sender did not resend it as it was.
			res.phantom, res.phantomAt = true, max(res.phantomAt, w.epoch)
		}
	}
	if i == len(waiting) {
		delete(r.live, rec.User)
	} else {
		r.live[rec.User] = waiting[i:]
	}
	if rec.Seq > r.shown[rec.User] {
		r.shown[rec.User] = rec.Seq
	}
	return res
}

// resendStates sends the room's state to the active local sessions that
// got their last state at or before epoch: they were shown text that the
// stream does not hold, and the state puts the stream's text in its
// place. A session sent such a state since the last Reconcile is owed
// one instead, and gets no text until the next Reconcile sends it
// (flushOwed): a room whose chunks keep being moved after they were
// shown live (two devices of a user typing at once, or a user doing so
// on purpose) would otherwise have a state of up to 64 KiB sent to each
// member for each of them.
func (r *Room) resendStates(epoch uint64) {
	var due []string
	for _, key := range r.order {
		lm := r.local[key]
		switch {
		case !lm.active || lm.since > epoch:
		case lm.unstoredAt == r.reconciles+1:
			lm.owed = true
		default:
			due = append(due, key)
		}
	}
	r.sendUnstored(due)
}

// flushOwed sends the room's state to the sessions owed one.
func (r *Room) flushOwed() {
	var due []string
	for _, key := range r.order {
		lm := r.local[key]
		switch {
		case lm.owed && lm.active:
			due = append(due, key)
		case lm.owed:
			lm.owed = false // deactivated meanwhile: Activate gives it the state
		}
	}
	r.sendUnstored(due)
}

// sendUnstored sends the room's state to the sessions under keys, for
// text they were shown that the stream does not hold. If the state
// cannot be encoded they keep their view, and get nothing owed.
func (r *Room) sendUnstored(keys []string) {
	if len(keys) == 0 {
		return
	}
	line, err := r.StateLine()
	if err != nil {
		for _, key := range keys {
			r.local[key].owed = false
		}
		return
	}
	r.epoch++
	for _, key := range keys {
		lm := r.local[key]
		lm.since, lm.unstoredAt, lm.owed = r.epoch, r.reconciles+1, false
		r.cfg.Sink.Deliver(key, line)
	}
}

// forgotten notes the last seq shown of user, a sender the room is about
// to forget. The room keeps the notes of the last MaxSenders to
// 2*MaxSenders senders it forgot: in two generations, the older dropped
// whole when the newer fills.
func (r *Room) forgotten(user string) {
	if r.gone[0] == nil || len(r.gone[0]) >= r.cfg.MaxSenders {
		r.gone[1], r.gone[0] = r.gone[0], make(map[string]uint64)
	}
	r.gone[0][user] = r.lastShown(user)
}

// goneAt is the last seq shown of user before the room forgot them lately
// (0 if it did not).
func (r *Room) goneAt(user string) uint64 {
	if seq, ok := r.gone[0][user]; ok {
		return seq
	}
	return r.gone[1][user]
}

// forgetLive forgets what was shown of user (a forgotten sender).
func (r *Room) forgetLive(user string) {
	delete(r.live, user)
	delete(r.shown, user)
	delete(r.liveOff, user)
}

// Waiting is how many chunks shown live wait for the stream, over all
// senders.
func (r *Room) Waiting() int {
	n := 0
	for _, w := range r.live {
		n += len(w)
	}
	return n
}
