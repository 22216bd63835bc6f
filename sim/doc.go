// Package sim is a discrete-event simulator of Switchboard's client-side
// server selection at a scale one machine cannot run for real: thousands
// of nodes, millions of sessions. It runs the real policies of package
// pick (pick.ByName) and the real retry order of package failover, on
// simulated time. It is pure: it reads no clock, opens no socket, starts no
// goroutine, and every random choice comes from sources seeded by
// Config.Seed, so the same Config gives the same Result.
//
// # Walk-through
//
//	cfg := sim.DefaultConfig()      // 1000 nodes, a million sessions
//	cfg.Policy = "p2c"              // or any of sim.Policies()
//	cfg.Staleness = 10 * time.Second
//	res, err := sim.Run(ctx, cfg)   // ctx only cancels
//	fmt.Println(res.End.MaxMean, res.Worst, res.Storms[0].P99)
//
// RunBalls measures the classic balls-into-bins table with the real
// choosers (pick.Random, pick.P2C) as a check of the machinery against
// theory. Percentiles and max/mean come from package stats, the same
// definitions as the benchmarks': stats.Quantile (q in [0, 1], nearest
// rank) and stats.MaxMean.
//
// # The model
//
// Nodes have a capacity and a group (zone). Sessions arrive as a Poisson
// process (and optionally as a storm, all at one moment), live an
// exponential (or fixed) time and leave. Nodes die (kill -9: every session
// drops at once) and join (empty) at given moments.
//
// A session that arrives says hello at the common address: it reaches one
// of the nodes the address lists (the available nodes of its directory,
// tried in random order, dead ones failing), gets that node's directory
// and picks, with Request.Self set to that node (pick.DNSOnly takes it;
// the default policy prefers it among equals). The dial takes one RTT; the
// node admits the session unless it is full (users >= capacity) or dead.
// On a refusal or a failed dial, and when its node dies, the session gets
// a failover.Machine and does what the real client does: dial a dead node
// twice more, then fetch a new directory and pick again; after a refusal,
// pick again at once from the fresher directory the refusal carries,
// without that node; after a drop, wait up to 250 ms and pick from the
// directory the session holds, without the dead node, and only when its
// candidates fail fetch and pick. Every fetch and dial costs one RTT. The
// common address always answers.
//
// An attached session holds the directory its node sent when it attached
// (a view of ViewSize nodes when that is set), kept current by the pushes
// of changes the nodes send when nodes join or are marked down, Propagation
// after the change: a join is added while the session holds fewer than
// its view's size, a node marked down is left out, more than DeltaMax
// changes at once are a whole view. Changes of users alone are not pushed,
// so a held directory's numbers are those of its last whole view: its
// Request.Age is the time since the last push. Config.NoPushes drops the
// held directory (a dropped session fetches at once). Result.Pushes counts
// the bytes pushed, as changes and as whole views, measured with the real
// encoder (PushBytes).
//
// Directories are stale in two ways. Every Tick (10 ms) the simulator
// snapshots the users per node; a client picks from the latest snapshot at
// or before now-Staleness-Propagation (a directory from the common
// address) or now-Propagation (one a refusal carries). So every client in
// one Tick sees the same numbers, as concurrent clients do. Each entry has
// AgeMS = Propagation and the request's Age is the rest of the view's age,
// so pick.Balanced sees how stale the numbers are and switches to P2C past
// one second. A dead node shows its last users, its AgeMS growing, until
// Detect (1 s) after its death, then it is down and left out; a joined
// node shows from its first snapshot.
//
// A node's users are the sessions attached to it: a session counts from
// the end of its dial, one RTT after its pick. So with fresh directories
// the clients of Tick+Propagation+RTT (35 ms by default) cannot see each
// other's picks. Every client is its own process: no pick.Tracker.
//
// Three shortcuts keep a pick from copying the directory; none changes
// what a policy may pick, nor with what probability. The policies are
// given only the nodes their own status filter (pick.Available, first in
// every named policy) would keep, so it keeps them all and copies nothing.
// The nodes a failover machine excludes are moved past the end of the
// candidates instead of being left to that filter, so the policy sees the
// same candidates in another order. With one zone, requests carry no
// group: Affinity would keep every node anyway.
//
// # Cost
//
// A pick over n candidates costs what the real policy costs: O(n) for
// every named policy, since the status filter looks at every node (and
// least-users and a fresh Balanced scan them for the least load), plus the
// allocations of the Reason text. That is most of the time of a run: a few
// microseconds per pick at 1000 nodes. Everything else is O(log sessions)
// per event without allocation, except a failover.Machine for each
// session that fails or drops. Config.ViewSize trades fidelity for speed
// by handing out directories of a few random nodes. See docs/sim.md for
// timings.
//
// # Caller's duties
//
//   - Run does not block other than for the CPU time it takes (seconds for
//     a million sessions); cancel ctx to stop it early. Separate Runs share
//     nothing and may run on separate goroutines.
//   - A Config's zero fields take the defaults of DefaultConfig; Events nil
//     means the default kill and join, an empty slice none.
package sim
