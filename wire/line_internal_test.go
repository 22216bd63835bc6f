package wire

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// These tests look at the buffer itself: the point of the small start and
// of Shrink is memory, which the exported API cannot show.

func TestLineReaderBuffer(t *testing.T) {
	long := strings.Repeat("L", 5000)
	tests := []struct {
		name string
		in   string
		wrap func(io.Reader) io.Reader
		max  int
		// reads is how many lines to read before looking.
		reads   int
		wantLen int // len(buf) after the reads
		// shrunk is len(buf) after Shrink.
		shrunk int
	}{
		{
			name: "a fresh reader has no buffer", in: "a\n", reads: 0,
			wantLen: 0, shrunk: 0,
		},
		{
			name: "short lines keep the small buffer", in: strings.Repeat("short line\n", 200), reads: 200,
			wantLen: smallBuffer, shrunk: smallBuffer,
		},
		{
			name: "a long line grows the buffer, Shrink releases it", in: long + "\n",
			wrap: iotest.OneByteReader, reads: 1,
			wantLen: 8192, shrunk: 0,
		},
		{
			name: "Shrink keeps a buffer with unread bytes", in: long + "\nnext\n", reads: 1,
			wantLen: 8192, shrunk: 8192,
		},
		{
			name: "growth stops at the limit plus CRLF", in: strings.Repeat("m", 600) + "\n", max: 600, reads: 1,
			wantLen: 602, shrunk: 0,
		},
		{
			name: "growth to MaxLine", in: strings.Repeat("m", MaxLine) + "\n", reads: 1,
			wantLen: MaxLine + 2, shrunk: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tt.in)
			if tt.wrap != nil {
				r = tt.wrap(r)
			}
			lr := NewLineReader(r, tt.max)
			for i := range tt.reads {
				if _, err := lr.Next(); err != nil {
					t.Fatalf("Next #%d: %v", i, err)
				}
			}
			if len(lr.buf) != tt.wantLen {
				t.Errorf("after %d lines len(buf) = %d, want %d", tt.reads, len(lr.buf), tt.wantLen)
			}
			lr.Shrink()
			if len(lr.buf) != tt.shrunk {
				t.Errorf("after Shrink len(buf) = %d, want %d", len(lr.buf), tt.shrunk)
			}
			// Whatever Shrink did, the rest of the stream reads on.
			rest := strings.Split(strings.TrimSuffix(tt.in, "\n"), "\n")[tt.reads:]
			for i, want := range rest {
				line, err := lr.Next()
				if err != nil || string(line) != want {
					t.Fatalf("line %d after Shrink = %.20q, %v; want %.20q", tt.reads+i, line, err, want)
				}
			}
			if _, err := lr.Next(); err != io.EOF {
				t.Fatalf("after the last line: %v, want EOF", err)
			}
		})
	}
}

// TestLineReaderShrinkCycle sends a long line, shrinks, and does it again:
// each long line grows a fresh buffer and each Shrink lets it go. One byte
// a read leaves nothing unread after a line, so Shrink always may.
func TestLineReaderShrinkCycle(t *testing.T) {
	in := strings.Repeat(strings.Repeat("L", 3000)+"\nshort\n", 3)
	lr := NewLineReader(iotest.OneByteReader(strings.NewReader(in)), 0)
	for round := range 3 {
		line, err := lr.Next()
		if err != nil || len(line) != 3000 {
			t.Fatalf("round %d: long line = %d bytes, %v", round, len(line), err)
		}
		if len(lr.buf) != 4096 {
			t.Fatalf("round %d: len(buf) = %d after a 3000-byte line, want 4096", round, len(lr.buf))
		}
		lr.Shrink()
		if lr.buf != nil {
			t.Fatalf("round %d: len(buf) = %d after Shrink, want no buffer", round, len(lr.buf))
		}
		line, err = lr.Next()
		if err != nil || string(line) != "short" {
			t.Fatalf("round %d: short line = %q, %v", round, line, err)
		}
		lr.Shrink()
		if len(lr.buf) != smallBuffer {
			t.Fatalf("round %d: len(buf) = %d after a short line and Shrink, want %d", round, len(lr.buf), smallBuffer)
		}
	}
}

func TestLineReaderHasLine(t *testing.T) {
	lr := NewLineReader(strings.NewReader("one\ntwo\nthr"), 0)
	if lr.HasLine() {
		t.Fatal("HasLine before any read")
	}
	for _, want := range []struct {
		line    string
		hasLine bool
	}{{"one", true}, {"two", false}} {
		line, err := lr.Next()
		if err != nil || string(line) != want.line {
			t.Fatalf("Next = %q, %v; want %q", line, err, want.line)
		}
		if got := lr.HasLine(); got != want.hasLine {
			t.Errorf("after %q HasLine = %v, want %v", want.line, got, want.hasLine)
		}
	}
}
