package rtcfront_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"hash/crc32"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// sdpAttr returns the value of the first a=NAME: line of an SDP.
func sdpAttr(t *testing.T, sdp, name string) string {
	t.Helper()
	m := regexp.MustCompile(`a=` + name + `:(\S+)`).FindStringSubmatch(sdp)
	if m == nil {
		t.Fatalf("no a=%s in\n%s", name, sdp)
	}
	return m[1]
}

// The ICE roles a check claims (RFC 8445, 7.1.1): the attribute's type.
const (
	iceControlling = 0x802A
	iceControlled  = 0x8029
)

// bindingRequest is an ICE connectivity check (RFC 8445, 7.1.2): a STUN
// Binding request (RFC 8489) with USERNAME, PRIORITY, the role's
// attribute (iceControlling or iceControlled) with tiebreaker,
// MESSAGE-INTEGRITY keyed by the answerer's password, and FINGERPRINT.
func bindingRequest(user, pwd string, role uint16, tiebreaker uint64) []byte {
	return connectivityCheck(user, pwd, role, tiebreaker, 1, false)
}

// connectivityCheck is bindingRequest with the PRIORITY given and, if
// nominate, USE-CANDIDATE: a controlling agent's nomination of the pair
// (RFC 8445, 7.2.2).
func connectivityCheck(user, pwd string, role uint16, tiebreaker uint64, priority uint32, nominate bool) []byte {
	m := make([]byte, 20, 128)
	binary.BigEndian.PutUint16(m[0:], 0x0001)
	binary.BigEndian.PutUint32(m[4:], 0x2112A442)
	_, _ = rand.Read(m[8:20])
	attr := func(typ uint16, v []byte) {
		var h [4]byte
		binary.BigEndian.PutUint16(h[0:], typ)
		binary.BigEndian.PutUint16(h[2:], uint16(len(v)))
		m = append(m, h[:]...)
		m = append(m, v...)
		for len(m)%4 != 0 {
			m = append(m, 0)
		}
	}
	setLen := func(extra int) { binary.BigEndian.PutUint16(m[2:], uint16(len(m)-20+extra)) }
	attr(0x0006, []byte(user))
	attr(0x0024, binary.BigEndian.AppendUint32(nil, priority))
	attr(role, binary.BigEndian.AppendUint64(nil, tiebreaker))
	if nominate {
		attr(0x0025, nil)
	}
	setLen(24) // the length counts MESSAGE-INTEGRITY, not yet there
	mac := hmac.New(sha1.New, []byte(pwd))
	mac.Write(m)
	attr(0x0008, mac.Sum(nil))
	setLen(8)
	attr(0x8028, binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(m)^0x5354554e))
	return m
}

// TestChecksFromManyAddressesEndThePeer: a peer whose ICE checks come
// from more addresses than any real peer has is dropped, and the node
// answers checks from no more than MaxRemoteAddrs of them. Each address
// a valid check comes from is a candidate and a pair of the peer's ICE
// agent and an entry of the shared socket's table, and is answered, for
// as long as the peer lasts: before, a peer that sent checks from every
// port of its host, or from spoofed addresses, grew them without bound
// and had the node answer every one. Then checks that claimed the
// controlled role, with the highest tiebreaker, still did: the agent
// took their addresses as candidates and answered 487 (role conflict)
// without calling the hook that counted them, and 20,000 spoofed ones
// took a core. The checks come while the peer connects: once it is
// connected, no check from another address is read at all
// (TestNominationFromAnotherAddressIsIgnored).
func TestChecksFromManyAddressesEndThePeer(t *testing.T) {
	for _, tt := range []struct {
		name string
		role uint16
		tie  func(i int) uint64
	}{
		{"controlling", iceControlling, func(i int) uint64 { return uint64(i) + 1 }},
		{"controlled, a role conflict", iceControlled, func(int) uint64 { return ^uint64(0) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := nodetest.Start(t, 1, nodetest.Options{})
			c.WaitRoomsReady(settle)
			front, url := startFront(t, c.Nodes[0], nil)
			_, offer := newPeer(t, rtcfront.Protocol, nil)
			// The answer is never applied: the peer does not
			// connect.
			code, answer := post(t, url+"?room=lobby&user=spray", "application/sdp", offer)
			if code != http.StatusCreated {
				t.Fatalf("POST: %d %s", code, answer)
			}
			user := sdpAttr(t, answer, "ice-ufrag") + ":" + sdpAttr(t, offer, "ice-ufrag")
			pwd := sdpAttr(t, answer, "ice-pwd")
			to := net.UDPAddrFromAddrPort(front.Addr())

			answered := 0
			// A peer dropped is no longer held: the guard ends it as
			// it reads the check that passes the bound, before the
			// next is sent.
			for i := range 4 * rtcfront.MaxRemoteAddrs {
				if front.Peers() == 0 {
					t.Logf("dropped after checks from %d addresses, %d answered", i, answered)
					if answered < rtcfront.MaxRemoteAddrs/2 {
						t.Errorf("only %d of the first checks were answered: the test's checks are not valid ones", answered)
					}
					if answered > rtcfront.MaxRemoteAddrs {
						t.Errorf("checks from %d addresses answered, more than %d", answered, rtcfront.MaxRemoteAddrs)
					}
					return
				}
				// Each socket stays open to the end: a port closed
				// could come back for a later socket, an address
				// already counted, and its check be answered.
				sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sock.Close() })
				if _, err := sock.WriteTo(bindingRequest(user, pwd, tt.role, tt.tie(i)), to); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 1500)
				_ = sock.SetReadDeadline(time.Now().Add(2 * time.Second))
				// A success (0x0101) or an error (0x0111: 487, role conflict).
				if n, _, err := sock.ReadFrom(buf); err == nil && n >= 20 && binary.BigEndian.Uint16(buf)&^0x0010 == 0x0101 {
					answered++
				}
			}
			if n := front.Peers(); n != 0 {
				t.Fatalf("the peer is still held after checks from %d addresses (%d answered)", 4*rtcfront.MaxRemoteAddrs, answered)
			}
		})
	}
}
