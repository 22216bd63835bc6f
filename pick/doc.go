// Package pick chooses the server a client attaches to, from the directory
// the client was given. It is pure: it reads no clock, opens no connection
// and draws randomness only from the Rand it is given.
//
// # Walk-through
//
// A client says hello at the common address and gets a directory, a
// []directory.Node. It then asks a Policy for one node:
//
//	p := pick.Default(pick.NewRand(seed)) // or pick.ByName(flagValue, nil)
//	res, err := p.Pick(nodes, pick.Request{
//		Group:   "eu/a",                     // the client's region/zone
//		Exclude: machine.ExcludeFunc(now),   // nodes that failed lately (package failover)
//		Age:     now.Sub(fetchedAt),         // how long the client has held nodes
//	})
//	if errors.Is(err, pick.ErrNoNode) {
//		// nothing may be picked: fetch a fresh directory (after a backoff)
//	}
//	attach(res.Node.Addr) // res.Reason says why, for the log
//
// A policy is built from two kinds of parts, put together by Chain:
//
//   - Filters narrow the candidates and add a note to the Reason.
//     Available keeps the nodes that are up with users below capacity and
//     not excluded by the request (and leaves out an entry with negative
//     numbers or without an ID, which no node sends). Affinity keeps the
//     client's zone, or failing that its region, or failing that every
//     node.
//   - A chooser (any Policy) picks one of the nodes left: Random,
//     LeastUsers, P2C or Balanced. Choosers filter nothing.
//
// Default is Chain(Balanced{Rand: r}, Available, Affinity). ByName maps the
// CLI names ("default", "p2c", "least-users", "random", "group") to
// policies; all of them start with Available. A user-written policy is a
// PolicyFunc, or a Chain with a Filter of one's own.
//
// # The balanced chooser
//
// Loads are compared as users/capacity. The default chooser must handle a
// node that joins an even cluster: three nodes hold 1000 users each, a
// fourth joins empty, 1000 sessions arrive. Random ends with max/mean about
// 1.25 and P2C about 1.17, because the new node is in P2C's sampled pair
// only half the time. Sending every client to the least loaded node fills
// the new node (max/mean about 1.00), but when the numbers are old every
// client sees the same "emptiest" node and they all land there.
//
// Balanced therefore looks at how old its numbers are. It first leaves
// out the candidates overdue by more than half of FreshAge (AgeMS less
// the node's heartbeat interval, HeartbeatMS: within it silence means no
// change): a node that died shows its last count until it is marked
// down, and that count soon looks least loaded. When they are more than
// half of the candidates the age tells of the directory rather than of
// its nodes (a client's copy kept up to date by pushes of changes, whose
// entries age until a push carries them), and all are kept. Its numbers
// are as old as the largest overdue age among the nodes left plus
// Request.Age. Up to FreshAge (1 s) it compares
// Sample (8) candidates, the connected node and others drawn at random
// (all of them in a smaller directory), and picks at random among those
// whose load is within Slack (1%) of the least load of the comparison, or
// within one user of it; the slack spreads concurrent clients over nodes
// that are practically equal instead of piling onto the one that is a
// user or two lighter, and the sample bounds any node's share of the
// picks to about Sample/len(nodes), so that the clients of one moment, all
// reading the same numbers, cannot herd onto the node that looks emptiest
// (package sim: with the least loaded of 1,000 nodes, 350 clients of one
// 35 ms loop doubled a node). A node just joined is still the lightest of
// nearly every comparison it is in, so it fills several times faster than
// under P2C. Past FreshAge it uses P2C, which never sends more
// than twice the fair share to the node that looks emptiest. AgeMS of a
// healthy node stays below its heartbeat interval (2 s in a cluster of
// 100; directory.HeartbeatFor), and a node receiving sessions publishes
// its new count within milliseconds, so a directory straight from a
// server is fresh; a client that reuses a directory should
// pass how long it held it in Request.Age. The scale-out simulation in
// sim_test.go shows both sides: fresh, Default ends within 1.05 of the mean
// while P2C ends near 1.17; stale, Default behaves as P2C where
// least-users herds.
//
// Among the nodes near the least load Balanced prefers the node that
// answered the hello (Request.Self), saving the client a second
// connection. When it compares every candidate (no more than Sample),
// above the slack it keeps that node with a probability that falls to
// zero over Margin (2% of the mean load), so that clients that arrive
// together, reading the same numbers, move only as many as the excess
// calls for instead of all leaving for the same node; a sample spreads
// them by itself. When that node is not a candidate (Affinity kept a
// zone of three nodes, say, and the common address led to a node of
// another), every candidate gets that chance: each is picked with a
// weight of 1 within the slack, falling to 0 over the margin, so that
// the clients of one moment spread over the zone's nearly equal nodes
// instead of all taking the one a few users lighter.
//
// # Tracker
//
// One process that makes many picks from one directory (a bench tool, a
// gateway holding many sessions) would herd onto the emptiest node as
// surely as many clients with a stale directory do, because its own picks
// are not in the directory yet. A shared Tracker counts them: Tracker.Pick
// adds the picks still pending for each node to its users, runs the policy
// and records the new pick. A pending pick ends when a later directory shows
// that node's users grow, when it is TTL old, or when Release withdraws it
// after a failed attach. Directories from different nodes are not equally
// fresh (a node counts its own users at once and hears the others' later),
// so the Tracker keeps each node's highest recent count and shows it,
// rather than a lower one, for TrackerSettle (1 s). An entry older than
// that (Request.Age plus how far past its heartbeat the entry is)
// teaches it nothing: in a directory kept up to date by pushes of
// changes, the entries no push carried show the users of the last whole
// view.
//
// # Caller's duties
//
//   - Pass the directory as received; Pick never modifies it and may be
//     called on the same slice from many goroutines.
//   - On an error wrapping ErrNoNode, fetch a fresh directory; do not spin
//     on the same one.
//   - Set Request.Age when picking from a directory fetched a while ago.
//   - With a Tracker, call Release for a pick whose attach failed, and
//     keep its TTL longer than the time one directory is used.
//
// # Concurrency
//
// Policies, filters and choosers are immutable values: Pick is safe for
// concurrent use when the Rand is, and never blocks. NewRand and
// DefaultRand are safe for concurrent use; a *rand.Rand is not. Request.Exclude
// is called on the caller's goroutine during Pick. A Tracker is safe for
// concurrent use; Tracker.Pick holds its mutex while the policy runs.
package pick
