package sipfront_test

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipcall"
	"github.com/switchboard/switchboard/internal/sipfront"
)

// victim is a UDP socket at 127.0.0.2 (loopback too on Linux), a host
// other than the callers' 127.0.0.1: the third party a caller's SDP
// names to aim the front's RTP at it.
func victim(t *testing.T) *net.UDPConn {
	t.Helper()
	v, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// textOffer is an SDP of a text stream at port, with the session's c=
// at session and, unless media is "", the stream's own c= at media.
func textOffer(session, media string, port int) string {
	mc := ""
	if media != "" {
		mc = "c=IN IP4 " + media + "\r\n"
	}
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=text %d RTP/AVP 98\r\n%sa=rtpmap:98 t140/1000\r\na=sendrecv\r\n",
		session, port, mc)
}

// headerOf is the value of the header name in msg, a SIP message as text.
func headerOf(msg, name string) string {
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n")[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// nothingReached fails t if a datagram waits at v. The caller has made
// sure that none could still be on its way from a call of the front's
// (the call never was, or its socket closed), and that the front sent
// what it sent to the others meanwhile.
func nothingReached(t *testing.T, v *net.UDPConn) {
	t.Helper()
	if err := v.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	if n, from, err := v.ReadFromUDPAddrPort(buf); err == nil {
		t.Errorf("the front sent %d bytes from %v to %v, an address no caller's request came from", n, from, v.LocalAddr())
	}
}

// readText reads RTP at conn until its payloads hold want.
func readText(t *testing.T, conn *net.UDPConn, want string) {
	t.Helper()
	var got strings.Builder
	buf := make([]byte, 2048)
	for !strings.Contains(got.String(), want) {
		if err := conn.SetReadDeadline(time.Now().Add(settle)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%v received %q, then: %v", conn.LocalAddr(), got.String(), err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatalf("%v received a packet that is not RTP: %v", conn.LocalAddr(), err)
		}
		got.Write(p.Payload)
	}
}

// noRTPTo fails t if a call of front sends RTP to v's address.
func noRTPTo(t *testing.T, front *sipfront.Server, v *net.UDPConn) {
	t.Helper()
	if slices.Contains(front.RTPPeers(), v.LocalAddr().(*net.UDPAddr).AddrPort()) {
		t.Errorf("a call sends its RTP to %v, an address no caller's request came from: %v", v.LocalAddr(), front.RTPPeers())
	}
}

// A caller's INVITE whose SDP names another host's address for the text
// stream (c=, at the session's level or the stream's) is refused with
// 488 and a Warning that says why, before anything is set up: before,
// the front answered 200, and once the caller acknowledged it sent the
// room's text, typed by anyone in it, to that address (a third party, or
// a service only the node reaches: UDP reflection). The proof that no
// datagram went there: no call but the honest one is held, and the
// room's text reached the honest caller with nothing at the third
// party's address.
func TestOfferOfAnotherHostsAddressIsRefused(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	v := victim(t)
	port := v.LocalAddr().(*net.UDPAddr).Port
	for i, tt := range []struct{ name, sdp string }{
		{"the session's c=", textOffer("127.0.0.2", "", port)},
		{"the stream's c=", textOffer("127.0.0.1", "127.0.0.2", port)},
	} {
		u := newRawCaller(t, front) // from 127.0.0.1
		u.callID = fmt.Sprint("foreign-offer-", i)
		u.send(u.request("INVITE", "inv1", 1, tt.sdp))
		res := u.final(settle, "1 INVITE")
		if !strings.HasPrefix(res, "SIP/2.0 488 ") {
			t.Errorf("%s naming 127.0.0.2 from 127.0.0.1: answered %q, want 488", tt.name, strings.SplitN(res, "\r\n", 2)[0])
			if strings.HasPrefix(res, "SIP/2.0 200") {
				// The attack, completed: the call runs once acknowledged.
				_, u.toTag, _ = strings.Cut(headerOf(res, "To"), "tag=")
				u.send(u.request("ACK", "ack1", 1, ""))
			}
			continue
		}
		if w := headerOf(res, "Warning"); !strings.Contains(w, "must be the address the request came from, 127.0.0.1") {
			t.Errorf("%s: the 488's Warning is %q, want it to say the address must be the caller's, 127.0.0.1", tt.name, w)
		}
	}

	alice := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "alice"})
	if n := front.Calls(); n != 1 {
		t.Errorf("the front holds %d calls, want alice's alone", n)
	}
	if _, err := bob.sess.SendText("lobby", "to the callers"); err != nil {
		t.Fatal(err)
	}
	collect(t, alice, "to the callers")
	noRTPTo(t, front, v)
	nothingReached(t, v)
}

// The answer in an ACK (to the front's offer in the 200 to a re-INVITE
// without one) that names another host's address ends the call with a
// BYE whose Reason is cause 488, as any answer the call cannot take:
// before, the call took it and sent the room's text there. The call's
// RTP socket is closed before its BYE is sent, so once the BYE came no
// datagram can go.
func TestAnswerInTheACKOfAnotherHostsAddressEndsTheCall(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	alice := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "alice"})
	v := victim(t)
	u := newRawCaller(t, front)
	u.establish()

	u.send(u.request("INVITE", "reinv2", 2, ""))
	if res := u.final(settle, "2 INVITE"); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("a re-INVITE without an offer was answered %q", strings.SplitN(res, "\r\n", 2)[0])
	}
	u.send(u.request("ACK", "ack2", 2, textOffer("127.0.0.1", "127.0.0.2", v.LocalAddr().(*net.UDPAddr).Port)))
	bye := u.next(settle, func(m string) bool { return strings.HasPrefix(m, "BYE ") })
	if bye == "" {
		t.Fatal("an answer in the ACK naming 127.0.0.2, from 127.0.0.1: the call was not ended with a BYE")
	}
	if r := headerOf(bye, "Reason"); !strings.HasPrefix(r, "SIP;cause=488;") || !strings.Contains(r, "127.0.0.2") {
		t.Errorf("the BYE's Reason is %q, want cause 488 naming the address", r)
	}
	u.respond(bye, 200, "OK")

	if _, err := bob.sess.SendText("lobby", "after the answer"); err != nil {
		t.Fatal(err)
	}
	collect(t, alice, "after the answer")
	noRTPTo(t, front, v)
	nothingReached(t, v)
	nodetest.Eventually(t, settle, func() error {
		if n := front.Calls(); n != 1 {
			return fmt.Errorf("the front holds %d calls, want alice's alone", n)
		}
		return nil
	})
}

// A re-INVITE whose offer moves the text stream to another host gets 488
// with a Warning that says the address must be the caller's, and the
// call goes on at its own address. (A re-INVITE that changes the
// stream's address was refused before too, as a change of session; its
// Warning said only that the stream cannot change.)
func TestReInviteCannotMoveTheMediaToAnotherHost(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	v := victim(t)
	u := newRawCaller(t, front)
	u.establish()

	u.send(u.request("INVITE", "reinv2", 2, textOffer("127.0.0.2", "", v.LocalAddr().(*net.UDPAddr).Port)))
	res := u.final(settle, "2 INVITE")
	if !strings.HasPrefix(res, "SIP/2.0 488 ") {
		t.Fatalf("a re-INVITE naming 127.0.0.2, from 127.0.0.1: answered %q, want 488", strings.SplitN(res, "\r\n", 2)[0])
	}
	if w := headerOf(res, "Warning"); !strings.Contains(w, "must be the address the request came from, 127.0.0.1") {
		t.Errorf("the 488's Warning is %q, want it to say the address must be the caller's, 127.0.0.1", w)
	}
	u.send(u.request("ACK", "reinv2", 2, "")) // the 488's, in its transaction

	if _, err := bob.sess.SendText("lobby", "still here"); err != nil {
		t.Fatal(err)
	}
	readText(t, u.rtp, "still here")
	if peers, want := front.RTPPeers(), u.rtp.LocalAddr().(*net.UDPAddr).AddrPort(); len(peers) != 1 || peers[0] != want {
		t.Errorf("the call sends to %v, want %v", peers, want)
	}
	nothingReached(t, v)
	u.send(u.request("BYE", "bye3", 3, ""))
	if res := u.final(settle, "3 BYE"); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Errorf("the caller's BYE was answered %q", strings.SplitN(res, "\r\n", 2)[0])
	}
}

// With RTPAnyAddress (serve --sip-rtp-any-address) an offer may name
// another host, and the front sends the room's text there: the door the
// operator opened, for callers whose media is not where their SIP comes
// from (a proxy that does not relay media).
func TestRTPAnyAddressLetsTheOfferNameAnotherHost(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) { cfg.RTPAnyAddress = true })
	bob := join(t, c.Nodes[0], "bob", "lobby")
	v := victim(t)
	u := newRawCaller(t, front)
	u.send(u.request("INVITE", "inv1", 1, textOffer("127.0.0.2", "", v.LocalAddr().(*net.UDPAddr).Port)))
	res := u.final(settle, "1 INVITE")
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("with RTPAnyAddress, an offer naming 127.0.0.2 from 127.0.0.1 was answered %q, want 200", strings.SplitN(res, "\r\n", 2)[0])
	}
	_, u.toTag, _ = strings.Cut(headerOf(res, "To"), "tag=")
	u.send(u.request("ACK", "ack1", 1, ""))
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(v.LocalAddr().(*net.UDPAddr).Port))
	if peers := front.RTPPeers(); !slices.Contains(peers, want) {
		t.Errorf("the calls send to %v, want %v", peers, want)
	}
	if _, err := bob.sess.SendText("lobby", "over there"); err != nil {
		t.Fatal(err)
	}
	readText(t, v, "over there")
	u.send(u.request("BYE", "bye2", 2, ""))
	if res := u.final(settle, "2 BYE"); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Errorf("the caller's BYE was answered %q", strings.SplitN(res, "\r\n", 2)[0])
	}
}
