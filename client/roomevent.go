package client

import (
	"fmt"

	"github.com/switchboard/switchboard/wire"
)

// RoomEventKind says what a RoomEvent reports.
type RoomEventKind int

// The kinds of room event.
const (
	// TextEvent: a chunk of another member's text (From, Seq, Text), to
	// apply with the rtt model.
	TextEvent RoomEventKind = iota + 1
	// PresenceEvent: a user came into the room (Joined) or went (User).
	PresenceEvent
	// StateEvent: the room's full state (State), the answer to a join or
	// re-join: replace whatever is shown for the room with it (load
	// State.TextState() into the rtt model).
	StateEvent
	// AckEvent: the node stored the session's chunk Seq durably.
	AckEvent
	// ErrorEvent: the node refused something about the room (Err; Seq for
	// a chunk). The session mends unavailable and rate by itself.
	ErrorEvent
)

// String names the kind: text, presence, state, ack or error.
func (k RoomEventKind) String() string {
	switch k {
	case TextEvent:
		return "text"
	case PresenceEvent:
		return "presence"
	case StateEvent:
		return "state"
	case AckEvent:
		return "ack"
	case ErrorEvent:
		return "error"
	}
	return fmt.Sprintf("room-event(%d)", int(k))
}

// RoomEvent is a typed view of a room message received from the node:
// which fields are set depends on Kind.
type RoomEvent struct {
	Kind RoomEventKind
	// Room is the room the event is about.
	Room string
	// From and Text are the sender and the chunk (TextEvent).
	From, Text string
	// Seq is the chunk's seq (TextEvent, AckEvent; ErrorEvent when about
	// a chunk).
	Seq uint64
	// User and Joined say who came (true) or went (PresenceEvent).
	User   string
	Joined bool
	// State is the room's full state (StateEvent).
	State *wire.RoomState
	// Err is the node's refusal (ErrorEvent).
	Err *ServerError
}

// Room returns the typed view of a Received event about a room (text,
// presence, the room's state, an ack, or an error naming a room), and
// false for any other event: lifecycle events (Disconnected, Reattached,
// DirectoryPushed) and messages about no room.
func (e Event) Room() (RoomEvent, bool) {
	m := e.Message
	if e.Kind != Received || m.Room == "" {
		return RoomEvent{}, false
	}
	r := RoomEvent{Room: m.Room, Seq: m.Seq}
	switch m.Op {
	case wire.OpText:
		r.Kind, r.From, r.Text = TextEvent, m.From, m.T
	case wire.OpPresence:
		r.Kind, r.User, r.Joined = PresenceEvent, m.User, m.Event == "join"
	case wire.OpRoom:
		if m.State == nil {
			return RoomEvent{}, false
		}
		r.Kind, r.State = StateEvent, m.State
	case wire.OpAck:
		r.Kind = AckEvent
	case wire.OpError:
		r.Kind, r.Err = ErrorEvent, &ServerError{Code: m.Code, Message: m.Message}
	default:
		return RoomEvent{}, false
	}
	return r, true
}
