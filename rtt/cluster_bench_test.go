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
// way a Room does.
func BenchmarkEraseInRoom(b *testing.B) {
	for _, bl := range benchLines {
		b.Run(bl.name, func(b *testing.B) {
			full := []byte(bl.line)
			var e editor
			for b.Loop() {
				e.buf = full
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
