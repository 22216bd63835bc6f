package rtt

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
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
		{"combining only", "\u0301\u0302", ""},
		{"enclosing", "a\u20dd", ""},
		{"cjk", "中文", "中"},
		{"four-byte", "a\U00020000", "a"},
		{"emoji", "a😀", "a"},
		{"variation selector", "✌\ufe0f", ""},
		{"modifier", "✌🏿", ""},
		{"zwj family", "x👨‍👩‍👧‍👦", "x"},
		{"zwj with modifiers", "x👩🏻‍🤝‍👨🏿", "x"},
		{"zwj to a letter", "👨\u200dx", "👨\u200d"},
		{"zwj from a letter", "x\u200d👨", "x\u200d"},
		{"flag", "🇯🇵", ""},
		{"flag after flag", "🇯🇵🇰🇷", "🇯🇵"},
		{"lone indicator after flag", "🇯🇵🇰", "🇯🇵"},
		{"indicator after mark", "🇯\u0301🇵", "🇯\u0301"},
		{"tag sequence", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", ""},
		{"zwnj", "a\u200c", ""},
		{"invalid byte", "a\xff", "a"},
		{"invalid bytes", "a\xff\xfe", "a\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(Backspace(tt.in), tt.want); diff != "" {
				t.Errorf("Backspace(%+q) (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}

// clusters splits s into user-perceived characters forwards, as a plain
// transcription of the rules lastCluster applies backwards.
func clusters(s string) []string {
	rs := []rune(s)
	var out []string
	start := 0
	for i := 1; i < len(rs); i++ {
		if breakBefore(rs, i) {
			out = append(out, string(rs[start:i]))
			start = i
		}
	}
	if len(rs) > 0 {
		out = append(out, string(rs[start:]))
	}
	return out
}

// breakBefore reports whether a new character starts at rs[i], i > 0.
func breakBefore(rs []rune, i int) bool {
	r := rs[i]
	if isExtend(r) || r == zwj { // GB9
		return false
	}
	if isPictographic(r) && rs[i-1] == zwj { // GB11
		k := i - 2
		for k >= 0 && isExtend(rs[k]) {
			k--
		}
		if k >= 0 && isPictographic(rs[k]) {
			return false
		}
	}
	if isRegional(r) { // GB12, GB13
		n := 0
		for k := i - 1; k >= 0 && isRegional(rs[k]); k-- {
			n++
		}
		if n%2 == 1 {
			return false
		}
	}
	return true // GB999
}

// checkBackspace checks lastCluster against the forward reference.
func checkBackspace(t *testing.T, s string) {
	t.Helper()
	cs := clusters(s)
	want := len(s)
	if len(cs) > 0 {
		want -= len(cs[len(cs)-1])
	}
	if got := lastCluster([]byte(s)); got != want {
		t.Errorf("lastCluster(%+q) = %d; want %d (clusters %+q)", s, got, want, cs)
	}
}

func TestLastClusterMatchesReference(t *testing.T) {
	parts := []string{
		"a", "é", "e\u0301", "\u0301", "\u200d", "\u200c", "👨", "👩", "🏽", "\ufe0f",
		"🇸", "🇪", "中", "\u1100", "\u1161", "\u11a8", "✌", "©", "🏴", "\U000E0067", "\U000E007F",
	}
	// Every string of up to four parts.
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		checkBackspace(t, prefix)
		if depth == 4 {
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
