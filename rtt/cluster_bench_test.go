package rtt

import (
	"strings"
	"testing"
)

// benchLines are lines of MaxLineBytes or just under, for measuring one
// BACKSPACE at the end of a full line. The adversarial ones are what a
// hostile sender could fill a line with to make erasing expensive.
var benchLines = []struct{ name, line string }{
	{"ascii", fill("The quick brown fox jumps over the lazy dog. ", "")},
	{"mixed", fill("Café naïve e\u0301 👍🏽 👨‍👩‍👧 🇸🇪 กำลัง हिन्दी 한국어 שלום مرحبا ", "👩‍💻")},
	{"thai", fill("ภาษาไทยกำลังพิมพ์ ", "กำ")},
	{"devanagari", fill("क्षत्रिय हिन्दी ", "क्ष")},
	{"flags", fill("🇸🇪", "")},
	{"marks then letter", "e" + fill("\u0301", "x")},
	{"zwjs then emoji", "x" + fill("\u200d", "😀")},
	{"marks zwj emoji", "x" + fill("\u0301", "\u200d😀")},
}

// fill repeats unit up to MaxLineBytes, less room for tail, and appends
// tail.
func fill(unit, tail string) string {
	n := (MaxLineBytes - len(tail)) / len(unit)
	return strings.Repeat(unit, n) + tail
}

// BenchmarkBackspace erases the last character of a full line with
// Backspace.
func BenchmarkBackspace(b *testing.B) {
	for _, bl := range benchLines {
		b.Run(bl.name, func(b *testing.B) {
			b.SetBytes(int64(len(bl.line)))
			for b.Loop() {
				sink = Backspace(bl.line)
			}
		})
	}
}

// BenchmarkEraseInRoom applies one BACKSPACE to a sender's full line, the
// way a Room does, as the first after the line was loaded: the line has
// not been segmented yet.
func BenchmarkEraseInRoom(b *testing.B) {
	for _, bl := range benchLines {
		b.Run(bl.name, func(b *testing.B) {
			full := []byte(bl.line)
			var e editor
			for b.Loop() {
				e.setLine(full)
				e.write("\b", nil)
			}
			sink = string(e.buf[len(e.buf):])
		})
	}
}

// sink keeps the compiler from dropping a benchmark's work.
var sink string

// BenchmarkSegmentWholeLine finds the last cluster of a full line by
// segmenting it from its start with uniseg: what each BACKSPACE would cost
// without lastCluster's walk back to a safe boundary.
func BenchmarkSegmentWholeLine(b *testing.B) {
	for _, bl := range benchLines {
		b.Run(bl.name, func(b *testing.B) {
			for b.Loop() {
				sink = bl.line[:lastStart(bl.line)]
			}
		})
	}
}

// hostileLines are lines a hostile sender could leave in a Room for the
// chunk hostileChunk to erase against. Before the line's clusters were
// remembered, each BACKSPACE after such a line segmented the whole line.
var hostileLines = []struct{ name, line string }{
	// The security review's line: more than maxWalk joining characters
	// before a ZWJ, so that after a COPYRIGHT SIGN the walk back gives up
	// and segments from the start. With the sign it is MaxLineBytes long.
	{"crafted", strings.Repeat("a", 3950) + "x" + strings.Repeat("\u0301", 70) + "\u200d"},
	// The same as one cluster nearly as long as the line: x, 2000
	// combining marks and a ZWJ.
	{"one long cluster", "x" + strings.Repeat("\u0301", 2000) + "\u200d"},
}

// hostileChunk types a COPYRIGHT SIGN and erases it, 1365 times: 4 KiB.
var hostileChunk = strings.Repeat("\u00a9\b", 1365)

// BenchmarkHostileBackspace applies hostileChunk to a Room whose sender
// holds each of hostileLines, and, for scale, a chunk of as many plain
// ASCII characters typed and erased to an empty line. Each op loads the
// line afresh, so it includes whatever the first BACKSPACE after a load
// costs.
func BenchmarkHostileBackspace(b *testing.B) {
	cases := []struct{ name, line, chunk string }{
		{hostileLines[0].name, hostileLines[0].line, hostileChunk},
		{hostileLines[1].name, hostileLines[1].line, hostileChunk},
		{"plain", "", strings.Repeat("b\b", 2048)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			room := NewRoom(0)
			st := State{Lines: []Line{}, Live: map[string]string{"eve": c.line}}
			b.SetBytes(int64(len(c.chunk)))
			for b.Loop() {
				if err := room.Load(st); err != nil {
					b.Fatal(err)
				}
				room.Apply("eve", 0, c.chunk)
			}
			if got := room.Live("eve"); got != c.line {
				b.Fatalf("line after the chunk: %d bytes, want the %d it had", len(got), len(c.line))
			}
		})
	}
}
