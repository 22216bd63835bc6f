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
