package t140

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/rtt"
)

// TestLabel: a name shows in its label without anything that could end
// the label early, end its line, turn the text around or hide a
// difference from another name; invisible characters stay only where
// they build a visible sequence. Before, "]" passed as it was (a name
// could hold a whole forged line, "carol]: yes, send the money now
// [eve"), and joiners and tags stayed wherever they were, so "car\u200dol"
// and "carol\U000E0020" showed exactly as "carol".
func TestLabel(t *testing.T) {
	const (
		family  = "\U0001F468\u200D\U0001F469\u200D\U0001F467"
		england = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
		rainbow = "\U0001F3F3\uFE0F\u200D\U0001F308"
	)
	tests := []struct {
		name, in, want string
	}{
		{"plain", "sip:ann@example.com", "sip:ann@example.com"},
		{"brackets become parentheses", "carol]: yes, send the money now [eve", "carol): yes, send the money now (eve"},
		{"fullwidth and vertical brackets too", "\uFF3Bx\uFF3D\uFE47y\uFE48", "(x)(y)"},
		{"line ends and controls", "m\u2028x\r\n\u0085\x00", "m\uFFFDx\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"bidirectional controls", "\u202Eann\u2066\u200F", "\uFFFDann\uFFFD\uFFFD"},
		{"a joiner between letters", "car\u200Dol", "car\uFFFDol"},
		{"a non-joiner", "car\u200Col", "car\uFFFDol"},
		{"a joiner before a mark", "a\u200D\u0301", "a\uFFFD\u0301"},
		{"a joiner ending an emoji", "\U0001F468\u200D", "\U0001F468\uFFFD"},
		{"a tag after a letter", "carol\U000E0020", "carol\uFFFD"},
		{"tags without their cancel tag", "\U0001F3F4\U000E0067", "\U0001F3F4\uFFFD"},
		{"a variation selector after a letter", "carol\uFE0F", "carol\uFFFD"},
		{"a keycap's selector without the keycap", "1\uFE0F", "1\uFFFD"},
		{"an ideographic selector after a letter", "a\U000E0100", "a\uFFFD"},
		{"the combining grapheme joiner", "carol\u034F", "carol\uFFFD"},
		{"a soft hyphen", "car\u00ADol", "car\uFFFDol"},
		{"a Hangul filler", "\u3164carol", "\uFFFDcarol"},
		{"a zero-width space", "car\u200Bol", "car\uFFFDol"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"a family emoji", "ann " + family, "ann " + family},
		{"a subdivision flag", england + " fan", england + " fan"},
		{"a flag of a ZWJ sequence", rainbow, rainbow},
		// A joiner between two pictographs that no emoji ZWJ sequence
		// joins keeps them in one cluster but shows nothing: before, a
		// cat joined to a dog showed as a cat and a dog.
		{"a joiner between a cat and a dog", "ann\U0001F431\u200D\U0001F436", "ann\U0001F431\uFFFD\U0001F436"},
		{"a joiner between copyright signs", "\u00A9\u200D\u00A9", "\u00A9\uFFFD\u00A9"},
		{"a joiner after a mark on an emoji", "\U0001F469\u0301\u200D\U0001F4BB", "\U0001F469\u0301\uFFFD\U0001F4BB"},
		{"a profession with a skin tone", "\U0001F469\U0001F3FD\u200D\U0001F4BB", "\U0001F469\U0001F3FD\u200D\U0001F4BB"},
		{"a kiss", "\U0001F469\u200D\u2764\uFE0F\u200D\U0001F48B\u200D\U0001F468", "\U0001F469\u200D\u2764\uFE0F\u200D\U0001F48B\u200D\U0001F468"},
		{"a gendered activity", "\U0001F3C3\u200D\u2640\uFE0F", "\U0001F3C3\u200D\u2640\uFE0F"},
		{"a pirate flag", "\U0001F3F4\u200D\u2620\uFE0F", "\U0001F3F4\u200D\u2620\uFE0F"},
		{"a transgender flag", "\U0001F3F3\uFE0F\u200D\u26A7\uFE0F", "\U0001F3F3\uFE0F\u200D\u26A7\uFE0F"},
		{"a handshake with skin tones", "\U0001FAF1\U0001F3FB\u200D\U0001FAF2\U0001F3FF", "\U0001FAF1\U0001F3FB\u200D\U0001FAF2\U0001F3FF"},
		{"a red heart", "\u2764\uFE0F ann", "\u2764\uFE0F ann"},
		{"double exclamation as emoji", "\u203C\uFE0F", "\u203C\uFE0F"},
		{"a keycap", "1\uFE0F\u20E3", "1\uFE0F\u20E3"},
		{"an ideographic variation sequence", "\u845B\U000E0100\u98FE", "\u845B\U000E0100\u98FE"},
		{"marks and spacing", "Jos\u0065\u0301 Mar\u00EDa", "Jos\u0065\u0301 Mar\u00EDa"},
		// Where a joiner shapes letters (Persian, say) it shows too: the
		// difference it makes cannot always be seen.
		{"a Persian non-joiner", "\u062D\u0633\u0646\u200C\u0632\u0627\u062F\u0647", "\u062D\u0633\u0646\uFFFD\u0632\u0627\u062F\u0647"},
		// Look-alikes from other scripts are the room's to refuse.
		{"a Cyrillic look-alike", "c\u0430rol", "c\u0430rol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(label(tt.in), tt.want); diff != "" {
				t.Errorf("label(%+q) (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}

// TestMixerLabelsCannotBeForged: whatever their names, other members'
// lines never start with carol's label. Before, the member named
// "carol]: yes, send the money now [eve" typing "ok" showed
// "[carol]: yes, send the money now [eve]: ok", and members whose names
// held invisible characters showed "[carol]: " itself.
func TestMixerLabelsCannotBeForged(t *testing.T) {
	crafted := []string{
		"carol]: yes, send the money now [eve",
		"carol\uFF3D: yes [eve",
		"car\u200Dol", "car\u200Col", "carol\U000E0020", "carol\U000E0020\U000E007F",
		"carol\uFE0F", "carol\u034F", "car\u00ADol", "carol\u3164", "car\u200Bol",
		"\u2066carol\u2069", "\u202Elorac", "carol\u2028[carol", "carol\r\n[carol",
	}
	m := NewMixer(0)
	m.Write("carol", "hi\n", testTime)
	for _, name := range crafted {
		m.Write(name, "ok\n", testTime)
	}
	out := string(m.Take(testTime))
	lines := strings.Split(strings.TrimSuffix(out, LineSeparator), LineSeparator)
	if len(lines) != 1+len(crafted) {
		t.Fatalf("%d lines shown, want %d: %q", len(lines), 1+len(crafted), out)
	}
	for _, l := range lines {
		// What the caller sees: invisible characters take no room.
		seen := strings.Map(func(r rune) rune {
			if unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) {
				return -1
			}
			return r
		}, l)
		if rest, ok := strings.CutPrefix(seen, "[carol]: "); ok && rest != "hi" {
			t.Errorf("a line passes for carol's: %+q", l)
		}
		if strings.Count(l, "]: ") != 1 {
			t.Errorf("a line that does not hold one label end: %+q", l)
		}
	}
}

// TestMixerShowsTheRoomsText: the caller's screen holds, line for line,
// the text the room (rtt) has for a sender. Before, the mixer read text
// by rules of its own: an escape sequence cut by a chunk's end ate the
// next chunk's first character ("hiello" where the room had "hiHello"),
// a control sequence whose bytes came in the wrong order was dropped
// whole ("x" for the room's "x1m"), and a line the room broke at
// rtt.MaxLineBytes went on, so that a BACKSPACE the room spent on nothing
// erased a character on the caller's screen.
func TestMixerShowsTheRoomsText(t *testing.T) {
	long := strings.Repeat("a", rtt.MaxLineBytes+1)
	tests := []struct {
		name   string
		chunks []string
		want   string // what the caller is sent
	}{
		{"ESC at a chunk's end", []string{"hi\x1b", "Hello"}, "[ann]: hiHello"},
		{"CSI cut by a chunk's end", []string{"a\x1b[1;", "31mb"}, "[ann]: a31mb"},
		{"C1 CSI at a chunk's end", []string{"a\u009b", "1mb"}, "[ann]: a1mb"},
		{"intermediate before parameter bytes", []string{"x\x1b[!1m"}, "[ann]: x1m"},
		{"a whole sequence", []string{"x\x1b[1;31!my"}, "[ann]: xy"},
		{"the line broken at MaxLineBytes", []string{long, "\b\b"}, "[ann]: " + long[1:] + LineSeparator + "[ann]: a\b"},
		{"broken mid-chunk, then erased", []string{long[2:], "bcd", "\b\b\b"}, "[ann]: " + long[2:] + "b" + LineSeparator + "[ann]: cd\b\b"},
		{"a combining mark erased with its base", []string{"xe", "\u0301", "\b"}, "[ann]: xe\u0301\b"},
		{"an emoji sequence erased whole", []string{"\U0001F468\u200D\U0001F469", "\b"}, "[ann]: \U0001F468\u200D\U0001F469\b"},
		{"CR, then LF in the next chunk", []string{"a\r", "\nb"}, "[ann]: a" + LineSeparator + "[ann]: b"},
		{"BEL where it came", []string{"a\ab\x1b\a[1m"}, "[ann]: a\ab\a[1m"},
		{"a tab, controls and a BOM", []string{"a\tb\x01\x7f\ufeffc"}, "[ann]: a bc"},
		{"invalid UTF-8", []string{"a\xff\xfeb"}, "[ann]: a\uFFFDb"},
		{"erasing within a chunk's text", []string{"abc", "\b\bxy"}, "[ann]: abc\b\bxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkAgainstRoom(t, tt.chunks); got != tt.want {
				t.Errorf("sent %+q, want %+q", abbrev(got), abbrev(tt.want))
			}
		})
	}
}

// TestMixerShowsTheRoomsTextAlways: random chunks of the characters rtt
// gives a meaning, and of ones it drops, show as the room has them.
func TestMixerShowsTheRoomsTextAlways(t *testing.T) {
	pieces := []string{
		"a", "b", "e", "\u0301", "\U0001F468", "\u200D", "\U0001F1EB", "\b", "\b", "\b", "\r", "\n", "\r\n",
		LineSeparator, "\u2029", "\x1b", "[", "!", "1", ";", "m", "7", "\u009b", "\t", "\a", "\xff", "\xc3",
		"\ufeff", "\x00", "\u0085", Missing, strings.Repeat("a", 1000), "\u202E", "\u2067", "\u2069",
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		chunks := make([]string, 1+rnd.IntN(12))
		for i := range chunks {
			var b strings.Builder
			for range rnd.IntN(10) {
				b.WriteString(pieces[rnd.IntN(len(pieces))])
			}
			chunks[i] = b.String()
		}
		checkAgainstRoom(t, chunks)
		if t.Failed() {
			t.Fatalf("chunks: %+q", chunks)
		}
	}
}

// FuzzMixerShowsTheRoomsText is TestMixerShowsTheRoomsTextAlways for the
// fuzzer: text cut into chunks at each "|", a "~" standing for 1,000 "a"s.
func FuzzMixerShowsTheRoomsText(f *testing.F) {
	f.Add("hi\x1b|Hello")
	f.Add("x\x1b[!1m")
	f.Add("~~~~a~|\b\b")
	f.Add("e|\u0301|\b|\r|\n\x9b1m\a")
	f.Add(strings.Repeat("0\a", 2250)) // one chunk counting more than MaxQueued
	f.Fuzz(func(t *testing.T, script string) {
		script = strings.ReplaceAll(script, "~", strings.Repeat("a", 1000))
		if len(script) > MaxQueued {
			return
		}
		checkAgainstRoom(t, strings.Split(script, "|"))
	})
}

// checkAgainstRoom writes chunks from one sender to a Mixer, taking its
// text after each, and checks that the caller's screen (see screen)
// holds the lines and live line an rtt.Room holds for the same chunks,
// empty lines aside (a line the room completes empty shows nothing) and
// with a ZERO WIDTH SPACE for each bidirectional control, and as many
// BELs as the room counted. It returns what the caller was sent.
func checkAgainstRoom(t *testing.T, chunks []string) string {
	t.Helper()
	m := NewMixer(0)
	room := rtt.NewRoom(len(chunks) * (MaxQueued/rtt.MaxLineBytes + 10))
	var sent strings.Builder
	var want []string
	alerts := 0
	for _, c := range chunks {
		m.Write("ann", c, testTime)
		sent.Write(m.Take(testTime))
		res := room.Apply("ann", 0, c)
		alerts += res.Alerts
		for _, l := range res.Lines {
			if l.Text != "" {
				want = append(want, asSent.Replace(l.Text))
			}
		}
	}
	want = append(want, asSent.Replace(room.Live("ann")))
	got, bels := screen(t, "ann", sent.String())
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("the caller's lines differ from the room's (-got +want):\n%s", diff)
	}
	if bels != alerts {
		t.Errorf("%d BELs sent, want %d", bels, alerts)
	}
	return sent.String()
}

// asSent makes each bidirectional embedding, override and isolate
// control a ZERO WIDTH SPACE, as a Mixer sends them.
var asSent = strings.NewReplacer(
	"\u202A", zwsp, "\u202B", zwsp, "\u202C", zwsp, "\u202D", zwsp, "\u202E", zwsp,
	"\u2066", zwsp, "\u2067", zwsp, "\u2068", zwsp, "\u2069", zwsp,
)

const zwsp = "\u200B"

// TestMixerSendsNoBidiControls: the bidirectional embedding, override
// and isolate controls a sender types reach the caller as ZERO WIDTH
// SPACEs, which a BACKSPACE erases as the room erases the controls.
// Before, they reached the caller as they were, and since LINE SEPARATOR
// ends none of them, a RIGHT-TO-LEFT OVERRIDE left open in ann's line
// turned the next line, "[bob]: hi", around on a screen that lays text
// out by UAX #9.
func TestMixerSendsNoBidiControls(t *testing.T) {
	type write struct {
		ms         int // when, after testTime; the Mixer's text is taken then
		from, text string
	}
	tests := []struct {
		name   string
		writes []write
		want   string
	}{
		{"an override left open", []write{{0, "ann", "\u202Ehello\n"}, {0, "bob", "hi"}},
			"[ann]: " + zwsp + "hello\u2028[bob]: hi"},
		{"an isolate left open in a line interrupted", []write{{0, "ann", "\u2067abc"}, {0, "bob", "yo\n"}, {1000, "bob", ""}, {1000, "ann", "d\n"}},
			"[ann]: " + zwsp + "abc\u2028[bob]: yo\u2028[ann]: d\u2028"},
		{"every one of them", []write{{0, "ann", "\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069x"}},
			"[ann]: " + strings.Repeat(zwsp, 9) + "x"},
		{"erased", []write{{0, "ann", "a\u202E"}, {0, "ann", "\b"}, {0, "ann", "\u2066\u2069\b\b"}},
			"[ann]: a" + zwsp + "\b"},
		{"marks stay", []write{{0, "ann", "a\u200Fb\u200E\u061C"}}, "[ann]: a\u200Fb\u200E\u061C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMixer(time.Second)
			var got strings.Builder
			for _, w := range tt.writes {
				now := testTime.Add(time.Duration(w.ms) * time.Millisecond)
				m.Write(w.from, w.text, now)
				got.Write(m.Take(now))
			}
			if got.String() != tt.want {
				t.Errorf("sent %+q, want %+q", got.String(), tt.want)
			}
		})
	}
}

// screen reads the stream a Mixer sends for one sender as a caller's
// terminal shows it: every line must start with the sender's label, a
// LINE SEPARATOR ends one, a BACKSPACE erases the last grapheme cluster
// of the text after the label and must find one. It returns the lines
// without their labels, empty ones left out, the unfinished line last
// ("" for none), and the number of BELs.
func screen(t *testing.T, name, out string) (lines []string, bels int) {
	t.Helper()
	prefix := "[" + label(name) + "]: "
	var line strings.Builder
	labelled := false
	for out != "" {
		switch {
		case strings.HasPrefix(out, LineSeparator):
			out = out[len(LineSeparator):]
			if !labelled {
				t.Errorf("a line end with no line")
			}
			if line.Len() > 0 {
				lines = append(lines, line.String())
			}
			line.Reset()
			labelled = false
		case out[0] == '\a':
			out = out[1:]
			bels++
		case out[0] == '\b':
			out = out[1:]
			if line.Len() == 0 {
				t.Errorf("a BACKSPACE reaches into the label, or past the line's start")
				continue
			}
			s := rtt.Backspace(line.String())
			line.Reset()
			line.WriteString(s)
		case !labelled:
			rest, ok := strings.CutPrefix(out, prefix)
			if !ok {
				t.Fatalf("a line without its label: %+q", abbrev(out))
			}
			out, labelled = rest, true
		default:
			n := strings.IndexAny(out, "\a\b\u2028")
			if n < 0 {
				n = len(out)
			}
			line.WriteString(out[:n])
			out = out[n:]
		}
	}
	return append(lines, line.String()), bels
}

// abbrev shortens runs of 100 or more "a"s in s for a message.
func abbrev(s string) string {
	var b strings.Builder
	for s != "" {
		n := len(s) - len(strings.TrimLeft(s, "a"))
		switch {
		case n >= 100:
			b.WriteString("a×" + strconv.Itoa(n))
		case n > 0:
			b.WriteString(s[:n])
		default:
			n = 1
			b.WriteByte(s[0])
		}
		s = s[n:]
	}
	return b.String()
}

// TestMixerInterruptedLineErasure: a sender interrupted mid-line erases
// on the caller's screen only what was shown after their new label, by
// the room's clusters; what they type after shows on that line.
func TestMixerInterruptedLineErasure(t *testing.T) {
	m := NewMixer(time.Second)
	got := string(m.Take(testTime))
	m.Write("ann", "abc", testTime)
	got += string(m.Take(testTime))
	m.Write("bob", "yo\n", testTime)
	got += string(m.Take(testTime.Add(time.Second))) // ann idle: bob's turn
	m.Write("ann", "de", testTime.Add(2*time.Second))
	got += string(m.Take(testTime.Add(2 * time.Second)))
	m.Write("ann", "\b\b\b\bX", testTime.Add(2*time.Second)) // the room: "aX"
	got += string(m.Take(testTime.Add(2 * time.Second)))
	if want := "[ann]: abc\u2028[bob]: yo\u2028[ann]: de\b\bX"; got != want {
		t.Errorf("text = %+q, want %+q", got, want)
	}
}

// TestMixerBoundsWaitingEdits: a waiting sender's many small changes
// (a character typed, then erased, in chunk after chunk) count the memory
// they take against MaxQueued, not only the bytes they would send.
func TestMixerBoundsWaitingEdits(t *testing.T) {
	m := NewMixer(time.Second)
	m.Write("ann", "hi", testTime)
	m.Take(testTime)
	for range 20000 {
		m.Write("bob", "x", testTime)
		m.Write("bob", "\b", testTime)
	}
	s := m.senders["bob"]
	if len(s.queued) > MaxQueued/32+1 || s.size > MaxQueued {
		t.Errorf("bob's waiting changes: %d queued, counted %d bytes; want at most %d, counted at most %d", len(s.queued), s.size, MaxQueued/32+1, MaxQueued)
	}
	m.Write("ann", "\n", testTime)
	if got := string(m.Take(testTime)); strings.Count(got, Missing) != 1 || !strings.HasSuffix(got, Missing+LineSeparator) {
		t.Errorf("bob's text shown ends %+q, want it marked once where it was dropped", got[max(0, len(got)-12):])
	}
}
