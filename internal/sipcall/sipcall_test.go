package sipcall_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/internal/sipcall"
)

// TestDialGivesUpWithItsContext: a dial to a node that never answers
// (dead, or stuck after 100 Trying) returns when its context ends, with
// the context's error, not when the SIP stack's own timers (32 s) run out.
func TestDialGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	// A black hole: reads every datagram and answers none.
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := hole.ReadFrom(buf); err != nil {
				return
			}
		}
	}()

	// A node that says 100 Trying and then nothing more, until the
	// caller's CANCEL (answered by the SIP stack: 200, then 487).
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	stuck := make(chan struct{})
	defer close(stuck)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))
		select {
		case <-tx.Done():
		case <-stuck:
		}
	})
	srv.OnCancel(func(*sip.Request, sip.ServerTransaction) {})
	slow, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeUDP(slow) }()

	for _, tt := range []struct{ name, addr string }{
		{"nothing answers", hole.LocalAddr().String()},
		{"only 100 Trying", slow.LocalAddr().String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			call, err := sipcall.Dial(ctx, "sip:lobby@"+tt.addr, sipcall.Config{User: "ann"})
			if err == nil {
				call.Close()
				t.Fatal("the call was answered")
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Dial: %v, want the context's deadline", err)
			}
		})
	}
}
