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

// textFailures remembers, for one session's room, the stores that
// failed since its last room state, each as the lowest chunk not stored
// (seq) and the number of chunks the session had admitted by then (at).
// The chunks admitted before a failure still wait in the writer's queue
// when the resends of the failed ones pass the hold (they come after
// them in the queue); storing one above the failed seq then would put it
// before those resends, so the writer refuses them too. A re-join
// forgets them, once every chunk admitted before has been answered.
type textFailures []textFailure

// textFailure is one store that failed: see textFailures.
type textFailure struct{ seq, at uint64 }

// failed notes a store that failed at seq, after at chunks were admitted.
func (fs *textFailures) failed(seq, at uint64) {
	*fs = append(*fs, textFailure{seq: seq, at: at})
}

// blocks reports whether a request of chunks from first on, the first
// admitted as number admitted, must not be stored: a failure after its
// admission is below it. The writer takes requests in the order
// admitted, so failures before this one's admission can block no later
// request either: they are forgotten.
func (fs *textFailures) blocks(first, admitted uint64) bool {
	kept := (*fs)[:0]
	blocked := false
	for _, f := range *fs {
		if f.at < admitted {
			continue
		}
		kept = append(kept, f)
		blocked = blocked || first > f.seq
	}
	*fs = kept
	return blocked
}
