package node

import "time"

// SetReaskAfter sets how long after asking a session to move a drain or
// the rebalancer may ask it again (drain.ReaskAfter), for the drains and
// rebalance loops that start from now on, until the returned function
// restores it. For tests, which must not run in parallel with it.
func SetReaskAfter(d time.Duration) (restore func()) {
	old := reaskAfter
	reaskAfter = d
	return func() { reaskAfter = old }
}
