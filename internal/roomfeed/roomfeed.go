// Package roomfeed hands the text of a room, as a bridged client
// session receives it, to a gateway that sends it on to a caller who is
// not a Switchboard client: a SIP phone (internal/sipfront) or a WebRTC
// peer (internal/rtcfront). Such a caller hears each other member's text
// attributed to its sender, and learns when a sender leaves.
package roomfeed

import "github.com/switchboard/switchboard/client"

// Text is one piece of a room for the caller: a member's text, or that
// the member left (Leave, with From and no Text).
type Text struct {
	From, Text string
	Leave      bool
}

// Relay reads sess's events and sends to out, in order, the text of room
// typed by members other than self and the leaves of users, until sess
// ends or done closes. It returns why sess ended, and false if done
// closed first.
func Relay(sess *client.Session, room, self string, out chan<- Text, done <-chan struct{}) (reason string, ended bool) {
	for e := range sess.Events() {
		re, ok := e.Room()
		if !ok || re.Room != room {
			continue
		}
		var t Text
		switch {
		case re.Kind == client.TextEvent && re.From != self:
			t = Text{From: re.From, Text: re.Text}
		case re.Kind == client.PresenceEvent && !re.Joined:
			t = Text{From: re.User, Leave: true}
		default:
			continue
		}
		select {
		case out <- t:
		case <-done:
			return "", false
		}
	}
	reason = "the room session ended"
	if err := sess.Err(); err != nil {
		reason += ": " + err.Error()
	}
	return reason, true
}
