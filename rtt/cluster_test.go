package rtt

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/rivo/uniseg"
)

func TestBackspace(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"ascii", "abc", "ab"},
		{"one", "a", ""},
		{"two-byte", "aé", "a"},
		{"combining", "ae\u0301", "a"},
		{"combining accents stacked", "xa\u0323\u0302", "x"},
		{"combining only", "\u0301\u0302", ""},
		{"enclosing", "a\u20dd", ""},
		{"cjk", "中文", "中"},
		{"four-byte", "a\U00020000", "a"},
		{"emoji", "a😀", "a"},
		{"variation selector", "✌\ufe0f", ""},
		{"modifier", "✌🏿", ""},
		{"keycap", "a1\ufe0f\u20e3", "a"},
		{"zwj family", "x👨‍👩‍👧‍👦", "x"},
		{"zwj with modifiers", "x👩🏻‍🤝‍👨🏿", "x"},
		{"zwj rainbow flag", "x🏳️‍🌈", "x"},
		{"zwj sequences twice", "👨‍👩‍👧👨‍👩‍👧", "👨‍👩‍👧"},
		{"zwj to a letter", "👨\u200dx", "👨\u200d"},
		{"zwj from a letter", "x\u200d👨", "x\u200d"},
		{"zwj after zwj", "👨\u200d\u200d👩", "👨\u200d\u200d"},
		{"zwj after marks after emoji", "👨\u0301\u0301\u200d👩", ""},
		{"zwj after marks after letter", "x\u0301\u0301\u200d👩", "x\u0301\u0301\u200d"},
		{"flag", "🇯🇵", ""},
		{"flag after flag", "🇯🇵🇰🇷", "🇯🇵"},
		{"lone indicator after flag", "🇯🇵🇰", "🇯🇵"},
		{"three flags", "a🇯🇵🇰🇷🇸🇪", "a🇯🇵🇰🇷"},
		{"indicator after mark", "🇯\u0301🇵", "🇯\u0301"},
		{"tag sequence", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", ""},
		{"zwnj", "a\u200c", ""},
		// U+0E33 THAI CHARACTER SARA AM is a SpacingMark (GB9a).
		{"thai sara am", "กำ", ""},
		{"thai sara am after text", "xกำ", "x"},
		{"thai vowel above", "กิ", ""},
		{"hangul syllables", "한국", "한"},
		{"hangul jamo", "a\u1112\u1161\u11ab", "a"},
		{"hangul leading jamo join", "a\u1100\u1100\u1161", "a"},
		{"hangul lv then t", "a\uac00\u11a8", "a"},
		{"hangul lvt then t", "a\uac01\u11a8", "a"},
		{"hangul lvt then v", "\uac01\u1161", "\uac01"},
		{"hangul t then l", "\u11a8\u1100", "\u11a8"},
		{"devanagari spacing mark", "a\u0915\u093f", "a"},
		// uniseg implements Unicode 15.0, before GB9c joined conjuncts:
		// क्ष is क with its virama, then ष.
		{"devanagari conjunct", "a\u0915\u094d\u0937", "a\u0915\u094d"},
		{"devanagari virama", "a\u0915\u094d", "a"},
		{"prepend", "a\u0600\u0661", "a"},
		{"prepend alone", "a\u0600", "a"},
		{"prepends", "a\u0600\u0600b", "a"},
		{"prepend before cr", "a\u0600\r", "a\u0600"},
		{"crlf", "a\r\n", "a"},
		{"lf cr", "a\n\r", "a\n"},
		{"cr cr lf", "\r\r\n", "\r"},
		{"mark after lf", "a\n\u0301", "a\n"},
		{"invalid byte", "a\xff", "a"},
		{"invalid bytes", "a\xff\xfe", "a\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(Backspace(tt.in), tt.want); diff != "" {
				t.Errorf("Backspace(%+q) (-got +want):\n%s", tt.in, diff)
			}
			if got := lastCluster([]byte(tt.in)); got != len(tt.want) {
				t.Errorf("lastCluster([]byte(%+q)) = %d; want %d", tt.in, got, len(tt.want))
			}
		})
	}
}

// clusters splits s into extended grapheme clusters forwards with uniseg,
// from the start of s: the reference lastCluster must agree with.
func clusters(s string) []string {
	var out []string
	for state := -1; s != ""; {
		var c string
		c, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
		out = append(out, c)
	}
	return out
}

// checkBackspace checks lastCluster against the forward reference.
func checkBackspace(t *testing.T, s string) {
	t.Helper()
	cs := clusters(s)
	want := len(s)
	if len(cs) > 0 {
		want -= len(cs[len(cs)-1])
	}
	if got := lastCluster(s); got != want {
		t.Errorf("lastCluster(%+q) = %d; want %d (clusters %+q)", s, got, want, cs)
	}
	if got := lastCluster([]byte(s)); got != want {
		t.Errorf("lastCluster([]byte(%+q)) = %d; want %d (clusters %+q)", s, got, want, cs)
	}
}

func TestLastClusterMatchesReference(t *testing.T) {
	parts := []string{
		"a", "é", "e\u0301", "\u0301", "\u200d", "\u200c", "👨", "👩", "🏽", "\ufe0f",
		"🇸", "🇪", "中", "\u1100", "\u1161", "\u11a8", "✌", "©", "🏴", "\U000E0067", "\U000E007F",
		"\u0600", "\u0e01", "\u0e33", "\u0915", "\u094d", "\uac00", "\uac01", "\r", "\n",
	}
	// Every string of up to three parts.
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		checkBackspace(t, prefix)
		if depth == 3 {
			return
		}
		for _, p := range parts {
			walk(prefix+p, depth+1)
		}
	}
	walk("", 0)
}

// TestEraseAll erases a line character by character and checks that every
// step takes off exactly one forward cluster.
func TestEraseAll(t *testing.T) {
	line := "Café 日本 👨‍👩‍👧 🇸🇪🇫🇮 ✌🏿 1\ufe0f\u20e3 \u1112\u1161\u11ab e\u0323\u0302"
	want := clusters(line)
	var got []string
	for rest := line; rest != ""; {
		shorter := Backspace(rest)
		got = append([]string{rest[len(shorter):]}, got...)
		rest = shorter
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("characters erased (-got +want):\n%s", diff)
	}
	if n := len(want); n != 20 {
		t.Errorf("%d characters in %+q; want 20: %+q", n, line, want)
	}
}

func FuzzBackspace(f *testing.F) {
	for _, s := range []string{"", "abc", "e\u0301", "👨‍👩‍👧", "🇸🇪🇫", "a\u200d👨", strings.Repeat("🇸", 5)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			// Backspace still must not panic or cut a valid character.
			out := Backspace(s)
			if !strings.HasPrefix(s, out) {
				t.Fatalf("Backspace(%+q) = %+q, not a prefix", s, out)
			}
			return
		}
		checkBackspace(t, s)
		if out := Backspace(s); !utf8.ValidString(out) {
			t.Fatalf("Backspace(%+q) = %+q, not valid UTF-8", s, out)
		}
	})
}

// diffAtoms are the pieces the differential test strings together, by
// script: everyday text and the rarer grapheme classes around it.
var diffAtoms = [][]string{
	// Latin with accents, precomposed and combining.
	{"a", "e", "z", " ", ".", "é", "ñ", "\u0301", "\u0308", "\u0323"},
	// Emoji: pictographs, modifiers, ZWJ, variation selectors, keycaps,
	// regional indicators, tags.
	{"😀", "👨", "👩", "❤", "🏳", "🌈", "💻", "🏽", "🏿", "\u200d", "\ufe0f", "\ufe0e", "\u20e3", "1",
		"🇸", "🇪", "🇫", "🇮", "🏴", "\U000E0067", "\U000E0062", "\U000E007F"},
	// Hangul: syllables (LV, LVT) and conjoining jamo (L, V, T).
	{"한", "국", "\uac00", "\uac01", "\u1100", "\u1112", "\u1161", "\u1175", "\u11a8", "\u11ab"},
	// Devanagari: consonants, virama, vowel signs (spacing and not),
	// nukta, anusvara.
	{"\u0915", "\u0937", "\u0928", "\u0926", "\u094d", "\u093f", "\u0940", "\u0947", "\u093c", "\u0902"},
	// Thai: consonants, SARA AM (SpacingMark), vowels above and below,
	// tone marks, leading vowels.
	{"\u0e01", "\u0e25", "\u0e07", "\u0e33", "\u0e31", "\u0e34", "\u0e38", "\u0e48", "\u0e40", "\u0e44"},
	// Arabic: letters, harakat, Prepend number signs.
	{"\u0645", "\u0631", "\u062d", "\u0628", "\u064e", "\u0651", "\u0600", "\u0601", "\u06dd", "\u0661"},
	// Hebrew: letters and points.
	{"\u05e9", "\u05dc", "\u05d5", "\u05dd", "\u05b8", "\u05bc", "\u05c1"},
	// Line ends, a control and ZWNJ, which Backspace may meet outside a
	// Room.
	{"\r", "\n", "\t", "\u200c"},
}

// TestBackspaceMatchesUniseg erases random strings of mixed scripts one
// character at a time and checks every step against uniseg segmenting the
// whole string from its start. The seed is fixed, so a failure repeats.
func TestBackspaceMatchesUniseg(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 0x140))
	const cases = 4000
	steps, bad := 0, 0
	for range cases {
		// Most strings keep to two scripts, as text does; long runs of
		// one atom reach past safeStart's walk.
		var sb strings.Builder
		s1, s2 := diffAtoms[rng.IntN(len(diffAtoms))], diffAtoms[rng.IntN(len(diffAtoms))]
		for range rng.IntN(24) {
			set := s1
			if rng.IntN(3) == 0 {
				set = s2
			}
			atom := set[rng.IntN(len(set))]
			n := 1
			if rng.IntN(40) == 0 {
				n = 20 + rng.IntN(80)
			}
			sb.WriteString(strings.Repeat(atom, n))
		}
		s := sb.String()
		for s != "" {
			cs := clusters(s)
			want := s[:len(s)-len(cs[len(cs)-1])]
			got := Backspace(s)
			steps++
			if got != want {
				bad++
				if bad <= 10 {
					t.Errorf("Backspace(%+q) = %+q; uniseg says %+q (clusters %+q)", s, got, want, cs)
				}
				break
			}
			if n := lastCluster([]byte(s)); n != len(want) {
				bad++
				if bad <= 10 {
					t.Errorf("lastCluster([]byte(%+q)) = %d; uniseg says %d", s, n, len(want))
				}
				break
			}
			s = got
		}
	}
	t.Logf("%d strings, %d erasures, %d differ from uniseg", cases, steps, bad)
}
