package rtcfront_test

import (
	"encoding/binary"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// TestChecksThatFailIntegrityDoNotCount: checks that name a peer's ufrag
// but fail MESSAGE-INTEGRITY, from more addresses than MaxRemoteAddrs,
// are dropped without being counted, and the peer goes on: only a check
// that proves it knows the peer's ICE password counts its address.
// Before, the front counted any packet that named the ufrag, which
// travels in the clear in each of the peer's checks: whoever saw one
// ended the call with 33 packets. The checks come while the peer
// connects: once it is connected, no check from another address is
// read at all (TestNominationFromAnotherAddressIsIgnored).
func TestChecksThatFailIntegrityDoNotCount(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front, url := startFront(t, c.Nodes[0], nil)
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	// The answer is applied after the checks: the peer is not
	// connected meanwhile.
	code, answer := post(t, url+"?room=lobby&user=victim", "application/sdp", offer)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, answer)
	}
	user := sdpAttr(t, answer, "ice-ufrag") + ":" + sdpAttr(t, offer, "ice-ufrag")
	to := net.UDPAddrFromAddrPort(front.Addr())
	socket := func() *net.UDPConn {
		sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sock.Close() })
		return sock
	}
	for i := range rtcfront.MaxRemoteAddrs + 1 {
		if _, err := socket().WriteTo(bindingRequest(user, "not-the-password-at-all", iceControlling, uint64(i)+1), to); err != nil {
			t.Fatal(err)
		}
	}
	// A valid check from one more address reaches the peer's agent after
	// those (one queue): its answer says they have been read.
	valid := socket()
	if _, err := valid.WriteTo(bindingRequest(user, sdpAttr(t, answer, "ice-pwd"), iceControlling, 1), to); err != nil {
		t.Fatal(err)
	}
	answered := make(chan bool, 1)
	go func() {
		buf := make([]byte, 1500)
		_ = valid.SetReadDeadline(time.Now().Add(settle))
		n, _, err := valid.ReadFrom(buf)
		answered <- err == nil && n >= 20 && binary.BigEndian.Uint16(buf) == 0x0101
	}()
	if ok := <-answered; !ok {
		t.Fatalf("the valid check after the spray was not answered with a success; the front holds %d peers", front.Peers())
	}
	if n := front.Peers(); n != 1 {
		t.Fatalf("the peer was dropped by %d checks that failed MESSAGE-INTEGRITY", rtcfront.MaxRemoteAddrs+1)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	p.waitOpen(t)
}
