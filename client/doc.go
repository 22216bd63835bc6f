// Package client is Switchboard's Go client: it reaches a service's common
// address, gets the directory of every node, picks a node itself, attaches
// to it, and keeps the session alive across failures.
//
//	s, err := client.Dial(ctx, "dns:chat.example.com",
//		client.WithUser("alice"),
//		client.WithGroup("eu/a"),      // prefer this zone, then region
//	)
//	defer s.Close()
//	fmt.Println(s.Node().ID, s.Reason()) // where, and why
//	for e := range s.Events() { ... }   // drops, failovers, room messages
//
// # Targets
//
// HOST:PORT (a name resolving to several IPs is tried in random order), a
// comma list of HOST:PORT, dns:SERVICE (SRV, then A/AAAA, through the
// system resolver) and dns://RESOLVER/SERVICE (the same through a given DNS
// server, such as a node's own responder).
//
// # The flow, and failures
//
// Dial says hello at the common address and gets the directory; the
// policy (pick.Default unless WithPolicy) picks a node; when the pick is
// the node that answered, the session attaches on that same connection,
// else it connects to the pick, says hello and attaches. The order after a
// failure is the failover package's: a pick that refuses or times out is
// retried a few times with short jittered backoff, then the common address
// is asked again for a fresh directory, the failed node excluded for a
// cool-down, and another node picked. A full or draining node's refusal
// carries a fresh directory, so the client picks again at once. Dial gives
// up only at its context's deadline, with an error listing what it tried.
//
// After Dial the session has one goroutine that reads its connection.
// When the connection drops it reattaches the same way (after a short
// random delay, so the sessions of a dead node do not return in lockstep),
// rejoins its rooms and sends again the text the node had not
// acknowledged. Nodes push a fresh directory when membership changes, so
// a failover picks from a current list.
//
// # Caller's duties
//
// Read Events: while its buffer is full the session stops reading from
// its node. Call Close when done. Every method is safe for concurrent use;
// none blocks for long except Dial and Close.
package client
