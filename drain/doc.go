// Package drain decides when a node asks its sessions to move elsewhere
// (the "move" message, docs/protocol.md): Plan paces a drain to empty,
// so that the moves are spread over the window the operator gave
// (switchboard drain --within, or serve's --drain-grace on SIGTERM)
// instead of arriving on the other nodes all at once; Asks says which
// sessions may be asked (again); Rebalancer decides how many sessions a
// node more loaded than the others sheds, with hysteresis and a rate
// limit (serve --rebalance-threshold).
//
// It is a pure core: no clock, no goroutine, no sockets. The node's
// drain loop (internal/node/drain.go) makes a Plan when the drain starts,
// calls Due with the time on each tick, asks that many more sessions to
// move, and closes whoever is left once Expired says the deadline passed.
// When a stop (SIGTERM) joins a drain under way whose deadline comes
// after the stop's grace, the loop replaces its Plan with Hasten's.
//
// Each drain keeps an Asks of its own, so that a drain cancelled and
// started again asks every session afresh. On each tick the loop also
// asks again the sessions Askable allows: still attached ReaskAfter
// after their last ask (their move failed), while another node is up,
// at most MaxAsks times.
//
// Rebalancer is driven the same way: Step with the time, the node's load
// (sessions and capacity), its sessions asked and on their way, and the
// loads of the other up nodes, every check (internal/node/rebalance.go);
// it returns how many to ask. The rebalance loop keeps an Asks too, and
// counts as on their way only the sessions whose ask is Pending.
//
// The drain's schedule: the asks are spread evenly over the window less a tail,
// Tail(within) = min(within/4, 5 s), kept for the last movers to attach
// elsewhere and for clients that ignore the ask (they are closed with
// "shutdown" at the deadline). Asks go out in batches, one every Tick.
package drain
