package node

// textHold keeps one session's chunks of one room in the order of their
// seqs across refusals. A chunk refused (rate, a failed store, or a
// chunk waiting behind one) is not stored, and no chunk above it may be
// stored before it: the room would take the resend for a duplicate, and
// the text in between would be lost. The client resends in order from
// the first chunk refused, so the hold passes each refused seq only as
// that seq comes again (or is stored, or a room state shows it stored),
// one after the other, and is gone once every seq it refused has.
//
// It is pure: the session guards it with textMu.
type textHold struct {
	next uint64 // the lowest seq refused and not passed since; 0: no hold
	last uint64 // the highest seq refused while held
}

// held reports whether chunks above next are refused.
func (h *textHold) held() bool { return h.next != 0 }

// refused notes that the chunks first..last were not stored.
func (h *textHold) refused(first, last uint64) {
	if !h.held() {
		h.next, h.last = first, last
		return
	}
	h.next = min(h.next, first)
	h.last = max(h.last, last)
}

// admit reports whether the chunk seq may go to storage now: any chunk
// at or below the next seq held may (the one held passes it on to the
// seq after it); a chunk above it is refused, and counted as refused.
func (h *textHold) admit(seq uint64) bool {
	switch {
	case !h.held() || seq < h.next:
		return true
	case seq == h.next:
		h.pass(seq)
		return true
	}
	h.last = max(h.last, seq)
	return false
}

// stored notes that the chunk seq was stored.
func (h *textHold) stored(seq uint64) {
	if h.held() && seq == h.next {
		h.pass(seq)
	}
}

// storedThrough notes that a room state shows every chunk up to seq
// stored.
func (h *textHold) storedThrough(seq uint64) {
	if h.held() && seq >= h.next {
		h.pass(seq)
	}
}

// pass moves the hold past seq, and lifts it past the last refused.
func (h *textHold) pass(seq uint64) {
	h.next = seq + 1
	if h.next > h.last {
		*h = textHold{}
	}
}

// textFailure remembers, for one session's room, the stores that failed
// since its last room state: seq is the lowest chunk not stored, at the
// number of chunks the session had admitted by then. The chunks admitted
// before a failure still wait in the writer's queue when the resends of
// the failed ones pass the hold (they come after them in the queue);
// storing one above seq then would put it before those resends, so the
// writer refuses them too. A re-join forgets it, once every chunk
// admitted before has been answered.
type textFailure struct {
	seq, at uint64 // at 0: no failure
}

// failed notes a store that failed at seq, after at chunks were admitted.
func (f *textFailure) failed(seq, at uint64) {
	if f.at == 0 {
		f.seq, f.at = seq, at
		return
	}
	f.seq = min(f.seq, seq)
	f.at = max(f.at, at)
}

// blocks reports whether chunks from first on, admitted as number
// admitted, must not be stored.
func (f textFailure) blocks(first, admitted uint64) bool {
	return f.at != 0 && admitted <= f.at && first > f.seq
}
