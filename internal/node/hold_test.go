package node

import "testing"

// The hold, step by step, as one session's chunks come and are answered.
// The case that lost text: two resends of the same chunks overlap, a
// copy of the held seq stored from the first passes the hold on only to
// the next seq refused, not past the chunks refused after it.
func TestTextHold(t *testing.T) {
	type step struct {
		do       string // admit, refused, stored, through
		seq, end uint64
		want     bool   // admit's answer
		next     uint64 // the hold after the step (0: none)
	}
	steps := []step{
		{do: "admit", seq: 1, want: true},
		{do: "admit", seq: 5, want: true}, // seqs may skip while nothing is held
		{do: "refused", seq: 6, end: 6, next: 6},
		{do: "admit", seq: 7, want: false, next: 6}, // waits for 6; counted as refused
		{do: "admit", seq: 8, want: false, next: 6},
		{do: "admit", seq: 3, want: true, next: 6},  // at or below the hold: a duplicate
		{do: "admit", seq: 6, want: true, next: 7},  // the resend passes the hold to 7
		{do: "admit", seq: 9, want: false, next: 7}, // 7 and 8 not sent again yet
		{do: "admit", seq: 7, want: true, next: 8},
		{do: "admit", seq: 8, want: true, next: 9},
		{do: "admit", seq: 9, want: true, next: 0}, // every seq refused sent again
		{do: "admit", seq: 10, want: true},

		// A store that fails holds its first chunk and counts its last.
		{do: "refused", seq: 11, end: 14, next: 11},
		{do: "stored", seq: 12, next: 11}, // not the held one: no change
		{do: "stored", seq: 11, next: 12}, // a copy stored after all
		{do: "admit", seq: 20, want: false, next: 12},
		{do: "through", seq: 15, next: 16}, // a state shows 15 stored
		{do: "admit", seq: 17, want: false, next: 16},
		{do: "through", seq: 19, next: 20},
		{do: "admit", seq: 20, want: true, next: 0},

		// A lower refusal while held moves the hold down.
		{do: "refused", seq: 30, end: 30, next: 30},
		{do: "refused", seq: 25, end: 27, next: 25},
		{do: "through", seq: 24, next: 25}, // behind the hold: no change
		{do: "admit", seq: 25, want: true, next: 26},
	}
	var h textHold
	for i, s := range steps {
		got := true
		switch s.do {
		case "admit":
			got = h.admit(s.seq)
		case "refused":
			h.refused(s.seq, s.end)
		case "stored":
			h.stored(s.seq)
		case "through":
			h.storedThrough(s.seq)
		}
		if s.do == "admit" && got != s.want {
			t.Fatalf("step %d, %s %d: admitted %v, want %v", i, s.do, s.seq, got, s.want)
		}
		if h.next != s.next {
			t.Fatalf("step %d, %s %d: the hold is at %d (%+v), want %d", i, s.do, s.seq, h.next, h, s.next)
		}
	}
}

// A failed store blocks the chunks above it that were admitted before it
// (they wait in the writer's queue ahead of the resends), and nothing
// admitted after it; each failure only for what was admitted before it.
func TestTextFailures(t *testing.T) {
	var fs textFailures
	if fs.blocks(9, 1) {
		t.Fatal("no failure blocks")
	}
	fs.failed(4, 10) // seq 4 failed after 10 chunks were admitted
	fs.failed(6, 12) // then 6, refused, after 12 (the resends of 4 and 5 among them)
	for _, tt := range []struct {
		first, admitted uint64
		want            bool
	}{
		{7, 9, true},   // admitted before both, above 4: waits behind its resend
		{4, 10, false}, // the failed seq itself: a duplicate at worst
		{5, 11, false}, // admitted after the first failure, below the second
		{7, 12, true},  // admitted before the second, above it
		{7, 13, false}, // admitted after both: the hold decides
	} {
		if got := fs.blocks(tt.first, tt.admitted); got != tt.want {
			t.Errorf("first %d admitted %d: blocks %v, want %v", tt.first, tt.admitted, got, tt.want)
		}
	}
	if len(fs) != 0 {
		t.Errorf("after the writer took a request admitted after every failure, %d are kept", len(fs))
	}
}
