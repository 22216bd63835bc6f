package rtcfront_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// capturingConn is a test peer's UDP socket that keeps a copy of the
// last nomination the peer sent: a Binding request with USE-CANDIDATE,
// as one who sees the peer's traffic would capture it.
type capturingConn struct {
	net.PacketConn
	mu         sync.Mutex
	nomination []byte
}

func (c *capturingConn) WriteTo(b []byte, to net.Addr) (int, error) {
	if stun.IsMessage(b) {
		m := &stun.Message{Raw: append([]byte(nil), b...)}
		if m.Decode() == nil && m.Type == stun.BindingRequest && m.Contains(stun.AttrUseCandidate) {
			c.mu.Lock()
			c.nomination = m.Raw
			c.mu.Unlock()
		}
	}
	return c.PacketConn.WriteTo(b, to)
}

func (c *capturingConn) captured() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nomination
}

// attackers are UDP sockets on loopback whose reads are gathered, to
// tell what the node sent them.
type attackers struct {
	socks  []*net.UDPConn
	got    chan attackerPacket
	sender *net.UDPConn // sends the markers (settle)
}

type attackerPacket struct {
	sock int
	data []byte
}

// marker is what settle sends each socket: once a socket reads it, it
// has read whatever the node sent it before.
var marker = []byte("marker: nothing from the node")

func newAttackers(t *testing.T, n int) *attackers {
	t.Helper()
	a := &attackers{got: make(chan attackerPacket, 1024)}
	listen := func() *net.UDPConn {
		s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a.sender = listen()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		for _, s := range a.socks {
			s.Close()
		}
		a.sender.Close()
		wg.Wait()
	})
	for i := range n {
		s := listen()
		a.socks = append(a.socks, s)
		wg.Go(func() {
			for {
				buf := make([]byte, 1500)
				n, _, err := s.ReadFrom(buf)
				if err != nil {
					return
				}
				select {
				case a.got <- attackerPacket{sock: i, data: buf[:n]}:
				default: // more than a test reads: enough to fail it
				}
			}
		})
	}
	return a
}

// sentDTLS reports whether a packet read so far, not yet taken, is no
// STUN message (RFC 7983: DTLS is 20-63), keeping what it takes in seen.
func (a *attackers) sentDTLS(seen *[]attackerPacket) bool {
	for {
		select {
		case p := <-a.got:
			*seen = append(*seen, p)
		default:
			for _, p := range *seen {
				if len(p.data) > 0 && p.data[0] >= 20 && p.data[0] <= 63 {
					return true
				}
			}
			return false
		}
	}
}

// settle sends each socket a marker and returns, once each has read it,
// what the sockets read that was not a marker.
func (a *attackers) settle(t *testing.T, seen []attackerPacket) []attackerPacket {
	t.Helper()
	for _, s := range a.socks {
		if _, err := a.sender.WriteTo(marker, s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	markers := 0
	deadline := time.After(settle)
	for markers < len(a.socks) {
		select {
		case p := <-a.got:
			if string(p.data) == string(marker) {
				markers++
			} else {
				seen = append(seen, p)
			}
		case <-deadline:
			t.Fatalf("%d of %d sockets read the marker", markers, len(a.socks))
		}
	}
	return seen
}

// TestNominationFromAnotherAddressIsIgnored: once a peer is connected, a
// valid check with USE-CANDIDATE from another address, forged with the
// highest priority or the peer's own nomination replayed byte for byte
// (from 33 ports), moves nothing: the node answers none of them, sends
// none of them DTLS, and the peer goes on receiving the room's text.
// Before, the node, an ICE lite agent, switched its selected pair to
// whatever pair a check nominated: the peer's DTLS and SCTP went to the
// sender's address, the peer received nothing and its association died,
// and anyone who saw one check of the peer's aimed the node's UDP at
// any address; the replay from 33 ports also ended the peer (checks
// from too many addresses).
func TestNominationFromAnotherAddressIsIgnored(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ports int
		check func(user, pwd string, captured []byte) []byte
	}{
		{"forged, the highest priority", 1, func(user, pwd string, _ []byte) []byte {
			return connectivityCheck(user, pwd, iceControlling, ^uint64(0), ^uint32(0), true)
		}},
		{"the peer's own replayed from 33 ports", rtcfront.MaxRemoteAddrs + 1, func(_, _ string, captured []byte) []byte {
			return captured
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := nodetest.Start(t, 1, nodetest.Options{})
			c.WaitRoomsReady(settle)
			front, url := startFront(t, c.Nodes[0], nil)
			bob := join(t, c.Nodes[0], "bob", "lobby")
			sock, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			capture := &capturingConn{PacketConn: sock}
			mux := webrtc.NewICEUDPMux(nil, capture)
			t.Cleanup(func() { _ = mux.Close(); _ = sock.Close() })
			p, offer := newPeerWith(t, rtcfront.Protocol, nil, func(se *webrtc.SettingEngine) {
				se.SetICEUDPMux(mux)
			})
			answer := p.connect(t, url+"?room=lobby&user=alice", offer)
			p.waitOpen(t)
			nodetest.Eventually(t, settle, func() error {
				if !bob.hasJoined("alice") {
					return errors.New("bob has not seen alice join")
				}
				return nil
			})
			captured := capture.captured()
			if captured == nil {
				t.Fatal("the test peer sent no check with USE-CANDIDATE")
			}
			user := sdpAttr(t, answer, "ice-ufrag") + ":" + sdpAttr(t, offer, "ice-ufrag")
			check := tt.check(user, sdpAttr(t, answer, "ice-pwd"), captured)

			a := newAttackers(t, tt.ports)
			to := net.UDPAddrFromAddrPort(front.Addr())
			for _, s := range a.socks {
				if _, err := s.WriteTo(check, to); err != nil {
					t.Fatal(err)
				}
			}
			// The peer's text, sent after the checks, reaches the node
			// after them on the one socket, and the peer's ICE agent
			// reads its packets in order: once bob sees it, the agent
			// has handled the checks.
			if err := p.dc.SendText("ping"); err != nil {
				t.Fatal(err)
			}
			nodetest.Eventually(t, settle, func() error {
				select {
				case <-p.shut:
					t.Fatalf("the peer was dropped after the checks (the front holds %d peers)", front.Peers())
				default:
				}
				if got := bob.text("alice"); !strings.Contains(got, "ping") {
					return fmt.Errorf("bob sees alice type %q (the front holds %d peers)", got, front.Peers())
				}
				return nil
			})
			if _, err := bob.sess.SendText("lobby", "pong"); err != nil {
				t.Fatal(err)
			}
			// Either the peer receives the room's text or the node's
			// DTLS goes to a check's address instead.
			var seen []attackerPacket
			nodetest.Eventually(t, settle, func() error {
				if strings.Contains(p.received(), "[bob]: pong") || a.sentDTLS(&seen) {
					return nil
				}
				return fmt.Errorf("the peer received %q", p.received())
			})
			seen = a.settle(t, seen)
			stunAnswers, dtls := 0, 0
			for _, pkt := range seen {
				if len(pkt.data) >= 20 && binary.BigEndian.Uint16(pkt.data) == 0x0101 {
					stunAnswers++
				} else {
					dtls++
				}
			}
			if stunAnswers > 0 || dtls > 0 {
				t.Errorf("the node sent the checks' addresses %d answers and %d other packets (DTLS)", stunAnswers, dtls)
			}
			if got := p.received(); !strings.Contains(got, "[bob]: pong") {
				t.Errorf("the peer received %q, not bob's pong", got)
			}
			select {
			case <-p.shut:
				t.Error("the peer's channel closed")
			default:
			}
			if n := front.Peers(); n != 1 {
				t.Errorf("the front holds %d peers, want 1", n)
			}
		})
	}
}

// TestReplayedCheckIsNotCounted: a peer's valid check sent again from
// other addresses while the peer connects, from 33 ports, counts none of
// them: a check whose transaction ID came already from another address
// is a replay and dropped. Before, each counted as an address of the
// peer's, and the 33rd ended the peer.
func TestReplayedCheckIsNotCounted(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front, url := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	// The answer is applied only after the replays: the peer is not
	// connected meanwhile.
	code, answer := post(t, url+"?room=lobby&user=alice", "application/sdp", offer)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, answer)
	}
	user := sdpAttr(t, answer, "ice-ufrag") + ":" + sdpAttr(t, offer, "ice-ufrag")
	pwd := sdpAttr(t, answer, "ice-pwd")
	check := bindingRequest(user, pwd, iceControlling, 1)
	a := newAttackers(t, rtcfront.MaxRemoteAddrs+1)
	to := net.UDPAddrFromAddrPort(front.Addr())
	for _, s := range a.socks {
		if _, err := s.WriteTo(check, to); err != nil {
			t.Fatal(err)
		}
	}
	// A new check from the first address reaches the peer's agent after
	// those (one queue): its answer says they have been read.
	if _, err := a.socks[0].WriteTo(bindingRequest(user, pwd, iceControlling, 1), to); err != nil {
		t.Fatal(err)
	}
	answered := 0
	deadline := time.After(settle)
	for answered < 2 {
		select {
		case pkt := <-a.got:
			if pkt.sock != 0 {
				t.Fatalf("the check sent again from port %d was answered", pkt.sock)
			}
			if len(pkt.data) < 20 || binary.BigEndian.Uint16(pkt.data) != 0x0101 {
				t.Fatalf("the first address got % x, not a Binding success", pkt.data)
			}
			answered++
		case <-deadline:
			t.Fatalf("%d of the first address's 2 checks answered; the front holds %d peers", answered, front.Peers())
		}
	}
	if n := front.Peers(); n != 1 {
		t.Fatalf("after one check sent from %d ports the front holds %d peers, want 1", len(a.socks), n)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	p.waitOpen(t)
	nodetest.Eventually(t, settle, func() error {
		if !bob.hasJoined("alice") {
			return errors.New("bob has not seen alice join")
		}
		return nil
	})
	if _, err := bob.sess.SendText("lobby", "hi"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := p.received(); !strings.Contains(got, "[bob]: hi") {
			return fmt.Errorf("the peer received %q", got)
		}
		return nil
	})
	if got := a.settle(t, nil); len(got) > 0 {
		t.Errorf("the node sent the replays' addresses %d packets", len(got))
	}
}
