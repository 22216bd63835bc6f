package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/drain"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// Rebalancing compares loads, sessions over capacity, as clients pick:
// n1 (capacity 100) holding 12 sessions never sheds onto n2 (capacity
// 10) holding 8; n2 sheds down to the mean load, 20/110 of 10 rounded
// up: 2 stay, 6 move to n1. Before, the raw counts were compared (a mean
// of 10): n1 shed onto n2 until it was full, and n2 kept its 8. n2 full
// (10 of 10) sheds as well, down to 2: before, only an up node shed.
func TestRebalanceByCapacity(t *testing.T) {
	for _, tt := range []struct{ small, moved int }{{8, 6}, {10, 8}} {
		t.Run(fmt.Sprintf("n2 holding %d of 10", tt.small), func(t *testing.T) {
			rebalanceByCapacity(t, tt.small, tt.moved)
		})
	}
}

func rebalanceByCapacity(t *testing.T, onSmall, moved int) {
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Rebalance = drain.RebalanceConfig{Threshold: 0.05, Hold: 500 * time.Millisecond, Rate: 100}
		cfg.RebalanceMinAge = time.Nanosecond
		cfg.Capacity = []int{100, 10}[i]
	}})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	dial := func(n *node.Node, user string) *client.Session {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		s, err := client.Dial(ctx, n.Addr(), client.WithUser(user), client.WithPolicy(preferNode(n.ID())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		go func() {
			for range s.Events() {
			}
		}()
		return s
	}
	// Each node draining in turn while the other's sessions attach, so
	// that neither rebalances before both hold theirs.
	n1.SetDraining(true)
	var small []*client.Session
	for i := range onSmall {
		small = append(small, dial(n2, fmt.Sprintf("b%d", i)))
	}
	n2.SetDraining(true)
	n1.SetDraining(false)
	var big []*client.Session
	for i := range 12 {
		big = append(big, dial(n1, fmt.Sprintf("a%d", i)))
	}
	n2.SetDraining(false)
	moves := func(ss []*client.Session) (k int) {
		for _, s := range ss {
			k += s.Moves()
		}
		return k
	}
	nodetest.Eventually(t, wait, func() error {
		if n1.Users() != 12+moved || n2.Users() != onSmall-moved || moves(small) != moved {
			return fmt.Errorf("n1 %d/100, n2 %d/10 users, %d moved off n2; want %d, %d, %d", n1.Users(), n2.Users(), moves(small), 12+moved, onSmall-moved, moved)
		}
		return nil
	})
	if k := moves(big); k != 0 {
		t.Errorf("%d sessions moved off n1 (12%% loaded) towards n2 (%d%% loaded)", k, onSmall*10)
	}
}
