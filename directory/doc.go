// Package directory is the pure core of Switchboard's server directory: the
// list of every node that serves one service, with its status, its users,
// its capacity and its group.
//
// A Node is what clients see. An Entry is a Node plus the (incarnation,
// sequence) pair that orders the updates a node publishes about itself. A
// Table holds the entries one server knows; it is fed updates with Apply and
// time with Tick, and it never reads a clock or touches a socket itself:
//
//	t := directory.NewTable("n1", directory.DefaultTimeouts(200*time.Millisecond))
//	t.Apply(entry, now)  // an update from a peer (or from this node)
//	t.Tick(now)          // marks silent peers down, later forgets them
//	nodes := t.Nodes(now) // a sorted copy for a directory message
//
// WithLimits bounds a table (DefaultLimits holds up to 2,000 nodes): an
// update past a bound comes back as a Change of kind Refused, with an error
// saying which bound, and the table stays as it was.
//
// A client is sent a view of the directory, never more than it can read:
// Sample (and View) choose at most ViewRequest.Max nodes whose encoding
// fits ViewRequest.Budget bytes, for a client in ViewRequest.Group: all of
// them when they fit, else the client's group first and the rest weighted
// by spare capacity, drawn from a random source the caller owns.
//
// A Table is not safe for concurrent use: one goroutine owns it (in the
// server, the node's run loop) and hands out the copies Nodes returns.
package directory
