package sipfront_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipcall"
	"github.com/switchboard/switchboard/internal/sipfront"
)

// TestUnacknowledgedCallsGiveTheirPlacesUp: an INVITE answered 200 and
// never acknowledged (one datagram, from any source address its sender
// cares to write) used to hold its place under the call limits for the
// 32 s the front sends the 200 again, so that a few such datagrams every
// 32 s kept every caller out. Now such calls take at most
// MaxUnconfirmedCalls places, and one that has waited AckGrace for its
// ACK gives its place up to a new call that finds a limit reached; until
// a call needs it, its 200 is sent again as RFC 3261 says.
func TestUnacknowledgedCallsGiveTheirPlacesUp(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) {
		cfg.MaxCalls, cfg.MaxCallsPerSource, cfg.MaxUnconfirmedCalls = 2, 2, 1
		cfg.AckGrace = time.Second
		sipfront.SetClock(cfg, clock)
	})

	silent := newRawCaller(t, front)
	silent.callID = "unacknowledged-1"
	silent.invite() // and no ACK
	if again := silent.final(settle, "1 INVITE"); !strings.HasPrefix(again, "SIP/2.0 200") {
		t.Fatalf("the 200 of a call not acknowledged was not sent again (got %q)", again)
	}

	// Within the grace, a second call not acknowledged yet finds no
	// place: the silent call holds the one such calls may take, and the
	// other place is kept for a call that is.
	second := newRawCaller(t, front)
	second.callID = "unacknowledged-2"
	second.send(second.request("INVITE", "second1", 1, second.offer("", "sendrecv")))
	if res := second.final(settle, "1 INVITE"); !strings.HasPrefix(res, "SIP/2.0 503") {
		t.Fatalf("a second call while one waits for its ACK was answered %q, want 503", strings.SplitN(res, "\r\n", 2)[0])
	}

	// Past the grace, an honest caller takes the silent call's place.
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "honest"})
	if n := front.Calls(); n != 1 {
		t.Errorf("the front holds %d calls, want the honest one alone", n)
	}
	// The silent call is over: its ACK, late, changes nothing, and the
	// call is unknown to its keepalive.
	silent.send(silent.request("ACK", "late", 1, ""))
	silent.send(silent.request("OPTIONS", "ping", 2, ""))
	if res := silent.final(settle, "2 OPTIONS"); !strings.HasPrefix(res, "SIP/2.0 481") {
		t.Errorf("the call that gave its place up answered a ping %q, want 481", strings.SplitN(res, "\r\n", 2)[0])
	}
	if n := front.Calls(); n != 1 {
		t.Errorf("the front holds %d calls after the late ACK, want 1", n)
	}
}
