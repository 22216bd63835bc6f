package rtcfront_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// TestBridgeThatReachesNoNodeClosesThePeer: the bridged session of a
// peer loses its node and reaches no other (its node halted, no other
// up, as on the minority side of a partition). Once the session gives up
// (30 s in serve, 1 s here) the front closes the peer's connection, and
// the page calls again elsewhere (docs/rtp.md), rather than type into a
// channel that reaches no room.
func TestBridgeThatReachesNoNodeClosesThePeer(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	_, url := startFront(t, c.Nodes[0], func(cfg *rtcfront.Config) {
		cfg.ClientOptions = append(cfg.ClientOptions, client.WithReconnectTimeout(time.Second))
	})
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	p.connect(t, url+"?room=lobby&user=alone", offer)
	p.waitOpen(t)
	// In the room first: the bridge joins once the channel is open.
	bob := join(t, c.Nodes[0], "bob", "lobby")
	if err := p.dc.SendText("hi"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("alone"); got != "hi" {
			return fmt.Errorf("bob sees %q", got)
		}
		return nil
	})
	c.Nodes[0].Halt()
	select {
	case <-p.shut:
	case <-time.After(settle):
		t.Fatal("the peer whose session reached no node is still served")
	}
}
