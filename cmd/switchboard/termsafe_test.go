package main

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// hostile holds what a node may send that acts on a terminal: a window
// title set and a bell (OSC), a colour (CSI), the one-byte CSI of C1, a
// right-to-left override and an isolate, a bare ESC, a byte that is not
// UTF-8, and a line separator.
const hostile = "\x1b]0;PWNED\x07\x1b[41mRED\x1b[0m\u009b31m\u202eevil\u2066\x1b\xff\u2028"

func TestTermSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"n1 up eu/a", "n1 up eu/a"},
		{"caf\u00e9 \U0001F600 \u200d \ufffd", "caf\u00e9 \U0001F600 \u200d \ufffd"}, // shown as they are
		{"a\x1b[2Jb", `a\u001b[2Jb`},
		{"title\x1b]0;x\x07", `title\u001b]0;x\u0007`},
		{"c1\u009b31m", `c1\u009b31m`},
		{"del\x7f", `del\u007f`},
		{"abc\u202edef\u2066g\u2069\u200e\u200f\u061c", `abc\u202edef\u2066g\u2069\u200e\u200f\u061c`},
		{"line\u2028para\u2029", `line\u2028para\u2029`},
		{"nl\nand\ttab\r", `nl\u000aand\u0009tab\u000d`},
		{"bad\x9bbyte\xff", `bad\x9bbyte\xff`},
	}
	for _, tt := range tests {
		if got := termSafe(tt.in); got != tt.want {
			t.Errorf("termSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := termSafeLines("one\x1b[1m\n\ttwo"), "one\\u001b[1m\n\ttwo"; got != want {
		t.Errorf("termSafeLines = %q, want %q", got, want)
	}
}

// The writer keeps the layout, escapes the rest, and a character cut
// between two writes is written whole.
func TestSafeWriter(t *testing.T) {
	var out bytes.Buffer
	w := newSafeWriter(&out)
	in := "ok\tn1\r\n" + hostile + "\n\u00e9\u202e\n"
	b := []byte(in)
	for i := 0; i < len(b); i += 3 { // cut everywhere, characters too
		end := min(i+3, len(b))
		if n, err := w.Write(b[i:end]); err != nil || n != end-i {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	want := "ok\tn1\r\n" + termSafe(hostile) + "\n\u00e9\\u202e\n"
	if out.String() != want {
		t.Errorf("wrote %q, want %q", out.String(), want)
	}
}

// A node that answers dir's hello with a directory whose every field
// holds escape sequences: dir prints none of them, as text or as JSON,
// and the error of a node that answers with such a message does not
// reach the terminal either.
func TestDirPrintsNoTerminalControls(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		send wire.Message
	}{
		{"directory", nil, wire.DirectoryMessage(&wire.Directory{Service: "svc" + hostile, Self: "n1" + hostile, Nodes: []directory.Node{
			{ID: "n1" + hostile, Addr: "127.0.0.1:1", Group: "eu" + hostile, Status: directory.Up, Users: 1, Capacity: 10, Version: "v1" + hostile},
		}})},
		{"directory as JSON", []string{"--json"}, wire.DirectoryMessage(&wire.Directory{Service: "svc", Nodes: []directory.Node{
			{ID: "n1" + hostile, Addr: "127.0.0.1:1", Status: directory.Up, Capacity: 10},
		}})},
		{"an error", nil, wire.Message{Op: wire.OpError, Code: "busy" + hostile, Message: "go away" + hostile}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeNode(t, tt.send)
			_, stdout, stderr := runArgs(t, append([]string{"dir", "--via", addr}, tt.args...)...)
			for _, out := range []string{stdout, stderr} {
				if strings.ContainsAny(out, "\x1b\x07\u009b\u202e\u2066\u2028") || strings.Contains(out, "\xff") {
					t.Errorf("dir printed terminal controls: %q", out)
				}
			}
			if !strings.Contains(stdout+stderr, `\u001b]0;PWNED`) {
				t.Errorf("dir did not show what the node sent, escaped: stdout %q, stderr %q", stdout, stderr)
			}
		})
	}
}

// fakeNode listens on loopback and answers the first line of each
// connection with m.
func fakeNode(t *testing.T, m wire.Message) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	line, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := bufio.NewReader(c).ReadBytes('\n'); err == nil {
				_, _ = c.Write(append(line, '\n'))
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}
