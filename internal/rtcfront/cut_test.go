package rtcfront

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/rtt"
)

// TestCutAt: a message longer than maxChunk is cut at a character
// boundary, and before an escape sequence (ESC ..., C1 CSI ...) the cut
// would split, so that package rtt, given the pieces as chunks, shows
// what it shows of the whole message. Before, a sequence begun just
// before byte 1000 lost its first part and showed the rest ("31mred"
// for "red").
func TestCutAt(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, c := range []struct {
		name string
		text string
		want int
	}{
		{"short", "hello", 5},
		{"exactly max", a(1000), 1000},
		{"plain", a(1500), 1000},
		{"a character cut", a(999) + "é" + a(10), 999},
		{"SGR cut in its parameters", a(997) + "\x1b[31mred", 997},
		{"SGR cut after ESC [", a(998) + "\x1b[31mred", 998},
		{"SGR cut after ESC", a(999) + "\x1b[31mred", 999},
		{"SGR cut before its final byte", a(996) + "\x1b[31mred", 996},
		{"SGR ending at the cut", a(995) + "\x1b[31m" + "red", 1000},
		{"SGR whole before the cut", a(990) + "\x1b[31m" + a(20), 1000},
		{"INT cut", a(999) + "\x1ba" + a(10), 999},
		{"INT whole", a(998) + "\x1ba" + a(10), 1000},
		{"a lone ESC before the cut", a(998) + "\x1b é" + a(10), 1000},
		{"an ESC the rest does not continue", a(999) + "\x1b" + "\x1b[1m" + a(10), 1000},
		{"C1 CSI cut", a(996) + "\u009b31mred", 996},
		{"C1 CSI cut after its two bytes", a(998) + "\u009b31mred", 998},
		{"C1 CSI cut in its UTF-8", a(999) + "\u009b31mred", 999},
		{"C1 CSI whole", a(993) + "\u009b31m" + a(10), 1000},
		{"a sequence with intermediate bytes", a(995) + "\x1b[1;2 $q" + a(10), 995},
		{"a long sequence begun early", a(100) + "\x1b[" + strings.Repeat("1;", 450) + "m" + a(10), 100},
		{"a sequence longer than max begins the text", "\x1b[" + strings.Repeat("1", 1200) + "m", 1000},
		{"an earlier sequence, ended", a(500) + "\x1b[1m" + a(600), 1000},
		{"not UTF-8", "\x80" + strings.Repeat("\x80", 1100), 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := cutAt(c.text, maxChunk); got != c.want {
				t.Errorf("cutAt = %d, want %d", got, c.want)
			}
			if got := cutAt([]byte(c.text), maxChunk); got != c.want {
				t.Errorf("cutAt of bytes = %d, want %d", got, c.want)
			}
			// Cut into chunks as the peer's text is, the text reads
			// as it does whole (but for text not UTF-8, which the
			// front has made UTF-8 before).
			if c.name == "not UTF-8" || strings.HasPrefix(c.name, "a sequence longer") {
				return
			}
			cut, whole := rtt.NewRoom(0), rtt.NewRoom(0)
			whole.Apply("p", 1, c.text)
			seq := uint64(0)
			for text := c.text; text != ""; {
				n := cutAt(text, maxChunk)
				if n == 0 {
					t.Fatal("an empty chunk")
				}
				seq++
				cut.Apply("p", seq, text[:n])
				text = text[n:]
			}
			if got, want := cut.Live("p"), whole.Live("p"); got != want {
				t.Errorf("cut, the text reads %q; whole, %q", tail(got), tail(want))
			}
		})
	}
}

func tail(s string) string { return s[max(0, len(s)-16):] }
