package client

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/wire"
)

func TestEventRoom(t *testing.T) {
	state := &wire.RoomState{Users: []string{"bob"}}
	tests := []struct {
		name   string
		in     Event
		want   RoomEvent
		wantOK bool
	}{
		{"text", Event{Kind: Received, Message: wire.Message{Op: wire.OpText, Room: "r", From: "bob", Seq: 3, T: "hi"}},
			RoomEvent{Kind: TextEvent, Room: "r", From: "bob", Seq: 3, Text: "hi"}, true},
		{"presence join", Event{Kind: Received, Message: wire.Message{Op: wire.OpPresence, Room: "r", User: "bob", Event: "join"}},
			RoomEvent{Kind: PresenceEvent, Room: "r", User: "bob", Joined: true}, true},
		{"presence leave", Event{Kind: Received, Message: wire.Message{Op: wire.OpPresence, Room: "r", User: "bob", Event: "leave"}},
			RoomEvent{Kind: PresenceEvent, Room: "r", User: "bob"}, true},
		{"state", Event{Kind: Received, Message: wire.Message{Op: wire.OpRoom, Room: "r", State: state}},
			RoomEvent{Kind: StateEvent, Room: "r", State: state}, true},
		{"ack", Event{Kind: Received, Message: wire.Message{Op: wire.OpAck, Room: "r", Seq: 4}},
			RoomEvent{Kind: AckEvent, Room: "r", Seq: 4}, true},
		{"error", Event{Kind: Received, Message: wire.Message{Op: wire.OpError, Room: "r", Seq: 5, Code: wire.CodeLimit, Message: "too long"}},
			RoomEvent{Kind: ErrorEvent, Room: "r", Seq: 5, Err: &ServerError{Code: wire.CodeLimit, Message: "too long"}}, true},
		{"error about no room", Event{Kind: Received, Message: wire.Message{Op: wire.OpError, Code: wire.CodeBadJSON}}, RoomEvent{}, false},
		{"lifecycle", Event{Kind: Reattached}, RoomEvent{}, false},
		{"pushed directory", Event{Kind: DirectoryPushed, Message: wire.Message{Op: wire.OpDirectory}}, RoomEvent{}, false},
	}
	for _, tt := range tests {
		got, ok := tt.in.Room()
		if ok != tt.wantOK {
			t.Errorf("%s: ok = %v, want %v", tt.name, ok, tt.wantOK)
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("%s: (-got +want)\n%s", tt.name, diff)
		}
	}
}
