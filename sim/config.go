package sim

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/pick"
)

// Policies returns the names Run accepts: every name of pick.Names, then
// the baseline pick.DNSOnly (attach to whichever node the common address
// led to, as a plain round-robin front does).
func Policies() []string {
	return append(pick.Names(), pick.DNSOnly)
}

// NodeEvent changes the cluster at a moment of simulated time.
type NodeEvent struct {
	// At is when, from the start of the run.
	At time.Duration
	// Kill is how many nodes die at once (kill -9): the live nodes with the
	// lowest numbers, so every policy loses the same nodes. Their sessions
	// drop and re-attach: a re-attach storm.
	Kill int
	// Join is how many new, empty nodes start (scale-out).
	Join int
}

// Config describes one simulated run. Zero fields take the values of
// DefaultConfig (so a Config with only Policy set is the default
// scenario). Where zero would be a useful value but means the default, a
// negative one asks for it: Sessions -1 is no Poisson arrivals,
// Propagation -1 no delay.
type Config struct {
	// Policy is a name from Policies. Default "default".
	Policy string
	// Seed seeds every random choice: the same Config gives the same
	// Result. Default 1. Arrivals, lifetimes and client groups come from
	// their own stream, so every policy sees the same sessions.
	Seed uint64

	// Nodes is how many nodes are up at the start. Default 1000.
	Nodes int
	// Capacity is the most sessions one node admits; a full node refuses
	// an attach. Default 1000.
	Capacity int
	// Zones is how many groups nodes and clients are spread over: node i
	// is in zone i mod Zones, each client in a uniformly random one. Zones
	// are named r0/a, r0/b, r1/a, r1/b, ... (two per region). Default 1.
	Zones int

	// Sessions is how many sessions arrive as a Poisson process of rate
	// Rate from time 0 (negative: none). Default 1,000,000.
	Sessions int
	// Rate is the mean arrival rate of those sessions, per second.
	// Default 10,000.
	Rate float64
	// Storm is how many more sessions arrive all at once, at StormAt.
	// Default none.
	Storm int
	// StormAt is when the storm arrives. Default 0.
	StormAt time.Duration
	// Lifetime is the mean lifetime of a session, from its arrival; it is
	// exponentially distributed unless FixedLifetime. Default 60 s.
	Lifetime time.Duration
	// FixedLifetime makes every session live exactly Lifetime.
	FixedLifetime bool

	// Staleness is how old the directory a client gets from the common
	// address is: it shows the users as they were Staleness+Propagation
	// ago. Default 0 (negative: 0).
	Staleness time.Duration
	// Propagation is the delay for a node's change to reach the other
	// nodes' directories; it is also every entry's AgeMS. A full node's
	// refusal carries a directory this old. Default 5 ms (negative: 0).
	Propagation time.Duration
	// Tick is the interval between the snapshots of users per node that
	// views are built from; a view is the latest snapshot at or before
	// now-Staleness-Propagation, so clients within one Tick see the same
	// numbers, as concurrent clients do. Default 10 ms.
	Tick time.Duration
	// Detect is how long after a node dies its peers mark it down; until
	// then directories show it up with its last users. Default 1 s.
	Detect time.Duration
	// RTT is the round trip of one client step: fetching a directory, or
	// one dial and attach (including a failed one). Default 20 ms.
	RTT time.Duration
	// ViewSize, when positive, makes every directory a client picks from
	// list only that many of the nodes a policy may pick: the node whose
	// answer it is, then others drawn uniformly at random. It trades
	// fidelity for speed (a pick costs O(ViewSize) instead of O(nodes)):
	// random, p2c, dns-only and a stale default pick with exactly the same
	// probabilities as from the whole directory, and group too with one
	// zone (the stale default as long as no view is more than half nodes
	// silent for half a second, which pick.Balanced then keeps);
	// least-users and a fresh default then pick the least loaded of a
	// sample, which herds less. Default 0: the whole directory.
	ViewSize int
	// SampledViews makes the directories of ViewSize nodes the views a
	// node draws for a hello (directory.Sample: the client's zone and
	// region first, then the rest, each weighted by spare capacity, a
	// quarter kept for elsewhere) rather than uniform draws with the
	// answering node in. It models what clients of a large cluster are
	// sent. Default false.
	SampledViews bool
	// NoPushes models clients that hold no directory when their node
	// dies: a dropped session waits, then asks the common address for a
	// directory, as the model did before pushes. By default (false) a
	// session holds the directory its node sent when it attached, kept
	// current by the pushes of changes (joins, nodes marked down), and
	// picks from it first after a drop, as the Go client does (package
	// client; failover.Outcome.Held). Either way Result.Pushes counts the
	// bytes the nodes push.
	NoPushes bool
	// Failover is the clients' retry configuration (package failover);
	// zero fields take failover.DefaultConfig.
	Failover failover.Config

	// Events are the node deaths and joins. nil means the default: 10
	// nodes die at 40 s and 100 join at 60 s; use an empty, non-nil slice
	// for none.
	Events []NodeEvent
	// Duration is how long the run lasts. Default: the expected time of
	// the last arrival (Sessions/Rate) rounded up to the second, plus 1 s,
	// and at least 1 s past the storm and the last event.
	Duration time.Duration
	// Warmup is how long from the start the worst max/mean over time
	// ignores (the first sessions on nearly empty nodes make any max/mean
	// large). Default Duration/5.
	Warmup time.Duration
	// Sample is the interval of Result.Series. Default 1 s.
	Sample time.Duration

	// Progress, when set, is called from Run's goroutine every 65,536
	// events with the simulated time reached and the run's Duration, so
	// that a caller can show how far a long run is. It does not change
	// the Result; it should return quickly.
	Progress func(reached, total time.Duration)
}

// DefaultConfig returns the default scenario: 1000 nodes of capacity 1000
// in one zone; a million sessions arriving at 10,000 a second for 100 s,
// living 60 s on average; 10 nodes killed at 40 s and 100 nodes joining at
// 60 s; fresh directories (staleness 0, propagation 5 ms) and the default
// policy.
func DefaultConfig() Config {
	return Config{
		Policy:      "default",
		Seed:        1,
		Nodes:       1000,
		Capacity:    1000,
		Zones:       1,
		Sessions:    1_000_000,
		Rate:        10_000,
		Lifetime:    60 * time.Second,
		Propagation: 5 * time.Millisecond,
		Tick:        10 * time.Millisecond,
		Detect:      time.Second,
		RTT:         20 * time.Millisecond,
		Events:      []NodeEvent{{At: 40 * time.Second, Kill: 10}, {At: 60 * time.Second, Join: 100}},
		Sample:      time.Second,
	}
}

// validate fills the zero fields from DefaultConfig and rejects nonsense.
func (c Config) validate() (Config, error) {
	d := DefaultConfig()
	if c.Policy == "" {
		c.Policy = d.Policy
	}
	if !slices.Contains(Policies(), c.Policy) {
		return c, fmt.Errorf("sim: unknown policy %q (valid: %v)", c.Policy, Policies())
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	for _, f := range []struct {
		v   *int
		def int
	}{{&c.Nodes, d.Nodes}, {&c.Capacity, d.Capacity}, {&c.Zones, d.Zones}, {&c.Sessions, d.Sessions}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	c.Sessions = max(c.Sessions, 0)
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.Lifetime, d.Lifetime}, {&c.Propagation, d.Propagation}, {&c.Tick, d.Tick},
		{&c.Detect, d.Detect}, {&c.RTT, d.RTT}, {&c.Sample, d.Sample},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	c.Staleness, c.Propagation = max(c.Staleness, 0), max(c.Propagation, 0)
	if c.Events == nil {
		c.Events = d.Events
	}
	c.Events = slices.Clone(c.Events)
	slices.SortStableFunc(c.Events, func(a, b NodeEvent) int { return int(a.At - b.At) })
	switch {
	case c.Nodes < 1 || c.Capacity < 1 || c.Zones < 1:
		return c, fmt.Errorf("sim: need at least one node, capacity and zone (nodes %d, capacity %d, zones %d)", c.Nodes, c.Capacity, c.Zones)
	case c.Zones > 1<<16:
		return c, fmt.Errorf("sim: %d zones is too many", c.Zones)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return c, fmt.Errorf("sim: bad arrival rate %v", c.Rate)
	case c.Storm < 0 || c.StormAt < 0:
		return c, fmt.Errorf("sim: negative storm (%d at %v)", c.Storm, c.StormAt)
	case c.Sessions+c.Storm > math.MaxInt32:
		return c, fmt.Errorf("sim: %d sessions is too many", c.Sessions+c.Storm)
	case c.Lifetime < 0 || c.Tick < 0 || c.Detect < 0 || c.RTT < 0 || c.Sample < 0:
		return c, fmt.Errorf("sim: negative duration in %+v", c)
	case c.ViewSize < 0:
		return c, fmt.Errorf("sim: negative view size %d", c.ViewSize)
	case c.Tick < time.Microsecond:
		return c, fmt.Errorf("sim: tick %v is below a microsecond", c.Tick)
	}
	if err := c.Failover.Validate(); err != nil {
		return c, fmt.Errorf("sim: %w", err)
	}
	joins := 0
	for _, e := range c.Events {
		if e.At < 0 || e.Kill < 0 || e.Join < 0 {
			return c, fmt.Errorf("sim: bad node event %+v", e)
		}
		joins += e.Join
	}
	if c.Nodes+joins > math.MaxInt32/2 {
		return c, fmt.Errorf("sim: %d nodes is too many", c.Nodes+joins)
	}
	if c.Duration == 0 {
		end := c.StormAt
		if c.Sessions > 0 {
			end = max(end, time.Duration(math.Ceil(float64(c.Sessions)/c.Rate))*time.Second)
		}
		if n := len(c.Events); n > 0 {
			end = max(end, c.Events[n-1].At)
		}
		c.Duration = end.Truncate(time.Second) + time.Second
	}
	if c.Duration < 0 {
		return c, fmt.Errorf("sim: negative duration %v", c.Duration)
	}
	if c.Warmup == 0 {
		c.Warmup = c.Duration / 5
	}
	return c, nil
}
