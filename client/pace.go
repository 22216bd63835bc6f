package client

import (
	"time"

	"github.com/switchboard/switchboard/wire"
)

// Pacing after a rate refusal.
//
// The node refuses a session's text faster than its rate (token buckets:
// docs/protocol.md, "Limits") and holds the room until the refused chunk
// comes again after a re-join. Were the client to resend everything it
// holds after each re-join, a backlog of B chunks against a bucket that
// refills r a second would cost B/r rounds, each a join, a full state and
// a refusal for nearly every chunk: about B²/2r refusals in all.
//
// So after a `rate` refusal the room is paced. Its text goes out in
// rounds of at most window chunks, a round at most every rateRetry. The
// first window is what passed in the round refused (the chunks sent in it
// ahead of the refused one), at most maxFirstWindow; each round that
// passes whole makes the next a quarter larger; a refusal sets it back to
// what passed. Text typed meanwhile waits its turn, in order. The room is
// no longer paced once the node has acknowledged all of its text.

// maxFirstWindow bounds the first window after a refusal: a typist who
// passed the rate after a long time passed many chunks in the round.
const maxFirstWindow = 64

// learnWindowLocked sets the window after the node refused the chunk
// refused for its rate: the chunks of the round ahead of it passed.
func (r *room) learnWindowLocked(refused uint64) {
	switch {
	case refused >= r.roundSeq:
		r.window = int(min(max(refused-r.roundSeq, 1), maxFirstWindow))
	case r.window == 0:
		// A refusal of a chunk from before the round (from an earlier
		// connection, say) tells nothing of the rate: start moderately.
		r.window = maxFirstWindow
	}
}

// growWindow is the window after a round that passed whole.
func growWindow(w int) int { return w + max(1, w/4) }

// mayGoLocked reports whether a chunk with seq, typed now, may go out at
// once in the current round.
func (r *room) mayGoLocked(seq uint64) bool {
	return r.window == 0 || seq < r.roundSeq+uint64(r.window)
}

// sendRoundLocked starts a round on w at now: the waiting chunks, from
// r.pushed on, go out, a window's worth when the room is paced, and the
// next round is planned.
func (s *Session) sendRoundLocked(w *writer, name string, r *room, now time.Time) {
	end := len(r.unacked)
	if r.window > 0 {
		end = min(end, r.pushed+r.window)
	}
	r.roundAt = now
	r.roundSeq = r.nextSeq
	if r.pushed < len(r.unacked) {
		r.roundSeq = r.unacked[r.pushed].Seq
	}
	for _, m := range r.unacked[r.pushed:end] {
		w.send(m) // a failed write closes the connection: the reader notices
	}
	r.pushed = end
	r.out, r.sent = max(r.out, end), max(r.sent, end)
	if r.window > 0 {
		s.planRoundLocked(w, name, r)
	}
}

// planRoundLocked plans the next round of a paced room, rateRetry after
// the current one began.
func (s *Session) planRoundLocked(w *writer, name string, r *room) {
	if r.round != nil {
		r.round.Stop()
	}
	var round *time.Timer
	round = time.AfterFunc(time.Until(r.roundAt.Add(rateRetry)), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.round != round {
			return // replaced by a later round, or stopped
		}
		r.round = nil
		if r.window == 0 || !r.synced || s.ctx.Err() != nil || s.w != w || s.rooms[name] != r {
			// No longer paced, or refused again: the room's next state
			// starts the next round.
			return
		}
		if r.pushed < len(r.unacked) {
			// Text waits only behind a full window: that round passed
			// whole.
			r.window = growWindow(r.window)
		}
		s.sendRoundLocked(w, name, r, time.Now())
	})
	r.round = round
}

// pacedAckLocked ends the room's pacing once all its text is
// acknowledged.
func (r *room) pacedAckLocked() {
	if r.window > 0 && len(r.unacked) == 0 {
		r.window = 0
		r.stopRoundLocked()
	}
}

// stopRoundLocked stops the planned round, if any.
func (r *room) stopRoundLocked() {
	if r.round != nil {
		r.round.Stop()
		r.round = nil
	}
}

// sendNowLocked sends the chunk m, the last one queued, at once when the
// room is synced on w, nothing queued ahead of it waits, and the round
// has room for it; it reports whether it did.
func (r *room) sendNowLocked(w *writer, m wire.Message) bool {
	if w == nil || r.pushed != len(r.unacked)-1 || !r.mayGoLocked(m.Seq) {
		return false
	}
	w.send(m) // a failed write shows as a drop; the chunk is resent
	r.pushed, r.out, r.sent = len(r.unacked), len(r.unacked), len(r.unacked)
	return true
}
