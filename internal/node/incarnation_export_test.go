package node

import "time"

// SetIncarnationClock makes the nodes that start from now on draw their
// incarnations from clock, and returns a func that puts time.Now back.
// For tests, which must not run in parallel with it.
func SetIncarnationClock(clock func() time.Time) (restore func()) {
	incarnationClock = clock
	return func() { incarnationClock = time.Now }
}

// Incarnation is the node's incarnation. For tests.
func (n *Node) Incarnation() uint64 { return n.incarnation }
