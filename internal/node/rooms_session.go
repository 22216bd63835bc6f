package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/wire"
)

// The room operations of a session. They run on the session's reader
// goroutine, which owns s.rooms and s.limiter. A join or leave blocks it
// while its record is stored (bounded by Config.StoreTimeout); a re-join
// or leave waits first for the session's text on its way to storage. Text does not block
// it: the reader publishes a chunk live (rooms_live.go), hands it to the
// room's writer and reads on; the writer stores the session's chunks in
// the order handed and answers them in that order (acks, or unavailable),
// on its own goroutine. s.seqs and s.held, which both sides change, are
// guarded by s.textMu.

// handleRoom answers join, leave and text.
func (s *session) handleRoom(m wire.Message) {
	if !s.attached.Load() {
		s.reply(roomError(wire.CodeNotAttached, m.Room, 0, "attach before %s", m.Op))
		return
	}
	s.dropLostRooms()
	switch m.Op {
	case wire.OpJoin:
		s.join(m.Room)
	case wire.OpLeave:
		s.leave(m.Room)
	case wire.OpText:
		s.text(m)
	}
}

// roomError is an error message about a room (and a chunk's seq).
func roomError(code, room string, seq uint64, format string, args ...any) wire.Message {
	return wire.Message{Op: wire.OpError, Code: code, Message: fmt.Sprintf(format, args...), Room: room, Seq: seq}
}

// key names the session in room records: node ID and session ID.
func (s *session) key() string { return s.n.cfg.ID + "/" + s.id }

func (s *session) join(room string) {
	if why := wire.RoomNameProblem(room); why != "" {
		s.reply(roomError(wire.CodeBadRequest, room, 0, "%s", why))
		return
	}
	// Every join draws from the room operations' bucket, a re-join too:
	// each sends the room's whole state, up to a protocol line.
	if !s.limiter.allowRoomOp(time.Now()) {
		s.reply(roomError(wire.CodeRate, room, 0, "joining or leaving faster than %v a second; slow down", RoomOpRate))
		return
	}
	if f := s.rooms[room]; f != nil && !s.rejoin(room, f) {
		return
	}
	s.firstJoin(room)
}

// rejoin answers a join of room, which f serves, from a session in it:
// the client resynchronises. From the state it learns what is stored and
// resends the rest in order. Its text on the way is answered first. A
// hold stays until the held chunk comes again, which the client resends
// first: a chunk sent after this join but ahead of that resend would
// otherwise be stored before it, and the resend taken for a duplicate.
// It reports whether the room took the session out a moment ago
// (room.Result.Lost): the join is then a first join.
func (s *session) rejoin(room string, f *feed) (out bool) {
	n := s.n
	s.stores.Wait()
	s.textMu.Lock()
	delete(s.failed, room) // every chunk admitted before is answered
	s.textMu.Unlock()
	// Its time starts now: text slow to store may have taken a while
	// until here, and the room is not to blame for that.
	ctx, cancel := context.WithTimeout(n.rooms.ctx, n.cfg.StoreTimeout)
	defer cancel()
	seq, err := f.resync(ctx, s.key())
	switch {
	case lostPlace(err):
		s.dropRoom(room, f)
		return true
	case err != nil:
		s.reply(roomErrorFor(room, err))
		return false
	}
	s.textMu.Lock()
	defer s.textMu.Unlock()
	s.seqs[room] = max(s.seqs[room], seq)
	if s.device == "" {
		// The state, and the session's own acks, show these stored.
		// With a device the state's seq may be another device's text
		// (docs/rooms.md: the state is no ack then): the chunk held
		// must come again.
		s.updateHoldLocked(room, func(h *textHold) { h.storedThrough(s.seqs[room]) })
	}
	return false
}

// firstJoin answers a join of room from a session not in it.
func (s *session) firstJoin(room string) {
	n, e := s.n, s.n.rooms
	ctx, cancel := context.WithTimeout(e.ctx, n.cfg.StoreTimeout)
	defer cancel()
	key := s.key()
	if len(s.rooms) >= n.cfg.MaxRooms {
		s.reply(roomError(wire.CodeLimit, room, 0, "a session may be in at most %d rooms; leave one first", n.cfg.MaxRooms))
		return
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		s.reply(roomError(wire.CodeUnavailable, room, 0, "room %s: %v after %v; try again", room, errRoomsNotReady, n.cfg.StoreTimeout))
		return
	}
	if !e.beginJoin() {
		// The node is storing the leaves of its members as it stops: a
		// join stored after them would list the session, whose node
		// then says nothing more, until the peers' grace passes.
		s.reply(roomError(wire.CodeUnavailable, room, 0, "node %s is stopping; join on the node you fail over to", n.cfg.ID))
		return
	}
	defer e.endJoin()
	f := e.acquire(room, key)
	seq, err := s.enter(ctx, f, key)
	if err != nil {
		if errors.Is(err, errRoomFull) {
			e.release(f, key, 0) // the join was applied, and refused
			s.reply(roomError(wire.CodeLimit, room, 0, "room %s is full: %d users", room, n.cfg.MaxParticipants))
			return
		}
		if errors.Is(err, errUserSessions) {
			e.release(f, key, 0)
			s.reply(roomError(wire.CodeLimit, room, 0, "room %s: %s is in it from %d sessions already; leave it from one of them first", room, s.user, MaxUserSessionsInRoom))
			return
		}
		// The join may be stored yet: the feed stays to remove it.
		e.release(f, key, n.cfg.StoreTimeout)
		n.log.Warn("joining a room", "room", room, "session", s.id, "err", err)
		s.reply(roomErrorFor(room, err))
		return
	}
	s.rooms[room] = f
	s.textMu.Lock()
	s.seqs[room] = seq
	s.textMu.Unlock()
}

// enter registers the session with f, stores its join and waits until f
// has applied the join and sent the room's state. It returns the last seq
// of the user's text in that state.
func (s *session) enter(ctx context.Context, f *feed, key string) (uint64, error) {
	if err := f.register(ctx, key, s); err != nil {
		return 0, err
	}
	n := s.n
	rec := record{Op: recJoin, User: s.user, Key: key, Node: n.cfg.ID, Inc: n.incarnation}
	var textSeq uint64
	seq, err := n.rooms.publish(ctx, f.room, rec, "")
	if err == nil {
		textSeq, err = f.activate(ctx, key, seq)
	}
	if err != nil {
		// A join stored after all is removed by the feed's reconcile: the
		// session is no longer registered.
		s.forceDetach(f, key)
	}
	return textSeq, err
}

// forceDetach removes key's registration from f after a join or leave
// that failed, waiting for the feed's goroutine as long as a store may
// take: a detach given up would leave the session registered, listed in
// the room and never taken for stale, until the feed unloads. The
// session's reader waits meanwhile, so no join of its own can register
// it again before the detach runs. It reports whether the session may
// still have been registered: false only when the feed found it gone.
func (s *session) forceDetach(f *feed, key string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.n.cfg.StoreTimeout)
	defer cancel()
	removed, err := f.detach(ctx, key, 0)
	if err != nil {
		s.n.log.Warn("detaching a session from a room after a failed join or leave", "room", f.room, "session", s.id, "err", err)
		return true
	}
	return removed
}

// loseRoom notes, from the feed's goroutine, that the feed of room took
// the session out (room.Result.Lost).
func (s *session) loseRoom(room string) {
	s.textMu.Lock()
	defer s.textMu.Unlock()
	if s.lost == nil {
		s.lost = make(map[string]bool)
	}
	s.lost[room] = true
}

// dropLostRooms takes off s.rooms the rooms whose feeds took the session
// out (loseRoom): its text there is then refused as not in the room, a
// leave is answered as one of a room not joined, and a join is a first
// join. It runs on the reader before each room operation.
func (s *session) dropLostRooms() {
	s.textMu.Lock()
	lost := s.lost
	s.lost = nil
	s.textMu.Unlock()
	for name := range lost {
		if f := s.rooms[name]; f != nil {
			s.dropRoom(name, f)
		}
	}
}

// dropRoom forgets room, which f serves and in which the session has no
// membership left: no leave to store, only the registration to remove.
func (s *session) dropRoom(room string, f *feed) {
	s.forgetRoom(room)
	s.forceDetach(f, s.key())
	s.forgetLost(room)
	s.n.rooms.release(f, s.key(), 0)
}

// forgetLost clears room's mark from loseRoom once the session's
// registration there is gone (detached): the feed marks nothing more for
// it, and a mark left would take the room off the session after it
// joined again.
func (s *session) forgetLost(room string) {
	s.textMu.Lock()
	delete(s.lost, room)
	s.textMu.Unlock()
}

// forgetRoom takes room off the session's rooms, with its seqs, hold and
// failures, once the answers to its text on the way are in.
func (s *session) forgetRoom(room string) {
	s.stores.Wait()
	delete(s.rooms, room)
	s.textMu.Lock()
	delete(s.seqs, room)
	delete(s.seqAsked, room)
	delete(s.held, room)
	delete(s.failed, room)
	s.textMu.Unlock()
}

func (s *session) leave(room string) {
	n, e := s.n, s.n.rooms
	f := s.rooms[room]
	if f == nil {
		s.reply(roomError(wire.CodeBadRequest, room, 0, "not in room %q", room))
		return
	}
	if !s.limiter.allowRoomOp(time.Now()) {
		s.reply(roomError(wire.CodeRate, room, 0, "joining or leaving faster than %v a second; slow down", RoomOpRate))
		return
	}
	key := s.key()
	s.forgetRoom(room)       // its text first, then the leave
	defer s.forgetLost(room) // after the detach below
	ctx, cancel := context.WithTimeout(e.ctx, n.cfg.StoreTimeout)
	defer cancel()
	_ = f.markLeaving(ctx, key)
	seq, err := e.publish(ctx, room, record{Op: recLeave, Keys: []string{key}}, "")
	if err == nil {
		// The feed tells the session it left when it applies the leave.
		_, err = f.detach(ctx, key, seq)
	}
	if err != nil {
		// The session is out here; the feed stays to remove its stale
		// membership once the stream takes records again.
		n.log.Warn("leaving a room", "room", room, "session", s.id, "err", err)
		// The leave's record may have been applied after the wait gave
		// up and before this detach: the feed then told the session it
		// left (and its barrier took the session off), and a second
		// presence leave would answer one leave twice.
		untold := s.forceDetach(f, key)
		e.release(f, key, n.cfg.StoreTimeout)
		if untold {
			s.reply(wire.Message{Op: wire.OpPresence, Room: room, User: s.user, Event: "leave"})
		}
		return
	}
	e.release(f, key, 0)
}

func (s *session) text(m wire.Message) {
	if rec, admitted, ok := s.checkText(m); ok {
		s.storeTexts(m.Room, []record{rec}, admitted)
	}
}

// textRun answers first, a text chunk, and the text chunks buffered
// after it (up to maxBatchChunks and maxBatchBytes), which the client sent while earlier
// ones were being stored: each room's consecutive chunks are stored
// through one request to the room's writer, so a typist whose chunks
// queue behind a slow store catches up in one record. The first line
// buffered that is not a text chunk is answered after them.
func (s *session) textRun(first wire.Message, lr *wire.LineReader) *wire.Error {
	s.dropLostRooms()
	msgs := []wire.Message{first}
	size := len(first.T)
	var next []byte // a line read that is not text, answered last
	var fatal *wire.Error
	for len(msgs) < maxBatchChunks && size < maxBatchBytes && lr.HasLine() {
		line, err := lr.Next()
		if err != nil {
			fatal = s.readError(err)
			break
		}
		m, derr := wire.DecodeFromClient(line)
		if derr != nil || m.Op != wire.OpText {
			next = line
			break
		}
		msgs = append(msgs, m)
		size += len(m.T)
	}
	for len(msgs) > 0 {
		room := msgs[0].Room
		n := 1
		for n < len(msgs) && msgs[n].Room == room {
			n++
		}
		var recs []record
		var admitted uint64 // the first's
		for _, m := range msgs[:n] {
			if s.rooms[room] == nil {
				s.handle(m) // not in the room: its error
				continue
			}
			if rec, a, ok := s.checkText(m); ok {
				if len(recs) == 0 {
					admitted = a
				}
				recs = append(recs, rec)
			}
		}
		if len(recs) > 0 {
			s.storeTexts(room, recs, admitted)
		}
		msgs = msgs[n:]
	}
	if fatal != nil {
		return fatal
	}
	if next != nil {
		return s.line(next, nil)
	}
	return nil
}

// checkText checks a text chunk against the session's rooms, seqs, holds
// and rates. It answers a chunk that cannot be stored with its error and
// returns false; otherwise it returns the chunk's record and the number
// the session admitted it under (textFailures).
func (s *session) checkText(m wire.Message) (record, uint64, bool) {
	n := s.n
	room := m.Room
	if s.rooms[room] == nil {
		s.reply(roomError(wire.CodeBadRequest, room, m.Seq, "not in room %q; join it first", room))
		return record{}, 0, false
	}
	if m.Seq == 0 || m.Seq > MaxSeq {
		s.reply(roomError(wire.CodeBadRequest, room, m.Seq, "text needs a seq from 1 to %d", uint64(MaxSeq)))
		return record{}, 0, false
	}
	if len(m.T) > n.cfg.MaxChunk {
		s.reply(roomError(wire.CodeLimit, room, m.Seq, "chunk of %d bytes; at most %d", len(m.T), n.cfg.MaxChunk))
		return record{}, 0, false
	}
	// The hold is read and changed in one step: the writer's answers
	// change it too.
	s.textMu.Lock()
	last := s.seqs[room]
	if now := time.Now(); m.Seq > last+MaxSeqJump && now.Sub(s.seqAsked[room]) >= seqAskEvery {
		// The session knows the seqs its own text and its states
		// showed stored; another session of the user (another device)
		// numbers on above what it stored, and the client follows
		// (docs/protocol.md, "The client's duties"). The room knows
		// the user's last: asked before a refusal, at most once every
		// seqAskEvery in each room (a round trip to the room's
		// goroutine, which a stream of far seqs must not load), and
		// kept.
		s.seqAsked[room] = now
		s.textMu.Unlock()
		stored, err := s.rooms[room].userSeq(s.user, n.cfg.StoreTimeout)
		s.textMu.Lock()
		if _, joined := s.seqs[room]; err == nil && joined {
			s.seqs[room] = max(s.seqs[room], stored)
			last = s.seqs[room]
		}
	}
	if m.Seq > last+MaxSeqJump {
		s.textMu.Unlock()
		s.reply(roomError(wire.CodeBadRequest, room, m.Seq, "seq %d is more than %d above %d, your last stored in %s; count on from there", m.Seq, MaxSeqJump, last, room))
		return record{}, 0, false
	}
	if h := s.held[room]; h.held() && m.Seq > h.next {
		// Storing it would put it before a chunk refused earlier, which
		// the stream would then take for a duplicate: the text is lost.
		s.holdLocked(room, m.Seq, m.Seq)
		s.textMu.Unlock()
		s.reply(roomError(wire.CodeUnavailable, room, m.Seq, "%v", heldError(room, m.Seq, h.next)))
		return record{}, 0, false
	}
	// A chunk costs what its text takes on the wire (wire.TextCost), at
	// most the whole burst: the clients wait for a full bucket, no more,
	// and a chunk that cost more could never pass.
	if !s.limiter.allow(time.Now(), min(wire.TextCost(m.T), n.cfg.ByteBurst)) {
		s.holdLocked(room, m.Seq, m.Seq)
		s.textMu.Unlock()
		s.reply(roomError(wire.CodeRate, room, m.Seq, "text faster than %v chunks or %v bytes a second; slow down and resend", n.cfg.ChunkRate, n.cfg.ByteRate))
		return record{}, 0, false
	}
	// At or below the seq held: it goes to the writer before anything
	// after it, and the held seq passes the hold on to the next seq; if
	// it fails again, its answer holds the room again before the writer
	// takes the next.
	s.updateHoldLocked(room, func(h *textHold) { h.admit(m.Seq) })
	s.admitted++
	admitted := s.admitted
	s.textMu.Unlock()
	return record{Op: recText, User: s.user, Key: s.key(), Seq: m.Seq, T: m.T, Dev: s.device}, admitted, true
}

// errHeldBack says a chunk waits for an earlier one that was refused.
var errHeldBack = errors.New("an earlier chunk was not stored")

// heldError says why chunk seq of room waits.
func heldError(room string, seq, held uint64) error {
	return fmt.Errorf("seq %d waits for seq %d: %w; join %s again and resend, in order, the chunks not acknowledged", seq, held, errHeldBack, room)
}

// storeTexts publishes recs, checked chunks of room in the order sent
// (the first admitted under the number admitted), live to the room's
// members, and hands them to the room's writer, which acknowledges them
// (in one write) once stored or answers each with unavailable. It blocks
// only while the writer's queue is full.
func (s *session) storeTexts(room string, recs []record, admitted uint64) {
	e := s.n.rooms
	f := s.rooms[room]
	e.publishLive(f, recs)
	start := time.Now()
	first := recs[0].Seq
	req := &textReq{
		recs: recs,
		check: func() error {
			s.textMu.Lock()
			defer s.textMu.Unlock()
			if h := s.held[room]; h.held() && first > h.next {
				return heldError(room, first, h.next)
			}
			if fs := s.failed[room]; len(fs) > 0 {
				blocked := fs.blocks(first, admitted)
				s.failed[room] = fs
				if blocked {
					return fmt.Errorf("seq %d was sent before a store that failed: %w; join %s again and resend, in order, the chunks not acknowledged", first, errHeldBack, room)
				}
			}
			return nil
		},
		done: func(err error) {
			defer s.stores.Done()
			s.stored(room, recs, start, err)
		},
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.storeTimeout())
	defer cancel()
	s.stores.Add(1)
	if err := f.submitText(ctx, req); err != nil {
		req.done(err) // logs it
	}
}

// stored answers recs, a session's chunks of room handed to the writer at
// start, once the writer stored them (err nil) or could not. It runs on
// the writer's goroutine.
func (s *session) stored(room string, recs []record, start time.Time, err error) {
	n, e := s.n, s.n.rooms
	var out []byte
	s.textMu.Lock()
	if err != nil {
		s.holdLocked(room, recs[0].Seq, recs[len(recs)-1].Seq)
		if s.failed == nil {
			s.failed = make(map[string]textFailures)
		}
		fs := s.failed[room]
		fs.failed(recs[0].Seq, s.admitted)
		s.failed[room] = fs
	} else if _, joined := s.seqs[room]; joined {
		for _, rec := range recs {
			s.seqs[room] = max(s.seqs[room], rec.Seq)
			s.updateHoldLocked(room, func(h *textHold) { h.stored(rec.Seq) })
		}
	}
	s.textMu.Unlock()
	if err != nil && !errors.Is(err, errHeldBack) {
		n.log.Warn("storing text", "room", room, "session", s.id, "seq", recs[0].Seq, "chunks", len(recs), "err", err)
	}
	for _, rec := range recs {
		m := wire.Message{Op: wire.OpAck, Room: room, Seq: rec.Seq}
		if err != nil {
			m = roomError(wire.CodeUnavailable, room, rec.Seq, "text not stored: %v; resend it", err)
			n.metrics.errorSent(wire.CodeUnavailable)
		} else {
			e.metrics.textStored(start)
		}
		line, eerr := wire.Encode(m)
		if eerr != nil {
			n.log.Error("encoding an answer to text", "err", eerr)
			continue
		}
		out = append(out, line...)
	}
	s.push(out)
}

// holdLocked notes the chunks first..last of room refused: until the
// client has sent them again in order (or a state shows them stored),
// every chunk of room above the first not sent again is refused, since a
// sender's chunks must be stored in the order of their seqs (textHold).
func (s *session) holdLocked(room string, first, last uint64) {
	s.updateHoldLocked(room, func(h *textHold) { h.refused(first, last) })
}

// updateHoldLocked applies change to room's hold, and forgets the hold
// once it is lifted.
func (s *session) updateHoldLocked(room string, change func(*textHold)) {
	h := s.held[room]
	change(&h)
	if !h.held() {
		delete(s.held, room)
		return
	}
	if s.held == nil {
		s.held = make(map[string]textHold)
	}
	s.held[room] = h
}

// leaveRooms releases the session's rooms as it ends. Its leave is
// published unless the node is stopping (a graceful stop publishes the
// leaves of all sessions at once; a crash publishes none).
func (s *session) leaveRooms() {
	e := s.n.rooms
	if len(s.rooms) == 0 {
		return
	}
	key := s.key()
	s.stores.Wait() // its text first, then its leaves
	// Two seconds for all: a session that ends while the storage is down
	// leaves its memberships to the feeds' cleanup (release keeps them).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for room, f := range s.rooms {
		_, _ = f.detach(ctx, key, 0)
		var linger time.Duration
		if !e.closing.Load() {
			if _, err := e.publish(ctx, room, record{Op: recLeave, Keys: []string{key}}, ""); err != nil {
				s.n.log.Warn("publishing the leave of a closed session", "room", room, "session", s.id, "err", err)
				linger = s.n.cfg.StoreTimeout // the feed removes the membership
			}
		}
		e.release(f, key, linger)
		delete(s.rooms, room)
	}
}

// bucket is a token bucket that holds up to burst tokens and gains rate
// tokens a second. It reads no clock: the caller passes the time.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int) bucket {
	return bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *bucket) refill(now time.Time) {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if now.After(b.last) {
		b.last = now
	}
}

// seqAskEvery is how often at most a session asks a room for its user's
// last stored seq, before refusing a chunk too far above what it knows.
const seqAskEvery = time.Second

// MaxSeqJump is how far above the last seq of the user's text that the
// session knows stored in a room (from the room's state when it joined,
// then from its own acknowledged chunks) a chunk's seq may be. Seqs may
// skip (the receivers mark the gap as lost text) but never by more, so no
// single chunk can make every later seq of its user a duplicate.
const MaxSeqJump = 10000

// MaxSeq is the largest seq a text chunk may carry (wire.MaxSeq).
const MaxSeq = wire.MaxSeq

// RoomOpRate and RoomOpBurst bound a session's joins (re-joins included,
// each answered with the room's whole state) and leaves: a bucket of
// RoomOpBurst operations refilled at RoomOpRate a second.
const (
	RoomOpRate  = 5
	RoomOpBurst = 20
)

// textLimiter bounds a session's text, one bucket of chunks and one of
// bytes, and its room operations.
type textLimiter struct {
	chunks, bytes, roomOps bucket
}

func newTextLimiter(cfg Config) textLimiter {
	return textLimiter{
		chunks:  newBucket(cfg.ChunkRate, cfg.ChunkBurst),
		bytes:   newBucket(cfg.ByteRate, cfg.ByteBurst),
		roomOps: newBucket(RoomOpRate, RoomOpBurst),
	}
}

// allowRoomOp takes one room operation from its bucket if it holds one.
func (l *textLimiter) allowRoomOp(now time.Time) bool {
	l.roomOps.refill(now)
	if l.roomOps.tokens < 1 {
		return false
	}
	l.roomOps.tokens--
	return true
}

// allow takes one chunk of size bytes from the buckets if both hold
// enough, and reports whether it did.
func (l *textLimiter) allow(now time.Time, size int) bool {
	l.chunks.refill(now)
	l.bytes.refill(now)
	if l.chunks.tokens < 1 || l.bytes.tokens < float64(size) {
		return false
	}
	l.chunks.tokens--
	l.bytes.tokens -= float64(size)
	return true
}
