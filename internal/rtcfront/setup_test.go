package rtcfront_test

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// TestPeerEndedDuringSetupIsNotHeld: a peer whose connection ends while
// the front sets it up, before it is registered, is refused (503), is not
// held, and gives its place back. Before, the front registered it after
// end had already looked for it: the peer stayed among those held for
// good, its place given back, so that no limit stopped more (offers
// whose DTLS failed at once, ice-lite offers then, each left one).
func TestPeerEndedDuringSetupIsNotHeld(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	const places = 3
	front, url := startFront(t, c.Nodes[0], func(cfg *rtcfront.Config) { cfg.MaxPeers = places })
	front.EndPeersBeforeRegistering(true)
	_, offer := newPeer(t, rtcfront.Protocol, nil)
	for i := range places {
		code, body := post(t, url+fmt.Sprintf("?room=lobby&user=gone%d", i), "application/sdp", offer)
		if n := front.Peers(); n != 0 {
			t.Fatalf("after %d peers ended during setup, the front holds %d", i+1, n)
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "ended") {
			t.Fatalf("offer %d, its peer ended during setup: %d %.80q, want 503", i+1, code, body)
		}
	}
	// Their places come back once their bridged sessions are closed.
	front.EndPeersBeforeRegistering(false)
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	var answer string
	nodetest.Eventually(t, settle, func() error {
		code, body := post(t, url+"?room=lobby&user=next", "application/sdp", offer)
		if code != http.StatusCreated {
			return fmt.Errorf("an offer after %d peers ended during setup: %d %q", places, code, body)
		}
		answer = body
		return nil
	})
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	p.waitOpen(t)
}

// TestOfferCannotAimTheNodesDTLS: an offer that says a=ice-lite, at the
// session's level or a section's, or a=setup:passive, is refused (400)
// before anything is set up, and the node is the DTLS server of the
// offers it takes: it never speaks first, to an address an offer names
// or anywhere else. Before, an ice-lite offer listing a third party's
// address had the node send DTLS there at once: two lite agents choose
// the offer's first candidate with no check, and the answer's DTLS role
// was the client's.
func TestOfferCannotAimTheNodesDTLS(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	_, url := startFront(t, c.Nodes[0], nil)
	victim, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	got := make(chan string, 1)
	go func() {
		defer close(got)
		buf := make([]byte, 1500)
		if n, from, err := victim.ReadFrom(buf); err == nil {
			got <- fmt.Sprintf("%d bytes from %s", n, from)
		}
	}()
	_, offer := newPeer(t, rtcfront.Protocol, nil)
	port := victim.LocalAddr().(*net.UDPAddr).Port
	// The peer's own candidates dropped, the victim's listed.
	aimed := regexp.MustCompile(`a=candidate:[^\r\n]*\r\n`).ReplaceAllString(offer, "")
	aimed = strings.Replace(aimed, "a=end-of-candidates", fmt.Sprintf("a=candidate:9 1 udp 2130706431 127.0.0.1 %d typ host\r\na=end-of-candidates", port), 1)
	if !strings.Contains(aimed, "a=setup:actpass") {
		t.Fatalf("the test peer's offer has no a=setup:actpass:\n%s", offer)
	}
	for _, tc := range []struct{ name, offer, says string }{
		{"ice-lite", strings.Replace(aimed, "m=application", "a=ice-lite\r\nm=application", 1), "ice-lite"},
		{"ice-lite in the section", strings.Replace(aimed, "a=end-of-candidates", "a=ice-lite\r\na=end-of-candidates", 1), "ice-lite"},
		{"setup:passive", strings.Replace(aimed, "a=setup:actpass", "a=setup:passive", 1), "setup:passive"},
	} {
		code, body := post(t, url+"?room=lobby&user=aim", "application/sdp", tc.offer)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d %.80q, want 400 saying %q", tc.name, code, body, tc.says)
		}
	}
	code, answer := post(t, url+"?room=lobby&user=aim", "application/sdp", aimed)
	if code != http.StatusCreated {
		t.Fatalf("an offer of a full agent: %d %q", code, answer)
	}
	if setup := sdpAttr(t, answer, "setup"); setup != "passive" {
		t.Errorf("the answer says a=setup:%s: the node is not the DTLS server (passive)", setup)
	}
	// Nothing the node was set up to do sends first; a moment for a
	// packet already on its way.
	_ = victim.SetReadDeadline(time.Now().Add(time.Second))
	if s, ok := <-got; ok {
		t.Errorf("the node sent %s to the address an offer named", s)
	}
}
