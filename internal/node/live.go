package node

import (
	"errors"
	"fmt"
)

// Limits are the settings a running node takes without a restart (serve
// applies them from its config file on SIGHUP): Config's fields of the
// same names, zero meaning the default as there.
type Limits struct {
	// Capacity is the most sessions the node admits; past it attaches
	// get full, and the directory says so.
	Capacity int
	// MaxConns is the most client connections open at once.
	MaxConns int
	// MaxConnsPerIP is the most client connections from one address.
	MaxConnsPerIP int
}

// ErrNegativeLimit is returned by SetLimits for a limit below zero.
var ErrNegativeLimit = errors.New("node: a limit below zero")

// Limits returns the limits in force, defaults filled.
func (n *Node) Limits() Limits {
	return Limits{Capacity: int(n.capacity.Load()), MaxConns: int(n.maxConns.Load()), MaxConnsPerIP: int(n.maxConnsPerIP.Load())}
}

// SetLimits changes the limits in force. Sessions and connections that
// are over a lowered limit stay: only new ones are refused. A changed
// capacity reaches the peers' and the clients' directories with the
// node's next entry (at once when its status changes, full or not).
func (n *Node) SetLimits(l Limits) error {
	if l.Capacity < 0 || l.MaxConns < 0 || l.MaxConnsPerIP < 0 {
		return fmt.Errorf("%w: capacity %d, max-conns %d, max-conns-per-ip %d", ErrNegativeLimit, l.Capacity, l.MaxConns, l.MaxConnsPerIP)
	}
	d := DefaultConfig()
	fill(&l.Capacity, d.Capacity)
	fill(&l.MaxConns, d.MaxConns)
	fill(&l.MaxConnsPerIP, d.MaxConnsPerIP)
	old := n.Limits()
	if l == old {
		return nil
	}
	n.storeLimits(l)
	n.log.Info("limits changed", "capacity", l.Capacity, "max_conns", l.MaxConns, "max_conns_per_ip", l.MaxConnsPerIP,
		"was_capacity", old.Capacity, "was_max_conns", old.MaxConns, "was_max_conns_per_ip", old.MaxConnsPerIP)
	if l.MaxConns != old.MaxConns {
		n.logDescriptorHeadroom()
	}
	n.notifyChange()
	return nil
}

// storeLimits puts l in force.
func (n *Node) storeLimits(l Limits) {
	n.capacity.Store(int64(l.Capacity))
	n.maxConns.Store(int64(l.MaxConns))
	n.maxConnsPerIP.Store(int64(l.MaxConnsPerIP))
}
