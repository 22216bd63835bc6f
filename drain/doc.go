// Package drain decides when a node asks its sessions to move elsewhere
// (the "move" message, docs/protocol.md): Plan paces a drain to empty,
// so that the moves are spread over the window the operator gave
// (switchboard drain --within, or serve's --drain-grace on SIGTERM)
// instead of arriving on the other nodes all at once; Rebalancer decides
// how many sessions a node holding more than its share sheds, with
// hysteresis and a rate limit (serve --rebalance-threshold).
//
// It is a pure core: no clock, no goroutine, no sockets. The node's
// drain loop (internal/node/drain.go) makes a Plan when the drain starts,
// calls Due with the time on each tick, asks that many more sessions to
// move, and closes whoever is left once Expired says the deadline passed.
//
// Rebalancer is driven the same way: Step with the time, the node's
// sessions not yet asked and the loads of the up nodes, every check
// (internal/node/rebalance.go); it returns how many to ask.
//
// The drain's schedule: the asks are spread evenly over the window less a tail,
// Tail(within) = min(within/4, 5 s), kept for the last movers to attach
// elsewhere and for clients that ignore the ask (they are closed with
// "shutdown" at the deadline). Asks go out in batches, one every Tick.
package drain
