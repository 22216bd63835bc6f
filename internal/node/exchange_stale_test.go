package node_test

import (
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A replayed (older) entry of n2 reaches n1: the table ignores it as
// stale, and switchboard_directory_changes_total{kind="stale"} says so.
// Before, the series was there and stayed 0 whatever came.
func TestStaleEntriesAreCounted(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	c.WaitAllUp(settle)
	before := labelled(t, n1, "switchboard_directory_changes_total", "kind", "stale")
	old := directory.Entry{Node: directory.Node{ID: n2.ID(), Addr: n2.Addr(), Status: directory.Up, Capacity: 1}, Incarnation: n2.Incarnation(), Seq: 1}
	for range 5 {
		if err := n2.PublishEntry(true, n2.EntrySubject(n2.ID()), old); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Eventually(t, settle, func() error {
		if got := labelled(t, n1, "switchboard_directory_changes_total", "kind", "stale"); got < before+5 {
			recv := labelled(t, n1, "switchboard_directory_updates_received_total", "", "")
			return fmt.Errorf("stale = %v after 5 stale entries of n2 (updates received %v), want at least %v", got, recv, before+5)
		}
		return nil
	})
}
