package node_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// Every node of an embedded cluster tells its rooms which node leads
// their stream, and they agree: without it the presence rules would
// count a dead leader's grace from its death alone (room.StoreLeader),
// and a user whose node led the stream would be shown leaving and
// joining again after every failover.
func TestStreamLeaderNamesANode(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	waitRoomsCaughtUp(t, c)
	var ids []string
	for _, n := range c.Nodes {
		ids = append(ids, n.ID())
	}
	nodetest.Eventually(t, wait, func() error {
		var first string
		for i, n := range c.Nodes {
			id, known := n.StreamLeaderOf("lobby")
			if !known || !slices.Contains(ids, id) {
				return fmt.Errorf("%s: the stream leader of lobby is %q (known %v), want one of %q", n.ID(), id, known, ids)
			}
			if i == 0 {
				first = id
			} else if id != first {
				return fmt.Errorf("%s names %s the leader, %s names %s", n.ID(), id, c.Nodes[0].ID(), first)
			}
		}
		return nil
	})
}
