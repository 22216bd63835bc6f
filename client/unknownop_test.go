package client_test

import (
	"testing"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/wire"
)

// TestOpsOfALaterNodeArePassedOver: a node of a later version sends an op
// this client does not know, before attached and in a room's traffic.
// The session attaches and stays attached on that node, and shows the
// message as Received, as it passes over fields it does not know; it does
// not take the line for a broken connection and fail over.
func TestOpsOfALaterNodeArePassedOver(t *testing.T) {
	n := newFakeNode(t, "n1")
	later := wire.Message{Op: "flare", Room: "r", Message: "an op of a later version"}
	n.sendBeforeAttached(later)
	s, join := aliceInRoom(t, n)
	join.conn.send(later)
	join.conn.send(roomState("r", 0))
	drops, flares := 0, 0
	awaitEvent(t, s, "room state", func(e client.Event) bool { return e.Kind == client.Received && e.Message.Op == wire.OpRoom },
		func(e client.Event) {
			switch {
			case e.Kind == client.Disconnected:
				drops++
			case e.Kind == client.Received && e.Message.Op == later.Op:
				flares++
			}
		})
	if drops != 0 || s.Attaches() != 1 || s.State() != client.StateAttached {
		t.Errorf("%d drops, %d attaches, state %v; want the session kept on n1: 0, 1, attached", drops, s.Attaches(), s.State())
	}
	if flares != 1 {
		t.Errorf("%d Received events of the later op, want 1 (the one after attached)", flares)
	}
}
