package sipfront_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipcall"
	"github.com/switchboard/switchboard/internal/sipfront"
	"github.com/switchboard/switchboard/internal/t140"
)

// TestCallerFasterThanTheRoomIsBounded: a caller whose text comes faster
// than the node takes a session's chunks costs the bridge at most
// MaxBacklog chunks held for resending; each run of text shed past it is
// marked U+FFFD once in the room, and the call goes on. Before, the client
// package's queue of unacknowledged text grew with every packet (it held
// 600 here; a caller at the front's packet rate with 2 KB packets grew
// it by about 50 KB a second, without end).
func TestCallerFasterThanTheRoomIsBounded(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.ChunkRate, cfg.ChunkBurst = 100, 100
	}})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) { cfg.PacketRate, cfg.PacketBurst = 1e6, 1e6 })
	bob := join(t, c.Nodes[0], "bob", "lobby")
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "flood"})
	caller := "sip:flood@127.0.0.1"

	enc := t140.NewEncoder(call.Answer.Format, 9, 1, 0)
	const packets, batch = 700, 50
	highest := 0
	for sent := 0; sent < packets; {
		// A batch at once, then wait until the front has read it, so that
		// the caller outruns the node but not the socket's buffer.
		for range batch {
			p, err := enc.Packet([]byte("x"), uint32(sent*10))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := p.Marshal()
			if err := call.SendRTP(raw); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		nodetest.Eventually(t, settle, func() error {
			if n := front.Packets(); n < int64(sent) {
				return fmt.Errorf("the front read %d packets of %d", n, sent)
			}
			return nil
		})
		for _, b := range front.Backlogs() {
			highest = max(highest, b)
		}
	}
	t.Logf("the bridge held at most %d chunks unacknowledged", highest)
	if highest > sipfront.MaxBacklog {
		t.Fatalf("the bridge held %d chunks of the caller's text unacknowledged, above %d", highest, sipfront.MaxBacklog)
	}
	// Text the caller sends once the queue has room is taken again.
	nodetest.Eventually(t, settle, func() error {
		if b := front.Backlogs(); len(b) != 1 || b[0] >= sipfront.MaxBacklog {
			return fmt.Errorf("backlogs %v", b)
		}
		return nil
	})
	call.Send("after")
	nodetest.Eventually(t, settle, func() error {
		got := bob.text(caller)
		// Each run of text shed is marked once, and text is taken again
		// once the queue has room.
		if !strings.HasSuffix(got, "after") || !strings.Contains(got, t140.Missing) ||
			strings.Contains(got, t140.Missing+t140.Missing) || strings.Count(got, "x") >= packets {
			return fmt.Errorf("bob sees %d x, %d U+FFFD, and ends %q", strings.Count(got, "x"), strings.Count(got, t140.Missing), got[max(0, len(got)-12):])
		}
		return nil
	})
}
