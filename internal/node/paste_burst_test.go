package node_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// Members who paste at the same moment, each within its own byte burst
// (16 chunks of 4,000 bytes against 64 KiB), hand every other member 2 MB
// at once, twice the default MaxQueue. A member that reads as fast as it
// comes must get it all. Before, the node judged a reader by bytes
// alone: the feed's first flush, or two while a write was under way,
// passed MaxQueue, and bob was closed as "client reads too slowly" for
// the others' text.
func TestPastingMembersDoNotCloseAReader(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(wait)
	addr := c.Nodes[0].Addr()
	const (
		room    = "pasted"
		senders = 32
		chunks  = 16
	)
	bob := newPeer(t, addr, "bob")
	bob.join(room)
	var ps []*peer
	for i := range senders {
		p := newPeer(t, addr, fmt.Sprintf("s%02d", i))
		p.join(room)
		ps = append(ps, p)
	}
	text := strings.Repeat("x", 4000)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			<-start
			for i := range chunks {
				if err := p.conn.Send(wire.Message{Op: wire.OpText, Room: room, Seq: uint64(i + 1), T: text}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	got := 0
	deadline := time.After(wait)
	for got < senders*chunks {
		select {
		case m, ok := <-bob.in:
			if !ok {
				t.Fatalf("bob's connection closed after %d of %d chunks", got, senders*chunks)
			}
			switch m.Op {
			case wire.OpText:
				got++
			case wire.OpError:
				t.Fatalf("bob, who reads everything, got %+v after %d of %d chunks", m, got, senders*chunks)
			}
		case <-deadline:
			t.Fatalf("bob got %d of %d chunks in %v", got, senders*chunks, wait)
		}
	}
}
