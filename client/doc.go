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
// Events delivers lifecycle events (Disconnected, Reattached, Moved,
// DirectoryPushed) and the node's messages (Received) in one order;
// Event.Room gives a room's messages as a typed RoomEvent (text,
// presence, full state, ack, error).
//
// # Targets
//
// HOST:PORT (a name resolving to several IPs is tried in random order), a
// comma list of HOST:PORT, dns:SERVICE (SRV, then A/AAAA) and
// dns://RESOLVER/SERVICE (the same asking a given DNS server first, such
// as a node's own responder). With WithResolvers every name is looked up
// through the DNS servers given, in turn until one answers: the service,
// the SRV targets it lists (when a caching resolver leaves out their
// addresses) and the HOST of HOST:PORT; no name goes to the system
// resolver. Without, the system resolver is asked.
//
// # The flow, and failures
//
// Dial says hello at the common address and gets the directory; the
// policy (pick.Default unless WithPolicy) picks a node; when the pick is
// the node that answered, the session attaches on that same connection,
// else it connects to the pick and sends hello and attach together (one
// round trip; the node answers them in order; with WithServiceName, an
// attach that carries a token waits for the directory). A directory that
// names another service than the session's (WithServiceName) counts as a
// failed hello (ErrWrongService): the next address is asked, and nothing
// it lists is attached to. A token
// source (WithTokenFunc) is asked before the hello, with no connection
// open, so that its wait holds no connection on a node. The order after a
// failure is the failover package's: a pick that refuses or times out is
// retried a few times with short jittered backoff, then the common address
// is asked again for a fresh directory, the failed node excluded for a
// cool-down (5 s), and another node picked. A node that dropped the
// session and then answers that hello (it restarted) may be picked again
// at once. A full or draining node's refusal
// carries a fresh directory, so the client picks again at once. Dial gives
// up only at its context's deadline, with an error listing what it tried.
//
// After Dial the session has one goroutine that reads its connection and
// one that writes to it: Join, Leave and SendText queue their message and
// return, and never wait for the network. When the connection drops the
// session reattaches (after a short random delay, so the sessions of a
// dead node do not return in lockstep), rejoins its rooms and sends again
// the text the node had not acknowledged. It reattaches from the
// directory it holds: nodes push a fresh one when membership or a status
// changes, so the session picks from it at once, leaving out the node it
// lost, and attaches to its pick without asking the common address
// first. Only when that directory's candidates fail (refused, timed out,
// full or draining, or none left) does it ask the common address, and go
// on in the order above.
//
// A session never strands while a node of its last directory is up: when
// the common address does not answer (its node is the one that died, or
// DNS is down), every node of that directory can answer the hello
// instead, and is asked in turn: those listed down last, since a node cut
// off in a minority lists its healthy peers down before it steps aside.
//
// A node that vanishes without closing the connection (a paused process,
// a partition) is noticed by the heartbeat (WithHeartbeat): a ping after
// 500 ms of silence, a second connection pinging the node after 1 s, and
// the drop after 1.5 s unless that second connection got its pong: then
// the node is busy (this session's line waits behind a slow request), not
// gone, and the session stays, until it has had no message for
// Heartbeat.MaxBusy (a minute by default; a drop comes at the first
// verdict after it): a line stuck longer is not a slow request. On
// Linux the session's connection also carries a TCP_USER_TIMEOUT of 10
// heartbeat Timeouts (15 s; at most MaxBusy): a flow lost on the way (a
// NAT that forgot it, the client's address changed), which second
// connections pass, is ended by the kernel once the session's pings go
// unacknowledged that long, rather than kept as busy until MaxBusy. A
// busy node's kernel acknowledges them; only one that leaves the line
// unread until its receive buffer is full and its window stays closed
// that long is left as gone.
//
// # Waiting for the service
//
// Join and SendText return at once; the room's state, the acks and any
// refusal arrive on Events. JoinWait and SendTextWait do the same and
// then wait, with a context, for the node's answer: the room's state, or
// the seq the chunk was stored under (durably: it survives the death of
// a node). They keep waiting across a failover and across the refusals
// the session mends itself (unavailable, rate), and fail with a refusal
// that it cannot mend (a *ServerError), ErrLeft, the context's error or
// the session's. Their answers are handled in order with the events, so
// call them from a goroutine other than the one reading Events. Text
// typed faster than the limits the node says with attached waits in the
// session and goes out as they allow, rather than being refused; after a
// rate refusal all the same (a node older than those limits), the room's
// text goes out paced, a round a second of about what the node took,
// until all of it is acknowledged (pace.go).
//
// # State and the end of a session
//
// State says whether the session is attached, reconnecting, closed or
// failed. By default a session tries to reattach until Close; with
// WithReconnectTimeout it gives up after that long, or at once on a
// refusal no retry mends (unauthorized on reattach). It then ends: its
// last event is a Disconnected whose Err matches ErrGaveUp, Events
// closes, Err returns that error, and Join, Leave and SendText return it
// (it matches ErrClosed too). After Close they return ErrClosed. A Dial
// that gives up returns an error matching ErrGaveUp too.
//
// # Caller's duties
//
// Read Events. Its buffer holds 256 events; while it is full the session
// stops reading from its node, which is the policy for a slow reader:
// nothing is dropped, the node queues for the session instead, and the
// heartbeat does not count that time as silence. The session waits the
// same way for room for its own events: after a drop it reattaches only
// once the Disconnected event is in the buffer, and reads its new node
// only once the Reattached event is; text sent meanwhile is kept and
// sent when attached, as during any failover. A node ends a session
// whose unread output passes its MaxQueue (1 MiB by default) while the
// connection takes nothing for a second, or 8 times that at all, with
// the error limit "client reads too slowly"; the session then reattaches,
// joins its rooms again and receives their full state, as after any
// drop. Call Close when done. Every method is safe for concurrent use;
// none blocks for long except Dial and Close.
package client
