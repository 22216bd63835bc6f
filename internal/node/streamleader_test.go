package node_test

import (
	"context"
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

// With four nodes one holds no copy of a room's stream: it learns the
// leader from the stream's info and then from JetStream's advisories of
// each election, and names the same node as the others, before and
// after the leader steps down.
func TestStreamLeaderKnownWithoutACopy(t *testing.T) {
	c := nodetest.Start(t, 4, nodetest.Options{})
	waitRoomsCaughtUp(t, c)
	agree := func(not string) string {
		t.Helper()
		var leader string
		nodetest.Eventually(t, wait, func() error {
			leader = ""
			for _, n := range c.Nodes {
				id, known := n.StreamLeaderOf("lobby")
				switch {
				case !known:
					return fmt.Errorf("%s does not know the leader of lobby's stream", n.ID())
				case id == not:
					return fmt.Errorf("%s still names %s", n.ID(), id)
				case leader == "":
					leader = id
				case id != leader:
					return fmt.Errorf("%s names %s the leader, another node %s", n.ID(), id, leader)
				}
			}
			return nil
		})
		return leader
	}
	first := agree("")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Nodes[0].StepDownRoomStream(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	agree(first)
}
