package sipfront_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipfront"
)

// tcpPeer is one end of a SIP TCP connection, speaking line by line.
type tcpPeer struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func newTCPPeer(t *testing.T, conn net.Conn) *tcpPeer {
	t.Cleanup(func() { conn.Close() })
	return &tcpPeer{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (p *tcpPeer) send(msg string) {
	p.t.Helper()
	if _, err := p.conn.Write([]byte(msg)); err != nil {
		p.t.Fatal(err)
	}
}

// next reads the next message: its start line and headers.
func (p *tcpPeer) next() []string {
	p.t.Helper()
	if err := p.conn.SetReadDeadline(time.Now().Add(settle)); err != nil {
		p.t.Fatal(err)
	}
	var head []string
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			p.t.Fatalf("reading from the front: %v", err)
		}
		if line = strings.TrimRight(line, "\r\n"); line != "" {
			head = append(head, line)
			continue
		}
		if len(head) == 0 {
			continue // a keepalive CRLF
		}
		if n, _ := strconv.Atoi(header(head, "Content-Length")); n > 0 {
			if _, err := io.ReadFull(p.r, make([]byte, n)); err != nil {
				p.t.Fatalf("reading a body from the front: %v", err)
			}
		}
		return head
	}
}

// answerPing reads up to the front's next OPTIONS and answers it code;
// it ACKs the INVITE's 200 on the way with ack, given its To tag.
func (p *tcpPeer) answerPing(code int, ack func(toTag string) string) {
	p.t.Helper()
	for {
		msg := p.next()
		switch {
		case strings.HasPrefix(msg[0], "SIP/2.0 200") && strings.HasSuffix(header(msg, "CSeq"), "INVITE") && ack != nil:
			_, tag, _ := strings.Cut(header(msg, "To"), "tag=")
			p.send(ack(tag))
			ack = nil
		case strings.HasPrefix(msg[0], "OPTIONS "):
			res := []string{fmt.Sprintf("SIP/2.0 %d Answered", code)}
			for _, h := range msg[1:] {
				k, _, _ := strings.Cut(h, ":")
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "via", "from", "to", "call-id", "cseq":
					res = append(res, h)
				}
			}
			p.send(strings.Join(append(res, "Content-Length: 0", "", ""), "\r\n"))
			return
		}
	}
}

// header is the value of the header name in head ("" when none).
func header(head []string, name string) string {
	for _, h := range head[1:] {
		if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// The connections the front opens to TCP callers count in its TCP
// connection limits as those it accepts. A caller whose own connection
// closed gets the front's requests in the call (keepalives, BYE) on a
// connection to its Contact: before, the SIP stack opened it, and the
// limits neither counted it nor bounded it, nor closed it when idle.
// Now one is counted under the Contact's address, and none is opened
// past the limits: the call, which the front can then no longer ping,
// ends.
func TestConnectionsToCallersAreCounted(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) {
		// Long enough that the test closes the first caller's
		// connection, and the front reads the close, before the next
		// keepalive: one written on the closed connection would go
		// unanswered and end the call.
		cfg.KeepAlive = 2 * time.Second
		cfg.MaxConnsPerSource = 1
	})
	// The callers' Contacts, on another loopback address than their
	// connections (127.0.0.2 is loopback too on Linux).
	contactIP := netip.MustParseAddr("127.0.0.2")
	contacts := make([]chan net.Conn, 2)
	addrs := make([]net.Addr, 2)
	for i := range contacts {
		l, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatalf("listening on a second loopback address (all of 127/8 is loopback on Linux): %v", err)
		}
		t.Cleanup(func() { l.Close() })
		contacts[i], addrs[i] = make(chan net.Conn, 4), l.Addr()
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				contacts[i] <- conn
			}
		}()
	}
	rtp := newRawCaller(t, front) // for its SDP offer
	call := func(i int) *tcpPeer {
		t.Helper()
		conn, err := net.Dial("tcp", front.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		p := newTCPPeer(t, conn)
		request := func(method, branch, toTag, body string) string {
			to := fmt.Sprintf("<sip:lobby@%s>", front.Addr())
			if toTag != "" {
				to += ";tag=" + toTag
			}
			ct := ""
			if body != "" {
				ct = "Content-Type: application/sdp\r\n"
			}
			return fmt.Sprintf("%s sip:lobby@%s;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-%s\r\nMax-Forwards: 70\r\n"+
				"From: <sip:tcp@127.0.0.1>;tag=t1\r\nTo: %s\r\nCall-ID: tcp-out-%d\r\nCSeq: 1 %s\r\nContact: <sip:tcp@%s;transport=tcp>\r\n%sContent-Length: %d\r\n\r\n%s",
				method, front.Addr(), conn.LocalAddr(), branch, to, i, method, addrs[i], ct, len(body), body)
		}
		p.send(request("INVITE", fmt.Sprint("inv", i), "", rtp.offer("", "sendrecv")))
		p.answerPing(200, func(tag string) string { return request("ACK", fmt.Sprint("ack", i), tag, "") })
		return p
	}

	first := call(0)
	first.conn.Close()
	var out *tcpPeer
	select {
	case conn := <-contacts[0]:
		out = newTCPPeer(t, conn)
	case <-time.After(settle):
		t.Fatal("the front's keepalive reached the first caller's Contact on no connection")
	}
	nodetest.Eventually(t, settle, func() error {
		if n := front.TCPConnsWith(contactIP); n != 1 {
			return fmt.Errorf("the front counts %d connections with %v, want the one it opened", n, contactIP)
		}
		return nil
	})
	// The first call ends (481: the caller forgot it); the connection
	// stays open, counted, and takes 127.0.0.2's one place.
	out.answerPing(481, nil)
	nodetest.Eventually(t, settle, func() error {
		if n := front.Calls(); n != 0 {
			return fmt.Errorf("the front holds %d calls", n)
		}
		if n := front.TCPConnsWith(netip.MustParseAddr("127.0.0.1")); n != 0 {
			return fmt.Errorf("the front counts %d connections from the first caller's address", n)
		}
		return nil
	})

	second := call(1)
	second.conn.Close()
	nodetest.Eventually(t, settle, func() error {
		if n := front.Calls(); n != 0 {
			return fmt.Errorf("the front holds %d calls: the second caller, unreachable within the limits, is still held", n)
		}
		return nil
	})
	select {
	case <-contacts[1]:
		t.Fatal("the front opened a connection to the second caller's Contact past the limit")
	default:
	}
	if n := front.TCPConnsWith(contactIP); n != 1 {
		t.Errorf("the front counts %d connections with %v, want 1", n, contactIP)
	}
}
