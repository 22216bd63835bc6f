package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
//
// The nodes share an external NATS: in an embedded cluster of two the
// halt leaves the rooms' streams without a quorum, and the new life is
// up only once they have elected leaders again (5 to 15 s here), which
// is not what this test is about.
func TestRestartWithTheClockBehind(t *testing.T) {
	dir := t.TempDir()
	ns := externalNATS(t, t.TempDir())
	onNATS := onBus(ns.ClientURL(), nil)
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		onNATS(i, cfg)
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
	c.Add(func(i int, cfg *node.Config) {
		onNATS(i, cfg)
		cfg.ID, cfg.DataDir = "n2", dir
	})
	restore()
	nodetest.Eventually(t, settle, upAt(c.Nodes[2].Addr()))
}

// The rooms forget a peer's incarnation when the directory forgets the
// peer. Back later under its ID with a lower incarnation (another host,
// an emptied --data, its clock behind), it is a newcomer to both: before,
// the rooms kept the higher one and took every member the node joined for
// a stale one of an older run, on every peer, for good.
//
// On an external NATS, as TestRestartWithTheClockBehind, so that the
// node coming back is up at once.
func TestRemovedPeerComesBackLower(t *testing.T) {
	ns := externalNATS(t, t.TempDir())
	onNATS := onBus(ns.ClientURL(), func(cfg *node.Config) {
		// Short: the test waits it out once, and nothing here needs to
		// see n2 down before it is removed (TestHaltedNodeGoesDownThenLeaves
		// does).
		cfg.RemoveAfter = time.Second
	})
	c := nodetest.Start(t, 2, nodetest.Options{Configure: onNATS})
	n1 := c.Nodes[0]
	first := c.Nodes[1].Incarnation()
	nodetest.Eventually(t, settle, func() error {
		if got := n1.RoomsIncarnation("n2"); got != first {
			return fmt.Errorf("n1's rooms take incarnation %d for n2, want %d", got, first)
		}
		return nil
	})
	c.Nodes[1].Halt()
	nodetest.Eventually(t, settle, func() error {
		if got := nodetest.StatusOf(n1, "n2"); got != "" {
			return fmt.Errorf("n1 lists n2 as %q, want it removed", got)
		}
		return nil
	})
	if got := n1.RoomsIncarnation("n2"); got != 0 {
		t.Errorf("n1 removed n2 from its directory, and its rooms still take incarnation %d for it", got)
	}
	restore := node.SetIncarnationClock(func() time.Time { return time.Now().Add(-time.Hour) })
	defer restore()
	back := c.Add(func(i int, cfg *node.Config) {
		onNATS(i, cfg)
		cfg.ID = "n2"
	})
	restore()
	second := back.Incarnation()
	if second >= first {
		t.Fatalf("n2 came back with incarnation %d, want one below %d", second, first)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := n1.RoomsIncarnation("n2"); got != second {
			return fmt.Errorf("n1's rooms take incarnation %d for n2, want %d: the one it came back with", got, second)
		}
		return nil
	})
}

// A node whose kept incarnation is more than a day ahead of its clock (a
// start under a clock far ahead) says so at start: its peers drop
// entries that far ahead (acceptEntry), and it would otherwise not know
// why no peer lists it.
func TestIncarnationFarAheadIsLogged(t *testing.T) {
	dir := t.TempDir()
	ahead := strconv.FormatInt(time.Now().Add(48*time.Hour).UnixNano(), 10)
	if err := os.WriteFile(filepath.Join(dir, "incarnation"), []byte(ahead+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := startLogged(t, func(cfg *node.Config) { cfg.DataDir = dir })
	logs.check(t, "more than a day ahead of the clock", true)
}
