package directory

import "time"

// HeartbeatMisses is how many of a peer's announced heartbeats may pass
// without word before a Table marks it down (Entry.HeartbeatMS).
const HeartbeatMisses = 3

// HeartbeatBudget is how many heartbeats a second a node receives from
// all its peers together once the cluster is large enough for
// HeartbeatFor to slow them down.
const HeartbeatBudget = 50

// MaxHeartbeat is the slowest heartbeat an entry may announce.
const MaxHeartbeat = time.Minute

// maxConn is the longest Entry.Conn accepted, in bytes.
const maxConn = 200

// HeartbeatFor is how often a node sends its heartbeat in a directory of
// size nodes (itself included): base while its size-1 peers' heartbeats
// come to at most HeartbeatBudget a second, else slower, so that they
// come to at most HeartbeatBudget a second (rounded up to a multiple of
// base, so that the interval changes every few joins, not at each), up to
// ceiling. A ceiling at or below
// base keeps base at every size: a node that cannot learn of a peer's
// death any other way keeps the heartbeats that detect it.
//
// Every node of a cluster computes the same interval from the same size,
// so each receives about min(size-1 per base, HeartbeatBudget) heartbeats
// a second, and a silent peer is down after HeartbeatMisses of them.
func HeartbeatFor(base, ceiling time.Duration, size int) time.Duration {
	if ceiling <= base || size <= 1 {
		return base
	}
	spread := time.Duration(size-1) * time.Second / HeartbeatBudget
	steps := (spread + base - 1) / base
	return min(ceiling, max(base, steps*base))
}
