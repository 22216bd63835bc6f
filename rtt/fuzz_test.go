package rtt

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// chunkSizes are the chunk lengths a plan byte's high nibble selects: from
// typing to pastes longer than MaxLineBytes.
var chunkSizes = [16]int{1, 1, 1, 2, 2, 3, 4, 5, 8, 13, 21, 34, 64, 512, 1024, 4100}

// FuzzApply cuts data into chunks as plan says and feeds them to a room
// from several senders, with in-order, unsequenced, skipped and repeated
// seqs. Each plan byte chooses a chunk: bits 0-1 the sender, bits 2-3 the
// seq, bits 4-7 the length. It checks that nothing panics, that every line
// is valid UTF-8 without control characters and within MaxLineBytes, that
// the history stays within its limit, that a sender's results do not depend
// on the other senders' chunks, that a snapshot restores the room, and
// that a room that joined late (loaded from the State of the first after
// every third chunk, so without what the first remembers of its lines'
// clusters) then applies every chunk as the first does.
func FuzzApply(f *testing.F) {
	f.Add([]byte("hello\b\r\nworld"), []byte{0x00})
	f.Add([]byte("ab\r\ncd\re\nf\u2028g\u2029h"), []byte{0x10, 0x21, 0x30, 0x42})
	f.Add([]byte("👨‍👩‍👧\b🇸🇪🇫\b\bcafe\u0301\b日本\b"), []byte{0x05, 0x36, 0x07})
	f.Add([]byte("\x1b[31mred\x1b[0m\u009b1m\x1ba\a\ufeff\x00\x7f\u0085\t"), []byte{0x80, 0x93})
	f.Add([]byte("a\xff\xfe\xe6\x97b\xed\xa0\x80\xc0\xaf"), []byte{0x20, 0x0c, 0x1d})
	f.Add(make([]byte, 5000), []byte{0xf0, 0xf1})
	f.Add([]byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"), []byte{})

	f.Fuzz(func(t *testing.T, data, plan []byte) {
		const maxLines = 4
		senders := [4]string{"ann", "bob", "eve", ""}
		room := NewRoom(maxLines)
		alone := map[string]*Room{} // each sender's chunks, without the others
		seqs := map[string]uint64{} // the last seq applied from each sender
		var completed []Line
		var joiner *Room
		for i, p := 0, 0; i < len(data); p++ {
			if p%3 == 1 {
				var err error
				if joiner, err = FromState(maxLines, room.State()); err != nil {
					t.Fatalf("FromState(State()): %v", err)
				}
			}
			b := byte(0xf0) // no plan: chunks of 4100 bytes from ann
			if len(plan) > 0 {
				b = plan[p%len(plan)]
			}
			from := senders[b&3]
			end := min(i+chunkSizes[b>>4], len(data))
			text := string(data[i:end])
			i = end

			last := seqs[from]
			var seq uint64
			switch (b >> 2) & 3 {
			case 0:
				seq = last + 1
			case 1:
				seq = 0
			case 2:
				seq = last + 2
			case 3:
				seq = last // a repeat, or unsequenced before the first
			}

			res := room.Apply(from, seq, text)
			if res.Duplicate && (res.Gap || res.Alerts != 0 || res.Lines != nil) {
				t.Fatalf("duplicate with effects: %+v", res)
			}
			if res.Duplicate != (seq != 0 && seq <= last) {
				t.Fatalf("Apply(%q, %d) after seq %d: Duplicate = %v", from, seq, last, res.Duplicate)
			}
			if res.Gap != (seq > last+1) {
				t.Fatalf("Apply(%q, %d) after seq %d: Gap = %v", from, seq, last, res.Gap)
			}
			if seq > last {
				seqs[from] = seq
			}
			for _, l := range res.Lines {
				if l.From != from {
					t.Fatalf("line %+q from %q in a chunk from %q", l.Text, l.From, from)
				}
				if why := checkText(l.Text); why != "" {
					t.Fatalf("completed line %+q: %s", l.Text, why)
				}
			}
			completed = append(completed, res.Lines...)
			if why := checkText(room.Live(from)); why != "" {
				t.Fatalf("live line of %q %+q: %s", from, room.Live(from), why)
			}
			if n := len(room.history()); n > maxLines {
				t.Fatalf("%d lines in the history, more than %d", n, maxLines)
			}

			if joiner != nil {
				if got := joiner.Apply(from, seq, text); !sameResult(res, got) {
					t.Fatalf("result depends on the room's past: %+v in the room, %+v in one loaded from its state", res, got)
				}
			}
			if alone[from] == nil {
				alone[from] = NewRoom(maxLines)
			}
			if got := alone[from].Apply(from, seq, text); !sameResult(res, got) {
				t.Fatalf("result depends on other senders: %+v with them, %+v alone", res, got)
			}
		}

		st := room.State()
		want := completed[max(len(completed)-maxLines, 0):]
		if diff := cmp.Diff(st.Lines, append([]Line{}, want...)); diff != "" {
			t.Fatalf("history is not the last completed lines (-got +want):\n%s", diff)
		}
		for _, l := range st.Lines {
			if why := checkText(l.Text); why != "" {
				t.Fatalf("history line %+q: %s", l.Text, why)
			}
		}
		for who, live := range st.Live {
			if why := checkText(live); why != "" {
				t.Fatalf("live line of %q %+q: %s", who, live, why)
			}
			if want := alone[who].Live(who); live != want {
				t.Fatalf("live line of %q: %+q with others, %+q alone", who, live, want)
			}
		}
		if diff := cmp.Diff(st.Seqs, seqs, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("seqs (-got +want):\n%s", diff)
		}
		if joiner != nil {
			if diff := cmp.Diff(joiner.State(), st); diff != "" {
				t.Fatalf("room loaded from the state on the way (-got +want):\n%s", diff)
			}
		}
		restored, err := FromState(maxLines, st)
		if err != nil {
			t.Fatalf("FromState(State()): %v", err)
		}
		if diff := cmp.Diff(restored.State(), st); diff != "" {
			t.Fatalf("restored state (-got +want):\n%s", diff)
		}
	})
}

// sameResult reports whether a and b are equal.
func sameResult(a, b Result) bool {
	return a.Duplicate == b.Duplicate && a.Gap == b.Gap && a.Alerts == b.Alerts &&
		slices.Equal(a.Lines, b.Lines)
}
