package drain

import (
	"math"
	"time"
)

// RebalanceConfig says when a node sheds sessions to even out the load.
// The zero value is off.
type RebalanceConfig struct {
	// Threshold is how far above the mean of the up nodes' sessions a
	// node must be to shed: users > mean × (1+Threshold). 0 turns
	// rebalancing off.
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

// Rebalancer decides, check after check, how many of its sessions a node
// asks to move. It sheds only down to the mean, never below, so a node
// that sheds never becomes one that receives; a node at or below the
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

// Step is one check at now. self is the node's sessions not yet asked to
// move, loads the sessions of every node up (self's own count included).
// It returns how many sessions to ask now.
func (r *Rebalancer) Step(now time.Time, self int, loads []int) int {
	if !r.last.IsZero() {
		r.budget = min(r.budget+r.cfg.Rate*now.Sub(r.last).Seconds(), max(r.cfg.Rate, 1))
	}
	r.last = now
	if !r.cfg.On() || len(loads) < 2 {
		r.since = time.Time{}
		return 0
	}
	total := 0
	for _, l := range loads {
		total += l
	}
	mean := float64(total) / float64(len(loads))
	if float64(self) <= mean*(1+r.cfg.Threshold) {
		r.since = time.Time{}
		return 0
	}
	if r.since.IsZero() {
		r.since = now
	}
	if now.Sub(r.since) < r.cfg.Hold {
		return 0
	}
	surplus := self - int(math.Ceil(mean))
	ask := min(surplus, int(r.budget))
	if ask <= 0 {
		return 0
	}
	r.budget -= float64(ask)
	return ask
}
