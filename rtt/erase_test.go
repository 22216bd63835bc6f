package rtt

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rivo/uniseg"
)

// refLastCluster is the reference a Room's BACKSPACE must agree with: it
// segments the whole line from its start with uniseg, the most
// straightforward reading of "erase the last extended grapheme cluster",
// and returns the offset at which the last cluster begins.
func refLastCluster(line string) int {
	last, off := 0, 0
	for state := -1; line != ""; {
		var c string
		c, line, _, state = uniseg.FirstGraphemeClusterInString(line, state)
		last, off = off, off+len(c)
	}
	return last
}

// eraseAtoms are what eraseChunk strings together: the scripts of
// diffAtoms and the characters whose clusters reach furthest, with
// BACKSPACE among them.
var eraseAtoms = append(slices.Concat(diffAtoms...),
	"\u00a9", "\u200d", "\u0301", "\u0300", "\ufe0f", "\U0001F3FB", "\U0001F3FD",
	"\U0001F1F8", "\U0001F1EA", "\U0001F1EB", // regional indicators
	"\u1100", "\u1161", "\u11a8", "\uac00", "\uac01", // Hangul L, V, T, LV, LVT
	"\u0600", "\u0903", "\u0e33", // Prepend, SpacingMarks
	"\u0915\u094d", "\r\n", "\U0001F468\u200d\U0001F469", "x\u0301\u0301\u200d",
)

// eraseChunk returns a random chunk of typing and erasing: mostly short
// runs of eraseAtoms and BACKSPACEs, sometimes a run long enough to pass
// maxWalk or to fill most of a line with one cluster.
func eraseChunk(rng *rand.Rand) string {
	var sb strings.Builder
	for range 1 + rng.IntN(12) {
		if rng.IntN(4) == 0 {
			sb.WriteString(strings.Repeat("\b", 1+rng.IntN(4)))
			continue
		}
		atom := eraseAtoms[rng.IntN(len(eraseAtoms))]
		n := 1
		switch rng.IntN(60) {
		case 0:
			n = 20 + rng.IntN(120)
		case 1:
			n = 500 + rng.IntN(1500)
		}
		sb.WriteString(strings.Repeat(atom, n))
	}
	return sb.String()
}

// eraseLines are lines to start from: the hostile ones and a few whose
// last cluster is long or ends in a run that a later character may join.
var eraseLines = []string{
	"",
	hostileLines[0].line,
	hostileLines[1].line,
	"\u00a9" + strings.Repeat("\u0301", 100),
	"\u00a9" + strings.Repeat("\u0301", 100) + "\u200d",
	strings.Repeat("\U0001F1F8", 201),
	strings.Repeat("\u0600", 300),
	strings.Repeat("\u1100", 100) + strings.Repeat("\u1161", 100),
	strings.Repeat("a", 4000) + "\u0301",
}

// checkErasure applies chunks to two Rooms, one whole and one a character
// at a time, and checks every BACKSPACE of the second against
// refLastCluster and against lastCluster (the walk back that Room used
// before it kept the line's clusters), and that both Rooms end alike. It
// returns how many BACKSPACEs it checked, stopping at the first
// difference.
func checkErasure(t *testing.T, start string, chunks []string) int {
	t.Helper()
	st := State{Lines: []Line{}, Live: map[string]string{"eve": start}}
	whole, err := FromState(0, st)
	if err != nil {
		t.Fatal(err)
	}
	single, err := FromState(0, st)
	if err != nil {
		t.Fatal(err)
	}
	erased := 0
	for i, c := range chunks {
		if i > 0 && i%4 == 0 {
			// A snapshot reloaded: the Room starts over from the text.
			if err := whole.Load(whole.State()); err != nil {
				t.Fatal(err)
			}
		}
		whole.Apply("eve", 0, c)
		for _, r := range c {
			before := single.Live("eve")
			single.Apply("eve", 0, string(r))
			if r != bs {
				continue
			}
			erased++
			got := single.Live("eve")
			want := before[:refLastCluster(before)]
			if got != want {
				t.Errorf("from %+q, chunks %+q:\nBACKSPACE after %+q left %+q; uniseg says %+q", trim(start), trimAll(chunks[:i+1]), trim(before), trim(got), trim(want))
				return erased
			}
			if old := before[:lastCluster(before)]; old != want {
				t.Errorf("lastCluster(%+q) = %d; uniseg says %d", trim(before), len(old), len(want))
				return erased
			}
		}
		if w, s := whole.Live("eve"), single.Live("eve"); w != s {
			t.Errorf("from %+q, chunks %+q:\nline %+q applied whole, %+q a character at a time", trim(start), trimAll(chunks[:i+1]), trim(w), trim(s))
			return erased
		}
	}
	if diff := cmp.Diff(texts(whole.State().Lines), texts(single.State().Lines)); diff != "" {
		t.Errorf("from %+q, chunks %+q: completed lines (-whole +a character at a time):\n%s", trim(start), trimAll(chunks), diff)
	}
	return erased
}

// trim shortens s for a failure message.
func trim(s string) string {
	if len(s) <= 200 {
		return s
	}
	return s[:60] + "…" + s[len(s)-120:]
}

func trimAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = trim(s)
	}
	return out
}

// TestEraseMatchesReference types and erases random chunks in a Room and
// checks every erasure against uniseg segmenting the whole line. The seed
// is fixed, so a failure repeats.
func TestEraseMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(140, 4103))
	cases := 600
	if testing.Short() {
		cases = 100
	}
	erased := 0
	for i := range cases {
		chunks := make([]string, 1+rng.IntN(10))
		for j := range chunks {
			chunks[j] = eraseChunk(rng)
		}
		erased += checkErasure(t, eraseLines[i%len(eraseLines)], chunks)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d sequences, %d erasures checked", cases, erased)
}

// TestEraseAdversarial checks the chunks a hostile sender would send
// after the lines that make erasing expensive.
func TestEraseAdversarial(t *testing.T) {
	chunks := []string{
		"\u00a9\b\u00a9\b\u00a9\b",
		"\u200d\u00a9\b\u200d\u00a9\b",
		"\u0301\u00a9\b\u0301\u200d\u00a9\b",
		"\U0001F1F8\b\U0001F1F8\U0001F1EA\b\b",
		"\u1161\b\u11a8\b\u1100\b",
		"\u0600\b\u0600a\b",
		"\b\b\b",
		"\U0001F468\u200d\U0001F469\b\u00a9\u0301\b",
	}
	for _, start := range eraseLines {
		for _, c := range chunks {
			checkErasure(t, start, []string{c, c})
		}
		checkErasure(t, start, chunks)
		checkErasure(t, start, []string{strings.Repeat("\b", 300)})
	}
}
