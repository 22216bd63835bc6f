package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rivo/uniseg"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// Text under ever new names that are not members (a broken or hostile
// node) does not grow the chat view: it follows maxStrangers of them.
func TestChatViewBoundsStrangers(t *testing.T) {
	v := &chatView{room: "r", text: rtt.NewRoom(0), users: []string{"bob"}}
	text := func(from string) client.Event {
		return client.Event{Kind: client.Received, Message: wire.Message{Op: wire.OpText, Room: "r", From: from, Seq: 1, T: "typing"}}
	}
	v.handle(text("bob"))
	for i := range 1000 {
		v.handle(text(fmt.Sprintf("u%d", i)))
	}
	if got := len(v.text.State().Live); got != maxStrangers+1 {
		t.Errorf("the view follows %d senders, want %d strangers and bob", got, maxStrangers)
	}
	if v.text.Live("bob") != "typing" {
		t.Errorf("bob's line was forgotten: %q", v.text.Live("bob"))
	}
}

// The chat screen fits a terminal narrower than its header: the header is
// cut to the width and the rules are as wide as the terminal. They were
// 60 columns whatever the terminal, and a row wider than the terminal
// wraps onto the next and pushes the top of the screen out.
func TestChatScreenFitsTheWidth(t *testing.T) {
	v := &chatView{room: "lobby", text: rtt.NewRoom(0), users: []string{"ann", "bob", "chloé"}, status: "on n1"}
	v.text.Apply("bob", 1, "hi\u2028")
	v.text.Apply("bob", 2, "typ")
	const header = "room lobby as ann, on n1; users: ann, bob, chloé; Ctrl-C quits"
	for _, width := range []int{80, 40, 20, 3} {
		screen := strings.TrimPrefix(v.screenLocked("ann", width, 10), "\x1b[H\x1b[2J")
		rows := strings.Split(screen, "\r\n")
		w := uniseg.StringWidth(rows[0])
		if !strings.HasPrefix(header, rows[0]) || w != min(width, uniseg.StringWidth(header)) {
			t.Errorf("width %d: header %q (%d columns), want the start of %q cut to the width", width, rows[0], w, header)
		}
		want := []string{strings.Repeat("-", width), "bob: hi", strings.Repeat("-", width), "bob> typ", "ann> "}
		if width < len("bob> typ") {
			// A live row keeps to one row: the end of the text.
			want[3], want[4] = "typ", ""
		}
		if diff := cmp.Diff(rows[1:], want); diff != "" {
			t.Errorf("width %d: rows (-got +want):\n%s", width, diff)
		}
	}
	// Cut between characters as the terminal shows them: a wide one
	// takes two columns, an accent goes with its letter.
	for _, tt := range []struct {
		s     string
		width int
		want  string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"日本語", 5, "日本"},
		{"e\u0301e\u0301", 1, "e\u0301"},
		{"abc", 0, ""},
	} {
		if got := clip(tt.s, tt.width); got != tt.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tt.s, tt.width, got, tt.want)
		}
	}
}

// Lines longer than the terminal is wide (a paste, a long sentence) keep
// the screen within its height: a completed line takes the rows the
// terminal wraps it onto, and only the lines that fit are shown; a live
// line keeps to one row, showing its end, where the typing is. Before,
// each line was counted as one row, and a few long ones pushed the
// header and the first rule off the top.
func TestChatScreenHoldsLongLines(t *testing.T) {
	const width, height = 20, 10
	long := strings.Repeat("0123456789", 5) // 3 rows with "bob: "
	v := &chatView{room: "lobby", text: rtt.NewRoom(0), users: []string{"ann", "bob"}, status: "on n1"}
	seq := uint64(0)
	say := func(from, text string) {
		seq++
		v.text.Apply(from, seq, text)
	}
	say("bob", "first\u2028")
	say("bob", long+"\u2028")
	say("bob", "日本語日本語日本語日本語\u2028") // wide: 24 columns with "bob: " and the wrap
	say("bob", "typing "+long)
	say("ann", "my own "+long+"!")
	screen := strings.TrimPrefix(v.screenLocked("ann", width, height), "\x1b[H\x1b[2J")
	rows := strings.Split(screen, "\r\n")
	used := 0
	for _, r := range rows {
		used += rowsOf(r, width)
	}
	if used > height {
		t.Errorf("the screen takes %d rows of a terminal %d high:\n%s", used, height, strings.Join(rows, "\n"))
	}
	want := []string{
		"room lobby as ann, o",
		strings.Repeat("-", width),
		"bob: " + long,
		"bob: 日本語日本語日本語日本語",
		strings.Repeat("-", width),
		"bob> <67890123456789",
		"ann> <7890123456789!",
	}
	if diff := cmp.Diff(rows, want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
	for _, tt := range []struct {
		s     string
		width int
		rows  int
		tail  string
	}{
		{"abc", 3, 1, "abc"},
		{"abcd", 3, 2, "<cd"},
		{"日本語", 5, 2, "<本語"},
		{"日本語", 4, 2, "<語"},
		{"a日本", 4, 2, "<本"},
		{"", 3, 1, ""},
		{"abc", 1, 3, "<"},
	} {
		if got := rowsOf(tt.s, tt.width); got != tt.rows {
			t.Errorf("rowsOf(%q, %d) = %d, want %d", tt.s, tt.width, got, tt.rows)
		}
		if got := tail(tt.s, tt.width); got != tt.tail {
			t.Errorf("tail(%q, %d) = %q, want %q", tt.s, tt.width, got, tt.tail)
		}
	}
}
