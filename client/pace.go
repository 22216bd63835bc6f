package client

import (
	"time"

	"github.com/switchboard/switchboard/wire"
)

// Pacing: text goes out no faster than the node takes it.
//
// The node refuses a session's text faster than its rate (token buckets:
// docs/protocol.md, "Limits") and holds the room until the refused chunk
// comes again after a re-join. Were the client to resend everything it
// holds after each re-join, a backlog of B chunks against a bucket that
// refills r a second would cost B/r rounds, each a join, a full state and
// a refusal for nearly every chunk: about B²/2r refusals in all.
//
// Two things keep the text within the rate:
//
//   - A node that says its limits (wire.Limits, with attached) gets no
//     more than they allow: the connection's budget mirrors its buckets,
//     a little short of them for the jitter between the client's sends
//     and the node's reads, and text waits in the session until the
//     budget holds it.
//   - After a `rate` refusal all the same (a node that does not say its
//     limits, or one whose limits changed), the room is paced: its text
//     goes out in rounds of at most window chunks, a round at most every
//     rateRetry. The first window is what passed in the round refused
//     (the chunks sent in it ahead of the refused one), at most
//     maxFirstWindow; a round that filled its window makes the next a
//     quarter larger; a refusal sets it back to what passed. The room is
//     no longer paced once the node has acknowledged all of its text.
//
// Either way text typed meanwhile waits its turn, in order.

// maxFirstWindow bounds the first window after a refusal: a typist who
// passed the rate after a long time passed many chunks in the round.
const maxFirstWindow = 64

// budgetRateShare is the share of the node's rates a budget refills at:
// a little under, for clocks that run apart.
const budgetRateShare = 0.98

// budgetBurst is what a budget holds of the node's burst b: an eighth
// less, at least one token less (when b allows one), for the jitter
// between the client's sends and the node's reads (the node refills its
// buckets by the times it reads the chunks, which can come closer
// together than they left).
func budgetBurst(b int) float64 {
	if usable := b - max(b/8, 1); usable >= 1 {
		return float64(usable)
	}
	return float64(b)
}

// budget mirrors the node's buckets of a session's text on one
// connection. A nil budget (a node that did not say its limits) allows
// everything.
type budget struct {
	chunks, bytes tokens
}

// tokens is a token bucket holding up to burst, refilled at rate a
// second; it reads no clock.
type tokens struct {
	rate, burst, have float64
	last              time.Time
}

// newBudget is the budget of a connection whose node said l at now; nil
// when it said nothing usable.
func newBudget(l *wire.Limits, now time.Time) *budget {
	if l == nil || l.ChunkRate <= 0 || l.ChunkBurst <= 0 || l.ByteRate <= 0 || l.ByteBurst <= 0 {
		return nil
	}
	mk := func(rate float64, burst int) tokens {
		b := budgetBurst(burst)
		return tokens{rate: rate * budgetRateShare, burst: b, have: b, last: now}
	}
	return &budget{chunks: mk(l.ChunkRate, l.ChunkBurst), bytes: mk(l.ByteRate, l.ByteBurst)}
}

func (t *tokens) refill(now time.Time) {
	if now.After(t.last) {
		t.have = min(t.burst, t.have+now.Sub(t.last).Seconds()*t.rate)
		t.last = now
	}
}

// wait is how long until t holds n, or holds all it can (a chunk larger
// than the burst goes when the bucket is full: the node decides).
func (t *tokens) wait(n float64) time.Duration {
	n = min(n, t.burst)
	if t.have >= n {
		return 0
	}
	return time.Duration((n - t.have) / t.rate * float64(time.Second))
}

// wait is how long until b allows a chunk of size bytes; 0 means now.
func (b *budget) wait(now time.Time, size int) time.Duration {
	if b == nil {
		return 0
	}
	b.chunks.refill(now)
	b.bytes.refill(now)
	return max(b.chunks.wait(1), b.bytes.wait(float64(size)))
}

// take spends a chunk of size bytes; wait has said 0.
func (b *budget) take(size int) {
	if b == nil {
		return
	}
	b.chunks.have = max(b.chunks.have-1, 0)
	b.bytes.have = max(b.bytes.have-float64(size), 0)
}

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

// growWindow is the window after a round that filled it.
func growWindow(w int) int { return w + max(1, w/4) }

// startRoundLocked starts a round at now with the next chunk to go.
func (r *room) startRoundLocked(now time.Time) {
	r.roundAt = now
	r.roundSeq = r.nextSeq
	if r.pushed < len(r.unacked) {
		r.roundSeq = r.unacked[r.pushed].Seq
	}
}

// pumpLocked sends the room's waiting chunks on w, in order from
// r.pushed, as far as the round's window and w's budget allow, and plans
// the next try for what still waits.
func (s *Session) pumpLocked(w *writer, name string, r *room, now time.Time) {
	for r.pushed < len(r.unacked) {
		m := r.unacked[r.pushed]
		if r.window > 0 && m.Seq >= r.roundSeq+uint64(r.window) {
			next := r.roundAt.Add(rateRetry)
			if now.Before(next) {
				s.planPumpLocked(w, name, r, next)
				return
			}
			// The round filled its window and nothing was refused.
			r.window = growWindow(r.window)
			r.startRoundLocked(now)
		}
		if d := w.budget.wait(now, wire.TextCost(m.T)); d > 0 {
			s.planPumpLocked(w, name, r, now.Add(d))
			return
		}
		w.budget.take(wire.TextCost(m.T))
		w.send(m) // a failed write closes the connection: the reader notices
		r.pushed++
		r.out, r.sent = max(r.out, r.pushed), max(r.sent, r.pushed)
		r.sentSeq = max(r.sentSeq, m.Seq)
	}
}

// planPumpLocked plans the room's next pump on w at the time at.
func (s *Session) planPumpLocked(w *writer, name string, r *room, at time.Time) {
	r.stopPumpLocked()
	var pump *time.Timer
	pump = time.AfterFunc(time.Until(at), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.pump != pump {
			return // replaced by a later plan, or stopped
		}
		r.pump = nil
		if s.ctx.Err() != nil || s.rooms[name] != r || s.carrierLocked(r) != w {
			// Refused or moved meanwhile: the room's next state sends
			// what waits.
			return
		}
		s.pumpLocked(w, name, r, time.Now())
	})
	r.pump = pump
}

// carrierLocked is the connection the room's text goes out on now: the
// session's when the room is synced there, the one a move is leaving
// while the room is still joined only there, or nil (text waits for the
// room's next state).
func (s *Session) carrierLocked(r *room) *writer {
	switch {
	case r.synced:
		return s.w
	case r.viaOld && s.retiring != nil:
		return s.retiring.w
	}
	return nil
}

// pacedAckLocked ends the room's pacing once all its text is
// acknowledged.
func (r *room) pacedAckLocked() {
	if r.window > 0 && len(r.unacked) == 0 {
		r.window = 0
	}
}

// stopPumpLocked stops the planned pump, if any.
func (r *room) stopPumpLocked() {
	if r.pump != nil {
		r.pump.Stop()
		r.pump = nil
	}
}
