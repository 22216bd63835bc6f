package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A node restarted on its data after its clock was stepped back an hour
// takes an incarnation above its last one, so its peers take its entries
// at once; with the clock's alone they would ignore it as an old life of
// the node until its old record was removed.
func TestRestartWithTheClockBehind(t *testing.T) {
	dir := t.TempDir()
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 1 {
			cfg.DataDir = dir
		}
	}})
	upAt := func(addr string) func() error {
		return func() error {
			e, ok := nodetest.Lookup(c.Nodes[0], "n2")
			if !ok || e.Status != directory.Up || e.Addr != addr {
				return fmt.Errorf("n1 sees n2 as %+v, want up at %s", e, addr)
			}
			return nil
		}
	}
	nodetest.Eventually(t, settle, upAt(c.Nodes[1].Addr())) // n1 holds the first life
	c.Nodes[1].Halt()
	restore := node.SetIncarnationClock(func() time.Time { return time.Now().Add(-time.Hour) })
	defer restore()
	c.Add(func(_ int, cfg *node.Config) { cfg.ID, cfg.DataDir = "n2", dir })
	restore()
	nodetest.Eventually(t, settle, upAt(c.Nodes[2].Addr()))
}
