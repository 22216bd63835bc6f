package sipfront_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipcall"
	"github.com/switchboard/switchboard/internal/sipfront"
	"github.com/switchboard/switchboard/internal/textsdp"
	"github.com/switchboard/switchboard/pick"
)

// rawCaller speaks SIP over UDP line by line, as a phone whose
// retransmissions and ACKs the test decides.
type rawCaller struct {
	t     *testing.T
	conn  *net.UDPConn
	front *sipfront.Server
	rtp   *net.UDPConn
	toTag string
	// callID is the call's Call-ID (default "raw-call-1").
	callID string
	// answer is the front's text stream, as its answer to the INVITE
	// says: where the caller's RTP goes.
	answer textsdp.Media
}

func newRawCaller(t *testing.T, front *sipfront.Server) *rawCaller {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(front.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); rtp.Close() })
	return &rawCaller{t: t, conn: conn, front: front, rtp: rtp, callID: "raw-call-1"}
}

// offer is an SDP offer of the caller's text stream in direction dir,
// after the m= lines of extra.
func (u *rawCaller) offer(extra, dir string) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n%sm=text %d RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\na=%s\r\n",
		extra, u.rtp.LocalAddr().(*net.UDPAddr).Port, dir)
}

// request is a request of the call: its branch names its transaction.
func (u *rawCaller) request(method, branch string, cseq int, body string) string {
	to := fmt.Sprintf("<sip:lobby@%s>", u.front.Addr())
	if u.toTag != "" {
		to += ";tag=" + u.toTag
	}
	ct := ""
	if body != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	return fmt.Sprintf("%s sip:lobby@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s\r\nMax-Forwards: 70\r\n"+
		"From: <sip:raw@127.0.0.1>;tag=raw1\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:raw@%s>\r\n%sContent-Length: %d\r\n\r\n%s",
		method, u.front.Addr(), u.conn.LocalAddr(), branch, to, u.callID, cseq, method, u.conn.LocalAddr(), ct, len(body), body)
}

func (u *rawCaller) send(msg string) {
	u.t.Helper()
	if _, err := u.conn.Write([]byte(msg)); err != nil {
		u.t.Fatal(err)
	}
}

// final is the next final response to cseq ("2 INVITE"), skipping
// provisional ones and requests; "" when none comes within d.
func (u *rawCaller) final(d time.Duration, cseq string) string {
	return u.next(d, func(m string) bool {
		return strings.HasPrefix(m, "SIP/2.0 ") && !strings.HasPrefix(m, "SIP/2.0 1") && strings.Contains(m, "\r\nCSeq: "+cseq+"\r\n")
	})
}

// next is the next message from the front that want takes, skipping
// the others; "" when none comes within d.
func (u *rawCaller) next(d time.Duration, want func(string) bool) string {
	buf := make([]byte, 8192)
	end := time.Now().Add(d)
	for {
		if err := u.conn.SetReadDeadline(end); err != nil {
			u.t.Fatal(err)
		}
		n, err := u.conn.Read(buf)
		if err != nil {
			return ""
		}
		if m := string(buf[:n]); want(m) {
			return m
		}
	}
}

// establish makes the call: INVITE, 200, ACK.
func (u *rawCaller) establish() {
	u.t.Helper()
	u.invite()
	u.send(u.request("ACK", "ack1", 1, ""))
}

// invite sends the call's INVITE and takes its 200, unacknowledged.
func (u *rawCaller) invite() {
	u.t.Helper()
	u.send(u.request("INVITE", "inv1", 1, u.offer("", "sendrecv")))
	res := u.final(settle, "1 INVITE")
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		u.t.Fatalf("the INVITE was answered %q", res)
	}
	for _, l := range strings.Split(res, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "To") {
			_, u.toTag, _ = strings.Cut(v, "tag=")
		}
	}
	_, body, _ := strings.Cut(res, "\r\n\r\n")
	answer, err := textsdp.Parse([]byte(body))
	if err != nil {
		u.t.Fatalf("the answer to the INVITE: %v", err)
	}
	u.answer = answer
}

// respond answers the front's request req with code: its Via, From,
// To, Call-ID and CSeq copied.
func (u *rawCaller) respond(req string, code int, reason string) {
	u.t.Helper()
	head, _, _ := strings.Cut(req, "\r\n\r\n")
	res := []string{fmt.Sprintf("SIP/2.0 %d %s", code, reason)}
	for _, h := range strings.Split(head, "\r\n")[1:] {
		k, _, _ := strings.Cut(h, ":")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "via", "from", "to", "call-id", "cseq":
			res = append(res, h)
		}
	}
	u.send(strings.Join(append(res, "Content-Length: 0", "", ""), "\r\n"))
}

// reinvite sends the call's re-INVITE cseq with offer and returns its
// final answer, which must be 200.
func (u *rawCaller) reinvite(cseq int, offer string) string {
	u.t.Helper()
	u.send(u.request("INVITE", fmt.Sprint("reinv", cseq), cseq, offer))
	res := u.final(settle, fmt.Sprint(cseq, " INVITE"))
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		u.t.Fatalf("the re-INVITE %d was answered %q", cseq, res)
	}
	return res
}

// Re-INVITEs as RFC 3261 and 3264 have a UAS answer them:
//   - the 2xx is sent again until its ACK comes (RFC 3261, 13.3.1.4): the
//     transaction layer absorbs the caller's retransmissions of the
//     re-INVITE, so a 2xx lost on the way used to leave the caller's
//     re-INVITE unanswered until it timed out (and most phones then hang
//     up);
//   - one below the dialog's CSeq is out of order: 500, the call
//     unchanged;
//   - one that adds a stream (audio, say) beside the text gets an answer
//     with as many m= lines, the new one refused with port 0, in a new
//     version; before, it got the first answer again.
func TestReInvites(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	u := newRawCaller(t, front)
	u.establish()

	u.reinvite(2, u.offer("", "sendonly"))
	// Taken as lost: no ACK. The 2xx comes again.
	if again := u.final(settle, "2 INVITE"); !strings.HasPrefix(again, "SIP/2.0 200") {
		t.Fatalf("the 2xx to the re-INVITE, unacknowledged, did not come again (got %q)", again)
	}
	u.send(u.request("ACK", "ack2", 2, ""))

	u.send(u.request("INVITE", "stale", 1, u.offer("", "inactive")))
	if res := u.final(settle, "1 INVITE"); !strings.HasPrefix(res, "SIP/2.0 500") {
		t.Errorf("a re-INVITE below the dialog's CSeq was answered %q, want 500", strings.SplitN(res, "\r\n", 2)[0])
	}

	res := u.reinvite(3, u.offer("m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", "sendrecv"))
	u.send(u.request("ACK", "ack3", 3, ""))
	_, answer, _ := strings.Cut(res, "\r\n\r\n")
	if !strings.Contains(answer, "\r\nm=audio 0 ") || !strings.Contains(answer, "\r\nm=text ") || !strings.Contains(answer, "\r\no=- ") {
		t.Errorf("the answer to an offer of audio and text:\n%s\nwant the audio refused with port 0, then the text", answer)
	}
	if strings.Index(answer, "m=audio") > strings.Index(answer, "m=text") {
		t.Errorf("the answer's m= lines are not in the offer's order:\n%s", answer)
	}
}

// A node that gets a redirected INVITE (it carries sbnode) takes it
// without picking again, whichever node sbnode names: here the policy
// keeps picking a node whose SIP address is this very front (nodes
// sharing a host), and the call used to be sent round in 302s.
func TestRedirectedCallIsNotRedirectedAgain(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	var front *sipfront.Server
	front = startFront(t, c.Nodes[0], func(cfg *sipfront.Config) {
		cfg.Redirect = true
		cfg.Policy = pick.PolicyFunc(func([]directory.Node, pick.Request) (pick.Result, error) {
			return pick.Result{Node: directory.Node{ID: "elsewhere", Status: directory.Up}}, nil
		})
		cfg.SIPAddrOf = func(directory.Node) (string, bool) { return front.Addr().String(), true }
	})
	dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "alice"})
	if n := front.Calls(); n != 1 {
		t.Errorf("the front holds %d calls after a redirect to itself, want 1", n)
	}
}

// A caller over TCP gets the front's requests in the call (its
// keepalive OPTIONS, a BYE) on its own connection while that is open,
// not on a new one the front opened to its Contact: such connections
// were not counted by the connection limit and never closed. Once the
// caller's connection is closed (a phone that reconnects), they go to
// the Contact, and the call goes on.
func TestTCPCallerGetsRequestsOnItsConnection(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	// Long enough that the test closes the caller's connection, and the
	// front reads the close, before the next keepalive: one written on
	// the closed connection would go unanswered and end the call.
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) { cfg.KeepAlive = 2 * time.Second })
	contact, err := net.Listen("tcp", "127.0.0.1:0") // where the Contact points
	if err != nil {
		t.Fatal(err)
	}
	defer contact.Close()
	dialled := make(chan net.Conn, 4)
	go func() {
		for {
			conn, err := contact.Accept()
			if err != nil {
				return
			}
			dialled <- conn
		}
	}()
	u := newRawCaller(t, front)
	conn, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	request := func(method, branch, toTag string, body string) string {
		to := fmt.Sprintf("<sip:lobby@%s>", front.Addr())
		if toTag != "" {
			to += ";tag=" + toTag
		}
		ct := ""
		if body != "" {
			ct = "Content-Type: application/sdp\r\n"
		}
		return fmt.Sprintf("%s sip:lobby@%s;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-%s\r\nMax-Forwards: 70\r\n"+
			"From: <sip:tcp@127.0.0.1>;tag=t1\r\nTo: %s\r\nCall-ID: tcp-call-1\r\nCSeq: 1 %s\r\nContact: <sip:tcp@%s;transport=tcp>\r\n%sContent-Length: %d\r\n\r\n%s",
			method, front.Addr(), conn.LocalAddr(), branch, to, method, contact.Addr(), ct, len(body), body)
	}
	if _, err := conn.Write([]byte(request("INVITE", "t1", "", u.offer("", "sendrecv")))); err != nil {
		t.Fatal(err)
	}
	// answerOptions reads r until the front's OPTIONS and answers it 200
	// on w; on the way it ACKs the INVITE's 200, once.
	acked := false
	answerOptions := func(r *bufio.Reader, w net.Conn) {
		t.Helper()
		if err := w.SetReadDeadline(time.Now().Add(settle)); err != nil {
			t.Fatal(err)
		}
		var head []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading from the front: %v", err)
			}
			line = strings.TrimRight(line, "\r\n")
			if line != "" {
				head = append(head, line)
				continue
			}
			if len(head) == 0 {
				continue
			}
			msg := head
			head = nil
			for _, h := range msg {
				if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "Content-Length") {
					n, _ := strconv.Atoi(strings.TrimSpace(v))
					if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
						t.Fatalf("reading a body from the front: %v", err)
					}
				}
			}
			switch {
			case strings.HasPrefix(msg[0], "SIP/2.0 200") && !acked:
				for _, h := range msg {
					if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "To") {
						_, tag, _ := strings.Cut(v, "tag=")
						if _, err := conn.Write([]byte(request("ACK", "t2", tag, ""))); err != nil {
							t.Fatal(err)
						}
						acked = true
					}
				}
			case strings.HasPrefix(msg[0], "OPTIONS "):
				res := []string{"SIP/2.0 200 OK"}
				for _, h := range msg[1:] {
					k, _, _ := strings.Cut(h, ":")
					switch strings.ToLower(strings.TrimSpace(k)) {
					case "via", "from", "to", "call-id", "cseq":
						res = append(res, h)
					}
				}
				if _, err := w.Write([]byte(strings.Join(append(res, "Content-Length: 0", "", ""), "\r\n"))); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
	}
	answerOptions(bufio.NewReader(conn), conn)
	select {
	case <-dialled:
		t.Fatal("the front dialled the caller's Contact while the caller's connection was open")
	default:
	}
	// The caller's connection closes: the next keepalive goes to the
	// Contact, and is answered there.
	conn.Close()
	select {
	case out := <-dialled:
		defer out.Close()
		answerOptions(bufio.NewReader(out), out)
	case <-time.After(settle):
		t.Fatal("after the caller's connection closed, the front's keepalive went nowhere")
	}
	if n := front.Calls(); n != 1 {
		t.Errorf("the front holds %d calls, want the call going on", n)
	}
}

// A caller without redundancy whose RTP source changes (a phone that
// starts a new SSRC after a hold, say) and types one character: the
// packet, held for a next that would confirm the new source, is taken
// once it has waited alone, not kept until the caller types again.
func TestNewSourcesFirstPacketIsTaken(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	u := newRawCaller(t, front)
	u.establish() // plain t140/1000, payload type 98
	to := net.UDPAddrFromAddrPort(u.answer.Addr)
	send := func(ssrc uint32, seq uint16, text string) {
		t.Helper()
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 98, SequenceNumber: seq, SSRC: ssrc}, Payload: []byte(text)}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.rtp.WriteToUDP(b, to); err != nil {
			t.Fatal(err)
		}
	}
	send(1, 100, "a")
	send(2, 7000, "y")
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:raw@127.0.0.1"); got != "ay" {
			return fmt.Errorf("bob sees %q from the caller, want %q", got, "ay")
		}
		return nil
	})
}

// A re-INVITE without an offer gets the front's offer in its 200, and
// the ACK carries the caller's answer (RFC 3261, sections 13.2.1 and
// 14.2): the call takes it, here a new RTP port and a new t140 payload
// type, for the text both ways. Before, the answer was ignored: the
// front went on sending to the old port with the old payload type, and
// dropped the caller's packets from the new one. An answer the call
// cannot take ends it with a BYE (cause 488), since nothing can refuse
// an ACK; the other calls go on.
func TestAnswerInTheACK(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	u := newRawCaller(t, front)
	u.establish()
	moved, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { moved.Close() })

	u.send(u.request("INVITE", "reinv2", 2, ""))
	res := u.final(settle, "2 INVITE")
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("a re-INVITE without an offer was answered %q", strings.SplitN(res, "\r\n", 2)[0])
	}
	_, body, _ := strings.Cut(res, "\r\n\r\n")
	if offer, err := textsdp.Parse([]byte(body)); err != nil || offer.Addr != u.answer.Addr || offer.Direction != textsdp.SendRecv {
		t.Fatalf("the front's offer %+v (%v), want its RTP address %v, sendrecv", offer, err, u.answer.Addr)
	}
	answer := fmt.Sprintf("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=text %d RTP/AVP 99\r\na=rtpmap:99 t140/1000\r\na=sendrecv\r\n", moved.LocalAddr().(*net.UDPAddr).Port)
	u.send(u.request("ACK", "ack2", 2, answer))
	// The ACK is taken on the front's own time: text bob sends before
	// that goes to the old port.
	newPort := moved.LocalAddr().(*net.UDPAddr).AddrPort()
	nodetest.Eventually(t, settle, func() error {
		if peers := front.RTPPeers(); len(peers) != 1 || peers[0].Port() != newPort.Port() {
			return fmt.Errorf("the call sends to %v, want port %d", peers, newPort.Port())
		}
		return nil
	})

	if _, err := bob.sess.SendText("lobby", "to the new port"); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	buf := make([]byte, 2048)
	for !strings.Contains(got.String(), "to the new port") {
		if err := moved.SetReadDeadline(time.Now().Add(settle)); err != nil {
			t.Fatal(err)
		}
		n, err := moved.Read(buf)
		if err != nil {
			t.Fatalf("the caller's new port received %q, then: %v", got.String(), err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil || p.PayloadType != 99 {
			t.Fatalf("the caller's new port received a packet of payload type %d (%v), want 99", p.PayloadType, err)
		}
		got.Write(p.Payload)
	}
	back := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 99, SequenceNumber: 1, SSRC: 7}, Payload: []byte("from the new port")}
	raw, err := back.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := moved.WriteToUDP(raw, net.UDPAddrFromAddrPort(u.answer.Addr)); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:raw@127.0.0.1"); got != "from the new port" {
			return fmt.Errorf("bob sees %q from the caller", got)
		}
		return nil
	})

	for i, tt := range []struct{ name, answer string }{
		{"malformed", "v=0\r\nthis is not SDP\r\n"},
		{"the text stream refused", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			"m=text 0 RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\n"},
		{"none", ""},
	} {
		v := newRawCaller(t, front)
		v.callID = fmt.Sprint("bad-answer-", i)
		v.establish()
		v.send(v.request("INVITE", "bad2", 2, ""))
		if res := v.final(settle, "2 INVITE"); !strings.HasPrefix(res, "SIP/2.0 200") {
			t.Fatalf("%s: a re-INVITE without an offer was answered %q", tt.name, strings.SplitN(res, "\r\n", 2)[0])
		}
		v.send(v.request("ACK", "badack2", 2, tt.answer))
		bye := v.next(settle, func(m string) bool { return strings.HasPrefix(m, "BYE ") })
		if bye == "" {
			t.Fatalf("%s answer in the ACK: the call was not ended with a BYE", tt.name)
		}
		if !strings.Contains(bye, "\r\nReason: SIP;cause=488;") {
			t.Errorf("%s answer in the ACK: the BYE's Reason is not cause 488:\n%s", tt.name, bye)
		}
		v.respond(bye, 200, "OK")
	}
	nodetest.Eventually(t, settle, func() error {
		if n := front.Calls(); n != 1 {
			return fmt.Errorf("the front holds %d calls, want the first one alone", n)
		}
		return nil
	})
	// Hung up, so that the front's shutdown waits for no answer to its BYE.
	u.send(u.request("BYE", "bye3", 3, ""))
	if res := u.final(settle, "3 BYE"); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Errorf("the caller's BYE was answered %q", strings.SplitN(res, "\r\n", 2)[0])
	}
}
