package rtt

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

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

// segmentAtoms are the characters whose clusters carry state from one
// character to the next, a few ordinary ones, and pairs of them, so that
// text added at once can hold a head.
var segmentAtoms = []string{
	"x", "\u00e9", "\u00a9", "\U0001F468", "\u200d", "\u0301", "\U0001F3FD", "\ufe0f",
	"\U0001F1F8", "\u1100", "\u1161", "\u11a8", "\uac00", "\u0600", "\u0903",
	"\u0915", "\u094d", "\r", "\n",
	"\u00a9\u0301", "\u200d\u00a9", "\u0301\u0301", "\u0301\u200d", "\U0001F1F8\U0001F1F8",
}

// checkSegmentation builds a line of atoms, segmenting it after the atoms
// whose bit is set in every, then erases it cluster by cluster and checks
// each step against refLastCluster.
func checkSegmentation(t *testing.T, atoms []string, every uint) {
	t.Helper()
	var s segmentation
	var line []byte
	for i, a := range atoms {
		line = append(line, a...)
		if every&(1<<i) != 0 {
			s.segment(line)
		}
	}
	for len(line) > 0 {
		want := refLastCluster(string(line))
		before := string(line)
		line = s.erase(line)
		if len(line) != want {
			t.Fatalf("atoms %+q, segmented after %b: erasing %+q left %+q; uniseg says %+q", atoms, every, before, line, before[:want])
		}
	}
}

// TestSegmentationSmall builds every line of up to three segmentAtoms,
// segmented after every choice of atoms, and erases it: every way a
// remembered cluster can grow from one or two characters.
func TestSegmentationSmall(t *testing.T) {
	var walk func(atoms []string)
	walk = func(atoms []string) {
		for every := range uint(1) << len(atoms) {
			checkSegmentation(t, atoms, every)
		}
		if len(atoms) == 3 {
			return
		}
		for _, a := range segmentAtoms {
			walk(append(atoms, a))
		}
	}
	walk(nil)
}

// TestSegmentationRandom adds, segments and erases at random over
// segmentAtoms, checking every erasure against refLastCluster.
func TestSegmentationRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 29))
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	for range rounds {
		var s segmentation
		var line []byte
		var log []string
		for range 40 {
			switch k := rng.IntN(10); {
			case k < 5:
				a := segmentAtoms[rng.IntN(len(segmentAtoms))]
				line = append(line, a...)
				log = append(log, a)
			case k < 7:
				s.segment(line)
				log = append(log, "|")
			default:
				want := refLastCluster(string(line))
				before := string(line)
				line = s.erase(line)
				log = append(log, "\b")
				if len(line) != want {
					t.Fatalf("after %+q: erasing %+q left %+q; uniseg says %+q", log, before, line, before[:want])
				}
			}
		}
	}
}

// TestSegmentationWholeClusters checks the fallback for a uniseg that
// joins Indic conjuncts: with whole clusters for stand-ins, erasing must
// still agree with the reference.
func TestSegmentationWholeClusters(t *testing.T) {
	old := headsSuffice
	headsSuffice = false
	t.Cleanup(func() { headsSuffice = old })
	TestSegmentationRandom(t)
	TestEraseAdversarial(t)
}

// FuzzErase checks erasures after any line a Room can hold, with any
// chunk, against refLastCluster (see checkErasure).
func FuzzErase(f *testing.F) {
	f.Add("", "a\u0301\b\u00a9\u200d\u00a9\b\b")
	f.Add(hostileLines[0].line, "\u00a9\b\u00a9\b")
	f.Add("\u00a9"+strings.Repeat("\u0301", 40), "\u200d\u00a9\b\u0301\b\b")
	f.Add(strings.Repeat("\U0001F1F8", 50), "\U0001F1EA\b\b\U0001F1F8\b")
	f.Fuzz(func(t *testing.T, start, chunk string) {
		// Applied a character at a time, invalid UTF-8 and escape
		// sequences would mean something else than applied whole.
		if checkText(start) != "" || !utf8.ValidString(chunk) || strings.ContainsAny(chunk, "\x1b\u009b") {
			return
		}
		half := len(chunk) / 2
		for half < len(chunk) && !utf8.RuneStart(chunk[half]) {
			half++
		}
		checkErasure(t, start, []string{chunk[:half], chunk[half:]})
	})
}
