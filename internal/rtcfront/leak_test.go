package rtcfront_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// TestPeersThatVanishLeaveNothing: peers that connect and hang up, and
// peers that take an answer and never connect, leave no goroutine of the
// front behind once they are gone.
func TestPeersThatVanishLeaveNothing(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front, url := startFront(t, c.Nodes[0], func(cfg *rtcfront.Config) {
		cfg.MaxPeersPerSource = 100
		// The first peer of a round must open within it under load; the
		// second is dropped at its end, six times over.
		cfg.OpenTimeout = 3 * time.Second
	})
	round := func(i int) {
		p, offer := newPeer(t, rtcfront.Protocol, nil)
		p.connect(t, url+fmt.Sprintf("?room=lobby&user=u%d", i), offer)
		p.waitOpen(t)
		_ = p.pc.Close()
		q, offer2 := newPeer(t, rtcfront.Protocol, nil)
		if code, body := post(t, url+fmt.Sprintf("?room=lobby&user=v%d", i), "application/sdp", offer2); code != 201 {
			t.Fatalf("%d %s", code, body)
		}
		_ = q.pc.Close()
		nodetest.Eventually(t, settle, func() error {
			if n := front.Peers(); n != 0 {
				return fmt.Errorf("the front holds %d peers", n)
			}
			return nil
		})
	}
	round(0)
	base, _ := webrtcGoroutines()
	for i := 1; i <= 5; i++ {
		round(i)
	}
	nodetest.Eventually(t, settle, func() error {
		if n, stacks := webrtcGoroutines(); n > base {
			return fmt.Errorf("%d goroutines of the front and pion after six rounds, %d after one:\n%s", n, base, stacks)
		}
		return nil
	})
}

// webrtcGoroutines counts the goroutines running code of the front or of
// pion (the test's own peers being closed), and returns their stacks.
func webrtcGoroutines() (int, string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var out strings.Builder
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/pion/") || strings.Contains(g, "internal/rtcfront.") {
			n++
			out.WriteString(g + "\n\n")
		}
	}
	return n, out.String()
}
