// Package failover is the pure state machine that orders a client's
// attempts to attach: retry the picked node, then ask the common address
// for a fresh directory, then pick again; after a drop, pick first from
// the directory the session already holds. It reads no clock and opens no
// connection: the caller reports an Outcome with the time it happened, and
// the Machine answers with the next Action. Its order is therefore tested
// without sockets or sleeps.
//
// # The order
//
//  1. Begin starts a flow: Refresh (ask the common address for a
//     directory), then Pick, then Dial the picked node.
//  2. A node that refuses the connection (DialFailed) is dialled again,
//     Config.Retries times (default 2), after short jittered waits (20 ms,
//     then 40 ms, doubling up to 200 ms; each uniform in [w/2, w]). A node
//     that times out (Timeout: it took the connection and said nothing in
//     time, as a paused node does) is not dialled again by default
//     (Config.TimeoutRetries): each try would cost the whole attempt
//     timeout. Then it is excluded for Config.Cooldown (default 5 s; in
//     the flow, longer: step 7) and the machine asks for Refresh at
//     once, then Pick (or Pick alone while a held directory is in use:
//     step 6).
//  3. A node that refuses the session while alive (Refused: full or
//     draining, which send a fresh directory with the refusal; going, or
//     at its connection limit) is excluded for the cool-down and the
//     machine asks for Pick at once, without retrying that node.
//  4. A failed pass, that is the common address unreachable
//     (DirectoryFailed) or no node left to pick (NoCandidate), is followed
//     by Refresh after a jittered backoff: 100 ms, doubling up to 2 s, each
//     uniform in [w/2, w]. The count of failed passes starts again when a
//     session attaches.
//  5. A session that drops (Dropped) starts a new flow: its node is
//     excluded for the cool-down and, after a wait uniform in [0,
//     Config.DropBase] (250 ms by default), the flow goes on with Pick
//     when the caller still holds a directory (Outcome.Held: the last one
//     its node sent), else with Refresh. Sessions that keep dropping
//     within Config.Stable (10 s) of attaching double that bound each
//     time, up to 2 s. A node excluded only because it dropped the
//     session is up again once it answers a hello (Fetched with Node:
//     it restarted, say): its cool-down ends then, so that the session
//     of a one-node service comes back as soon as its node does. A node
//     that failed a dial or refused since keeps its cool-down.
//  6. A flow that began with the held directory asks the common address
//     only once that directory's candidates have failed: a node that
//     fails its dials (step 2) or refuses (step 3) is excluded and the
//     machine asks for Pick again, from the same directory; when no node
//     is left in it (NoCandidate), Refresh comes at once, and from then
//     on the flow is the usual one. A dropped session thus reattaches
//     with one connection to the node it picks (hello, attach), without
//     the common address's DNS query and hello first.
//  7. Within a flow, a node excluded by step 2, 3 or 5 stays excluded
//     past its cool-down until every other candidate has been tried,
//     that is until a pick finds nothing (NoCandidate): then a new round
//     begins, in which only the cool-downs still running count (a node
//     that only dropped the session and answers a hello is let back at
//     once, as in step 5). Trying the nodes of the client's zone one
//     after the other can take longer than the cool-down (four that
//     time out, at 2 s each): without rounds the first would be back
//     before the last was tried, the pick would never leave the zone for
//     a node elsewhere, and no failed pass would slow the loop down.
//     Each flow (Begin, Dropped) starts a round of its own.
//
// The machine gives up (Fail) only at the deadline the caller gives with
// Begin or Dropped: when the next step could only start at or after it.
// The error wraps ErrDeadline and the last failure's error, and says what
// the flow tried, node by node. A zero deadline means never give up.
//
// # Driving it
//
//	m, err := failover.New(failover.DefaultConfig(), pick.NewRand(seed))
//	act := m.Next(failover.Outcome{Kind: failover.Begin, Deadline: deadline}, time.Now())
//	for {
//		switch act.Step {
//		case failover.Refresh: // wait act.After, then hello at the common address
//			o = Outcome{Kind: Fetched, Node: dir.Self} or Outcome{Kind: DirectoryFailed, Err: err}
//		case failover.Pick: // wait act.After (after a drop), then pick
//			res, err := policy.Pick(nodes, pick.Request{Group: g, Exclude: m.ExcludeFunc(time.Now())})
//			o = Outcome{Kind: Picked, Node: res.Node.ID} or Outcome{Kind: NoCandidate, Err: err}
//		case failover.Dial, failover.Retry: // wait act.After, then attach to act.Node
//			o = Attached, DialFailed, Timeout, or Refused (use the directory it carries, if any)
//		case failover.Done: // attached; later, when the session drops:
//			o = Outcome{Kind: Dropped, Node: id, Err: err, Deadline: newDeadline, Held: haveDirectory}
//		case failover.Fail:
//			return act.Err
//		}
//		act = m.Next(o, time.Now())
//	}
//
// # Caller's duties
//
//   - Report exactly one Outcome per Action, with the time it happened.
//   - Wait act.After before a Retry, a Refresh or a Pick (with a timer
//     that the session's context can cancel); the machine never waits
//     itself.
//   - Pick with Excluded (ExcludeFunc) as the request's Exclude, and replace
//     the directory with the one a full/draining refusal carries.
//   - Say with Dropped whether a directory is held (Held), and pick from
//     it until a Refresh brings a fresh one; say with Fetched which node
//     answered the hello (Node), when known.
//   - Pass the deadline (for instance from ctx.Deadline) with Begin and
//     with Dropped; a zero deadline retries until the caller stops. A
//     caller that stops a flow itself (its context ended in the middle of
//     a step) can say what was tried with Tried.
//
// # Concurrency
//
// A Machine is not safe for concurrent use: the goroutine that drives the
// session owns it and calls Next and Excluded (Excluded is called from
// pick.Policy.Pick on that same goroutine). Next never blocks. The Rand may
// be shared with other machines if it is safe for concurrent use, as
// pick.NewRand is.
package failover
