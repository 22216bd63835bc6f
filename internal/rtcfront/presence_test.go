package rtcfront_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// TestUnreachablePeerJoinsNoRoom: a peer that takes an answer and never
// completes ICE is no member of the room: the room sees no join, the
// offer holds its place in the front's limits while it waits, and it is
// cleaned up (its bridged session closed) once the open timeout passes.
// Before, the member attached and joined before the answer was sent, and
// the room showed someone who never could type for up to OpenTimeout.
func TestUnreachablePeerJoinsNoRoom(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	n := c.Nodes[0]
	front, url := startFront(t, n, func(cfg *rtcfront.Config) {
		cfg.MaxPeersPerSource = 1
		cfg.OpenTimeout = 5 * time.Second
	})
	bob := join(t, n, "bob", "lobby")
	ghost, offer := newPeer(t, rtcfront.Protocol, nil)
	_, offer2 := newPeer(t, rtcfront.Protocol, nil) // made now: posted while the ghost's waits
	if code, body := post(t, url+"?room=lobby&user=ghost", "application/sdp", offer); code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
	_ = ghost.pc.Close() // the answer is never applied: no ICE, no DTLS
	// While it waits, the offer counts against the limits.
	if code, body := post(t, url+"?room=lobby&user=carol", "application/sdp", offer2); code != http.StatusTooManyRequests {
		t.Errorf("an offer beside a pending one from the same address: %d %q, want 429", code, body)
	}
	nodetest.Eventually(t, settle, func() error {
		if p, u := front.Peers(), n.Users(); p != 0 || u != 1 {
			return fmt.Errorf("the front holds %d peers, the node %d sessions (bob's alone expected)", p, u)
		}
		return nil
	})
	// Presence is ordered: once bob sees alice join, he has seen any
	// join before hers.
	alice, offer3 := newPeer(t, rtcfront.Protocol, nil)
	alice.connect(t, url+"?room=lobby&user=alice", offer3)
	alice.waitOpen(t)
	nodetest.Eventually(t, settle, func() error {
		if !bob.hasJoined("alice") {
			return fmt.Errorf("bob has not seen alice join")
		}
		return nil
	})
	if bob.hasJoined("ghost") || bob.hasLeft("ghost") {
		t.Error("bob saw the peer that never connected come and go")
	}
}

// TestFirstKeystrokesWaitForTheJoin: text the peer sends the moment its
// channel opens, before the member is in the room, reaches the room
// whole and in order once it is.
func TestFirstKeystrokesWaitForTheJoin(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	_, url := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	const typed = "quick as a flash"
	sent := make(chan error, 1)
	p.dc.OnOpen(func() {
		var err error
		for _, r := range typed {
			if err = p.dc.SendText(string(r)); err != nil {
				break
			}
		}
		sent <- err
		close(p.open)
	})
	p.connect(t, url+"?room=lobby&user=quick", offer)
	p.waitOpen(t)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("quick"); got != typed {
			return fmt.Errorf("bob sees %q", got)
		}
		return nil
	})
}

// TestRoomFullAfterTheChannelOpens: a room that is full when the peer's
// channel opens refuses the member; the peer reads why on its channel,
// which then closes, and the room sees no one come and go.
func TestRoomFullAfterTheChannelOpens(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.MaxParticipants = 1 }})
	c.WaitRoomsReady(settle)
	front, url := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	p.connect(t, url+"?room=lobby&user=late", offer)
	p.waitOpen(t)
	select {
	case <-p.shut:
	case <-time.After(settle):
		t.Fatal("the channel of a peer refused by a full room stays open")
	}
	if got := p.received(); !strings.Contains(got, "full") {
		t.Errorf("the peer read %q, not why it was refused", got)
	}
	nodetest.Eventually(t, settle, func() error {
		if n := front.Peers(); n != 0 {
			return fmt.Errorf("the front holds %d peers", n)
		}
		return nil
	})
	if bob.hasJoined("late") || bob.hasLeft("late") {
		t.Error("bob saw the refused peer come or go")
	}
}
