package drain

import (
	"time"
)

// RebalanceConfig says when a node sheds sessions to even out the load.
// The zero value is off.
type RebalanceConfig struct {
	// Threshold is how far above the up nodes' mean load a node's load
	// must be to shed, a load being sessions over capacity (the share
	// clients pick by): users/capacity > mean × (1+Threshold), where the
	// mean is the up nodes' sessions over their capacity, all together.
	// 0 turns rebalancing off.
	Threshold float64
	// Hold is how long the excess must last, checking without a break,
	// before the node sheds (hysteresis: a passing peak, or a directory
	// not yet caught up with arrivals, moves nothing). Default 5 s.
	Hold time.Duration
	// Rate bounds the sessions asked to move, a second. Default 50.
	Rate float64
}

// On reports whether rebalancing is on.
func (c RebalanceConfig) On() bool { return c.Threshold > 0 }

// WithDefaults fills the zero fields of an enabled config.
func (c RebalanceConfig) WithDefaults() RebalanceConfig {
	if c.Hold <= 0 {
		c.Hold = 5 * time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 50
	}
	return c
}

// Load is a node's sessions and capacity, as its directory entry gives
// them.
type Load struct {
	Users    int
	Capacity int
}

// Rebalancer decides, check after check, how many of its sessions a node
// asks to move. It compares loads, sessions over capacity, so that nodes
// of different sizes fill alike, as the clients' picks fill them. It
// sheds only down to the mean load times the node's capacity, never
// below, so a node that sheds never becomes one that receives; and never
// more than the other up nodes have room for. A node at or below the
// threshold never sheds, so the sessions that arrived there stay (the
// caller also never asks a session that moved recently). Not safe for
// concurrent use: the node's rebalance loop owns it.
type Rebalancer struct {
	cfg    RebalanceConfig
	since  time.Time // when the excess began; zero while there is none
	budget float64   // sessions that may be asked now (token bucket)
	last   time.Time
}

// NewRebalancer returns a Rebalancer for cfg (defaults filled in).
func NewRebalancer(cfg RebalanceConfig) *Rebalancer {
	return &Rebalancer{cfg: cfg.WithDefaults()}
}

// Step is one check at now. self is the node's own load, asked how many
// of its sessions were asked to move, are still attached and are on
// their way (their asks not stale), and others the loads of the other up
// nodes. It returns how many more sessions to ask now.
//
// The mean load is every up node's sessions (self's all included) over
// their capacity (the mean of their loads weighted by capacity). The
// node sheds while its sessions not asked exceed mean × (1+Threshold) ×
// its capacity, down to mean × its capacity rounded up, at most Rate a
// second, and at most the others' spare room (capacity less sessions)
// less the sessions already on their way. Others without capacity count
// for nothing.
func (r *Rebalancer) Step(now time.Time, self Load, asked int, others []Load) int {
	if !r.last.IsZero() {
		r.budget = min(r.budget+r.cfg.Rate*now.Sub(r.last).Seconds(), max(r.cfg.Rate, 1))
	}
	r.last = now
	users, capacity, room := self.Users, self.Capacity, 0
	for _, o := range others {
		if o.Capacity > 0 {
			users += o.Users
			capacity += o.Capacity
			room += max(o.Capacity-o.Users, 0)
		}
	}
	if !r.cfg.On() || self.Capacity <= 0 || capacity == self.Capacity {
		r.since = time.Time{}
		return 0
	}
	staying := self.Users - max(asked, 0)
	// staying/self.Capacity > users/capacity × (1+Threshold)
	if float64(staying)*float64(capacity) <= float64(users)*float64(self.Capacity)*(1+r.cfg.Threshold) {
		r.since = time.Time{}
		return 0
	}
	if r.since.IsZero() {
		r.since = now
	}
	if now.Sub(r.since) < r.cfg.Hold {
		return 0
	}
	target := (users*self.Capacity + capacity - 1) / capacity // mean × self's capacity, rounded up
	ask := min(staying-target, int(r.budget), room-max(asked, 0))
	if ask <= 0 {
		return 0
	}
	r.budget -= float64(ask)
	return ask
}
