package main

import (
	"fmt"
	"testing"

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
