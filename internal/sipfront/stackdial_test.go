package sipfront_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// The SIP stack opens no TCP connection of its own. It dialled the top
// Via of a request whose connection was gone by the time it answered
// (a peer that reset it with requests in flight), so that a stranger
// could have the node connect to any host and port it named and write
// an answer echoing its headers there, outside the front's limits. Here
// the stack is asked to send a request to a listener over TCP, as it
// would answer such a request: it must refuse, and the listener see
// no connection.
func TestStackDialsNoConnection(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	front := startFront(t, c.Nodes[0], nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().(*net.TCPAddr)
	for _, transport := range []string{"TCP", "TLS"} {
		raw := fmt.Sprintf("OPTIONS sip:victim@%s;transport=%s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK-dial-%s\r\nMax-Forwards: 70\r\n"+
			"From: <sip:front@127.0.0.1>;tag=d1\r\nTo: <sip:victim@%s>\r\nCall-ID: dial-%s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			addr, strings.ToLower(transport), transport, front.Addr(), transport, addr, transport)
		msg, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		req := msg.(*sip.Request)
		req.SetDestination(addr.String())
		err = front.StackTransport().WriteMsgTo(req, addr.String(), transport)
		if err == nil {
			t.Errorf("the stack sent a request over %s to %s: it opened a connection of its own", transport, addr)
		} else if !strings.Contains(err.Error(), "opens no connection") {
			t.Errorf("over %s: %v, want the stack's dial refused", transport, err)
		}
	}
	// Whatever the stack did is done once WriteMsgTo returns: a
	// connection it made is in the listener's backlog already, and
	// Accept takes it at once.
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if conn, err := ln.Accept(); err == nil {
		conn.Close()
		t.Errorf("the listener was connected to from %s", conn.RemoteAddr())
	}
}
