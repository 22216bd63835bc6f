package node_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

func isMove(m wire.Message) bool { return m.Op == wire.OpMove }

// lists reports whether the move's directory lists node id with status.
func lists(m wire.Message, id string, status directory.Status) bool {
	d := m.Directory()
	return d != nil && slices.ContainsFunc(d.Nodes, func(e directory.Node) bool { return e.ID == id && e.Status == status })
}

// A session still attached a while after its move (a client whose move
// found no node: here the only other node was draining) is asked again
// once another node is up, with a directory that lists it up. Before, a
// session was asked once ever, and closed with "shutdown" at the
// deadline: break-before-make.
func TestDrainAsksAgainAfterAFailedMove(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.MoveReaskAfter = 200 * time.Millisecond }})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	n2.SetDraining(true)
	nodetest.Eventually(t, wait, func() error {
		for _, e := range n1.Nodes() {
			if e.ID == n2.ID() && e.Status == directory.Draining {
				return nil
			}
		}
		return fmt.Errorf("%s does not see %s draining yet", n1.ID(), n2.ID())
	})
	p := newPeer(t, n1.Addr(), "stays") // a raw client: it never moves
	n1.Drain(time.Minute)
	if m := p.await("move", isMove); !lists(m, n2.ID(), directory.Draining) {
		t.Fatalf("the first move's directory does not list %s draining: %+v", n2.ID(), m.Dir)
	}
	n2.SetDraining(false)
	if m := p.await("the move asked again", isMove); !lists(m, n2.ID(), directory.Up) {
		t.Errorf("the move asked again lists no %s up: %+v", n2.ID(), m.Dir)
	}
	nodetest.Eventually(t, wait, func() error {
		if st := n1.DrainStatus(); st.Asked != 1 || st.Reasked < 1 {
			return fmt.Errorf("drain status %+v; want 1 asked, asked again", st)
		}
		return nil
	})
}

// A drain cancelled and started again asks again the sessions the first
// one asked. Before, the second drain asked none of them (GET /v1/drain
// said asked 0) and closed them with "shutdown" at its deadline.
func TestDrainAfterCancelAsksAgain(t *testing.T) {
	// No ask goes stale during the test.
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.MoveReaskAfter = time.Hour }})
	n2 := c.Nodes[1]
	p := newPeer(t, n2.Addr(), "stays")
	n2.Drain(time.Minute)
	p.await("the first drain's move", isMove)
	n2.SetDraining(false)
	n2.Drain(time.Minute)
	p.await("the second drain's move", isMove)
	nodetest.Eventually(t, wait, func() error {
		if st := n2.DrainStatus(); st.Asked != 1 || st.Reasked != 0 {
			return fmt.Errorf("drain status %+v; want 1 asked afresh, none again", st)
		}
		return nil
	})
}
