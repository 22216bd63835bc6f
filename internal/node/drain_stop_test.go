package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// A stop (SIGTERM's DrainToStop) during an operator's slow drain asks
// every session not yet asked to move within the stop's grace, and the
// drain ends by the grace's end. Before, the stop kept the drain's slow
// schedule: when the grace ended few had been asked, and Shutdown closed
// the rest break-before-make.
func TestStopDuringASlowDrainAsksEveryoneWithinTheGrace(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	n2 := c.Nodes[1]
	var peers []*peer
	for i := range 20 {
		peers = append(peers, newPeer(t, n2.Addr(), fmt.Sprintf("p%d", i))) // raw clients: they never move
	}
	n2.Drain(10 * time.Minute)
	// A grace of 5 s: the asks are spread over its first three quarters
	// (the last of 20 at about 3.6 s), and its last quarter, 1.25 s, is
	// the margin a starved drain loop has before the deadline closes
	// whoever it has not asked yet.
	done := n2.DrainToStop(5 * time.Second)
	for _, p := range peers {
		p.await("move", isMove)
	}
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("the drain did not end within %v of a 5 s grace: %+v", wait, n2.DrainStatus())
	}
	if st := n2.DrainStatus(); st.Reason != "deadline" || st.Asked != 20 || st.Closed != 20 || st.Deadline.Sub(st.Started) >= time.Minute {
		t.Errorf("drain status %+v; want everyone asked, then closed at the stop's deadline", st)
	}
}
