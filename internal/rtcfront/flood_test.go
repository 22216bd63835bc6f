package rtcfront_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// TestCheckFloodIsCutToItsRate: a peer's own valid checks, sent from one
// address as fast as it can, are dropped past the address's rate before
// pion's mux queues them, and the peer's own traffic, from its own
// address, goes on. Before, the mux queued every packet for the peer's
// agent, 8 KiB each and with no bound, faster than the agent answered
// them: the node's heap grew with the flood.
func TestCheckFloodIsCutToItsRate(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front, url := startFront(t, c.Nodes[0], nil)
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	answer := p.connect(t, url+"?room=lobby&user=flood", offer)
	p.waitOpen(t)
	check := bindingRequest(sdpAttr(t, answer, "ice-ufrag")+":"+sdpAttr(t, offer, "ice-ufrag"), sdpAttr(t, answer, "ice-pwd"), iceControlling, 1)
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	go func() { // the answers, read and dropped
		buf := make([]byte, 1500)
		for {
			if _, _, err := sock.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	to := net.UDPAddrFromAddrPort(front.Addr())
	// Sent in batches until the front has dropped a burst's worth: a
	// sender far faster than the rate gets there at once.
	const most = 200 * rtcfront.SourceBurst
	sent := 0
	for front.DroppedOverRate() < rtcfront.SourceBurst {
		if sent >= most {
			t.Fatalf("%d checks sent from one address, %d dropped over its rate", sent, front.DroppedOverRate())
		}
		for range 100 {
			if _, err := sock.WriteTo(check, to); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
	t.Logf("%d checks sent, %d dropped over the rate", sent, front.DroppedOverRate())
	select {
	case <-p.shut:
		t.Fatal("the peer was dropped")
	default:
	}
	before := front.Messages()
	if err := p.dc.SendText("still here"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if n := front.Messages(); n <= before {
			return fmt.Errorf("the front read %d messages of the peer, %d before", n, before)
		}
		return nil
	})
}
