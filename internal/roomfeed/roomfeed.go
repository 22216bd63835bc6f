// Package roomfeed hands the text of a room, as a bridged client
// session receives it, to a gateway that sends it on to a caller who is
// not a Switchboard client: a SIP phone (internal/sipfront) or a WebRTC
// peer (internal/rtcfront). Such a caller hears each other member's text
// attributed to its sender, and learns when a sender leaves.
package roomfeed

import (
	"fmt"

	"github.com/switchboard/switchboard/client"
)

// Text is one piece of a room for the caller: a member's text, or that
// the member left (Leave, with From and no Text).
type Text struct {
	From, Text string
	Leave      bool
}

// Relay reads sess's events and sends to out, in order, the text of room
// typed by members other than self and the leaves of users, until sess
// ends, sess no longer holds room, or done closes. It returns why it
// ended, and false if done closed first.
//
// Once the caller is in, a refusal about the room after which sess does
// not hold it (after a failover or the node's removed, the join again
// refused for good: the room filled while sess was away) ends the relay:
// the member is out of the room, and the caller would otherwise stay
// connected, hearing nothing, until its next keystroke failed. The
// answer to the first join is the front's to handle (it waits for it,
// and tells the caller why it could not come in).
//
// The room's first state (the answer to the join) is where the caller
// comes in. A state after it follows a failover of sess: what the others
// typed, and who left, while sess was away is sent then, as text in each
// sender's stream that brings their line where the state has it, and
// leaves; a chunk sess receives again is not sent twice.
func Relay(sess *client.Session, room, self string, out chan<- Text, done <-chan struct{}) (reason string, ended bool) {
	f := newFollow(self)
	send := func(t Text) bool {
		select {
		case out <- t:
			return true
		case <-done:
			return false
		}
	}
	for e := range sess.Events() {
		re, ok := e.Room()
		if !ok || re.Room != room {
			continue
		}
		var ts []Text
		switch re.Kind {
		case client.TextEvent:
			if t, ok := f.text(re.From, re.Seq, re.Text); ok {
				ts = append(ts, t)
			}
		case client.PresenceEvent:
			if t, ok := f.presence(re.User, re.Joined); ok {
				ts = append(ts, t)
			}
		case client.StateEvent:
			ts = f.state(re.State)
		case client.ErrorEvent:
			if re.Seq == 0 && f.in() && !sess.Holds(room) {
				return fmt.Sprintf("the member is out of room %s: %v", room, re.Err), true
			}
		}
		for _, t := range ts {
			if !send(t) {
				return "", false
			}
		}
	}
	reason = "the room session ended"
	if err := sess.Err(); err != nil {
		reason += ": " + err.Error()
	}
	return reason, true
}
