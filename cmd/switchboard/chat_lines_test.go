package main

import (
	"bufio"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/rtt"
)

// received applies chunks as a receiver does, each under its own seq,
// and returns the lines they complete and the line left unfinished.
func received(chunks []string) (lines []string, live string) {
	v := rtt.NewRoom(0)
	for i, c := range chunks {
		for _, l := range v.Apply("ann", uint64(i+1), c).Lines {
			lines = append(lines, l.Text)
		}
	}
	return lines, v.Live("ann")
}

// lineEndCases are typed texts and the lines everyone should see: CR LF,
// CR and LF each end one line; two line ends make an empty line.
var lineEndCases = []struct {
	name, in string
	lines    []string
	live     string
}{
	{"CR LF", "one\r\ntwo\r\nthr", []string{"one", "two"}, "thr"},
	{"LF", "one\ntwo\n", []string{"one", "two"}, ""},
	{"CR", "one\rtwo\r", []string{"one", "two"}, ""},
	{"empty line between", "one\r\n\r\ntwo\n\nthree\r\rfour", []string{"one", "", "two", "", "three", ""}, "four"},
	{"LF CR is two", "one\n\rtwo", []string{"one", ""}, "two"},
	{"CR, erase, LF", "one\r\b\ntwo", []string{"one", ""}, "two"},
}

// --script types its input one character a chunk; a CR LF is still one
// line end for everyone (it was a CR chunk and a U+2028 chunk: two).
func TestChatScriptLineEnds(t *testing.T) {
	for _, tt := range lineEndCases {
		t.Run(tt.name, func(t *testing.T) {
			in := scriptInput{r: bufio.NewReader(strings.NewReader(tt.in))}
			var chunks []string
			for {
				c, err := in.next()
				if err != nil {
					break
				}
				if strings.ContainsAny(c, "\r\n") {
					t.Errorf("chunk %q: line ends go as U+2028", c)
				}
				chunks = append(chunks, c)
			}
			lines, live := received(chunks)
			if diff := cmp.Diff(lines, tt.lines); diff != "" {
				t.Errorf("lines of %q typed as %q (-got +want):\n%s", tt.in, chunks, diff)
			}
			if live != tt.live {
				t.Errorf("unfinished line %q, want %q", live, tt.live)
			}
		})
	}
}

// The terminal client turns each read of the terminal into one chunk; a
// CR LF is one line end, also when a read ends between the CR and the LF.
func TestChatTerminalLineEnds(t *testing.T) {
	for _, tt := range lineEndCases {
		for _, split := range []string{"whole", "by byte"} {
			t.Run(tt.name+"/"+split, func(t *testing.T) {
				reads := []string{tt.in}
				if split == "by byte" {
					reads = strings.Split(tt.in, "")
				}
				var k keyInput
				var chunks []string
				for _, r := range reads {
					text, quit := k.read([]byte(r))
					if quit {
						t.Fatalf("read %q quits", r)
					}
					if text != "" {
						chunks = append(chunks, text)
					}
				}
				lines, live := received(chunks)
				if diff := cmp.Diff(lines, tt.lines); diff != "" {
					t.Errorf("lines of %q typed as %q (-got +want):\n%s", tt.in, chunks, diff)
				}
				if live != tt.live {
					t.Errorf("unfinished line %q, want %q", live, tt.live)
				}
			})
		}
	}
}

// The rest of what the terminal sends: erasures, escape sequences, a
// character cut by a read, and Ctrl-C.
func TestChatTerminalKeys(t *testing.T) {
	var k keyInput
	for _, step := range []struct {
		read, text string
		quit       bool
	}{
		{"ab\x7f", "ab\b", false},
		{"\x1b[A\x1b[1;5Cc\x01", "c", false},
		{"\xc3", "", false},
		{"\xa9\t", "\u00e9", false},
		// Escape sequences cut by a read's end wait for their rest, and
		// go with it; SS3 keys (F1, application-mode arrows) too.
		{"d\x1b", "d", false},
		{"[C", "", false},
		{"\x1b[1;5", "", false},
		{"Ce", "e", false},
		{"\x1bOPf\x1bO", "f", false},
		{"A", "", false},
		{"\x1bg", "g", false}, // Alt-g: the ESC alone goes
		{"x\x03y", "", true},
	} {
		text, quit := k.read([]byte(step.read))
		if text != step.text || quit != step.quit {
			t.Errorf("read %q = %q, %v; want %q, %v", step.read, text, quit, step.text, step.quit)
		}
	}
}
