package node

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// A Drain asked for while SetDraining(false) cancels a drain starts
// after the node has left draining, never between the cancel and the
// status change: the change would undo it there, leaving a drain under
// way on a node that admits sessions, which would close every session at
// its deadline. The test runs Drain at that point whenever the point
// lets one in.
func TestDrainDuringACancelComesAfterIt(t *testing.T) {
	n := &Node{
		cfg:      Config{ID: "n1"},
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		changed:  make(chan struct{}, 1),
		sessions: map[*session]struct{}{},
	}
	n.Drain(time.Minute)
	second := make(chan (<-chan struct{}), 1)
	n.afterDrainCancel = func() {
		if n.drainMu.TryLock() {
			n.drainMu.Unlock()
			second <- n.Drain(time.Minute) // the cancel let it in
			return
		}
		go func() { second <- n.Drain(time.Minute) }() // it waits for the cancel
	}
	n.SetDraining(false)
	<-second
	if st := n.DrainStatus(); !st.Draining {
		t.Errorf("after a drain asked for during a cancel: %+v; want the node draining", st)
	}
}
