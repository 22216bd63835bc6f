package failover

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// ErrDeadline is wrapped by the error of a Fail step: the deadline of the
// flow was reached before a session was attached.
var ErrDeadline = errors.New("failover: deadline reached")

// Rand is the source of jitter. It has the method set of pick.Rand, so a
// pick.NewRand value (or a *rand.Rand of math/rand/v2 owned by the caller's
// goroutine) can be passed as is.
type Rand interface {
	// IntN returns a uniform integer in [0, n). n is always > 0.
	IntN(n int) int
}

// Config sets the retries, backoffs and cool-down of a Machine. Zero fields
// take the defaults of DefaultConfig.
type Config struct {
	// Retries is how many times a node that refused the connection is
	// dialled again before the client asks for a fresh directory.
	// Default 2 (three dials in all); a negative value means no retry.
	Retries int
	// TimeoutRetries is how many of those retries a node gets when it
	// timed out (accepted the connection and said nothing in time: a
	// paused or cut-off node, whose kernel still completes handshakes).
	// Each such attempt costs the whole attempt timeout where a refusal
	// costs a round trip, so by default (0) a node that timed out is
	// excluded at once and another is picked; a negative value also means
	// none; at most Retries.
	TimeoutRetries int
	// RetryBase is the wait before the first retry of a node; each further
	// retry doubles it, up to RetryMax. Jitter: each wait is uniform in
	// [w/2, w]. Default 20 ms.
	RetryBase time.Duration
	// RetryMax caps the wait between retries of a node. Default 200 ms.
	RetryMax time.Duration
	// Cooldown is how long a node that failed, refused or dropped a session
	// stays excluded from picks. Default 5 s. Within the flow that met
	// the failure it stays excluded longer if need be: until every other
	// candidate has been tried (see Machine.Excluded).
	Cooldown time.Duration
	// PassBase is the wait after the first failed pass (the common address
	// unreachable, or no node left to pick); each further failed pass in a
	// row doubles it, up to PassMax. Jitter: uniform in [w/2, w].
	// Default 100 ms.
	PassBase time.Duration
	// PassMax caps the wait between passes, and after drops. Default 2 s.
	PassMax time.Duration
	// DropBase bounds the wait after a session drops: the first wait is
	// uniform in [0, DropBase] so that the sessions of a dead node do not
	// come back in lockstep; each further drop of a session that lived less
	// than Stable doubles the bound, up to PassMax. Default 250 ms.
	DropBase time.Duration
	// Stable is how long a session must have been attached for a drop to
	// count as the first one again. Default 10 s.
	Stable time.Duration
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Retries:   2,
		RetryBase: 20 * time.Millisecond,
		RetryMax:  200 * time.Millisecond,
		Cooldown:  5 * time.Second,
		PassBase:  100 * time.Millisecond,
		PassMax:   2 * time.Second,
		DropBase:  250 * time.Millisecond,
		Stable:    10 * time.Second,
	}
}

// withDefaults fills the zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Retries == 0 {
		c.Retries = d.Retries
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	// A base left to its default is kept within a cap the caller set:
	// Config{PassMax: 200 * time.Millisecond} is valid, not an error about
	// a DropBase it never set.
	if c.RetryBase == 0 && c.RetryMax > 0 {
		d.RetryBase = min(d.RetryBase, c.RetryMax)
	}
	if c.PassMax > 0 {
		if c.PassBase == 0 {
			d.PassBase = min(d.PassBase, c.PassMax)
		}
		if c.DropBase == 0 {
			d.DropBase = min(d.DropBase, c.PassMax)
		}
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.RetryBase, &d.RetryBase}, {&c.RetryMax, &d.RetryMax}, {&c.Cooldown, &d.Cooldown},
		{&c.PassBase, &d.PassBase}, {&c.PassMax, &d.PassMax}, {&c.DropBase, &d.DropBase}, {&c.Stable, &d.Stable},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	return c
}

// Validate reports what is wrong with c once its zero fields have taken
// their defaults: a negative duration, or a base above its cap.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"RetryBase", c.RetryBase}, {"RetryMax", c.RetryMax}, {"Cooldown", c.Cooldown},
		{"PassBase", c.PassBase}, {"PassMax", c.PassMax}, {"DropBase", c.DropBase}, {"Stable", c.Stable},
	} {
		if f.v < 0 {
			return fmt.Errorf("failover: %s is negative (%v)", f.name, f.v)
		}
	}
	switch {
	case c.RetryBase > c.RetryMax:
		return fmt.Errorf("failover: RetryBase %v is above RetryMax %v", c.RetryBase, c.RetryMax)
	case c.PassBase > c.PassMax:
		return fmt.Errorf("failover: PassBase %v is above PassMax %v", c.PassBase, c.PassMax)
	case c.DropBase > c.PassMax:
		return fmt.Errorf("failover: DropBase %v is above PassMax %v", c.DropBase, c.PassMax)
	}
	return nil
}

// Kind says what happened, in an Outcome.
type Kind int

// The outcomes the caller reports.
const (
	// Begin starts a connection flow (Deadline applies).
	Begin Kind = iota + 1
	// Fetched: the common address answered with a directory.
	Fetched
	// DirectoryFailed: the common address could not be reached or gave no
	// directory (Err says why).
	DirectoryFailed
	// Picked: the pick chose Node.
	Picked
	// NoCandidate: the pick found no node (pick.ErrNoNode): all are
	// excluded or unavailable.
	NoCandidate
	// DialFailed: Node refused the connection or could not be reached (Err).
	DialFailed
	// Timeout: Node did not answer the dial or the attach in time (Err).
	Timeout
	// Refused: Node is alive and refused the session (Status): full or
	// draining, with a fresh directory the caller now uses, or going or at
	// its connection limit (the caller's directory stays).
	Refused
	// Attached: the session on Node is up.
	Attached
	// Dropped: the session on Node was lost mid-way (Err); this starts a new
	// flow (Deadline applies).
	Dropped
)

var kindNames = map[Kind]string{
	Begin: "begin", Fetched: "fetched", DirectoryFailed: "directory failed", Picked: "picked",
	NoCandidate: "no candidate", DialFailed: "dial failed", Timeout: "timeout", Refused: "refused",
	Attached: "attached", Dropped: "dropped",
}

// String returns the kind's name, as used in transcripts ("dial failed").
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Outcome is what the caller reports to Next: what came of the last step.
type Outcome struct {
	// Kind says what happened.
	Kind Kind
	// Node is the node concerned (Picked, DialFailed, Timeout, Refused,
	// Attached, Dropped), or with Fetched the node that answered the
	// hello (the directory's Self), when known.
	Node string
	// Status is, for Refused, directory.Full or directory.Draining, or the
	// node's refusal code (shutdown, too_many_connections). Optional.
	Status directory.Status
	// Err is the cause of a failure, kept for the give-up error. Optional.
	Err error
	// Deadline bounds the flow that Begin or Dropped starts: the machine
	// gives up (Fail) once a step could only start at or after it. Zero
	// means no deadline: try until the caller stops.
	Deadline time.Time
	// Held, with Dropped, says that the caller still holds a directory to
	// pick from (the last one its node sent before the session dropped):
	// the flow then picks from it at once, and asks the common address
	// only once its candidates have failed.
	Held bool
}

// String returns a short description: "refused n2 (full)".
func (o Outcome) String() string {
	s := o.Kind.String()
	if o.Node != "" {
		s += " " + o.Node
	}
	if o.Status != "" {
		s += " (" + string(o.Status) + ")"
	}
	if o.Held {
		s += ", directory held"
	}
	return s
}

// Step says what the caller does next.
type Step int

// The steps Next returns.
const (
	// Refresh: wait After, ask the common address for a fresh directory and
	// report Fetched or DirectoryFailed.
	Refresh Step = iota + 1
	// Pick: wait After (only after a drop), pick from the current
	// directory with Excluded as the request's Exclude, and report Picked
	// or NoCandidate.
	Pick
	// Dial: attach to Node now, and report Attached, DialFailed, Timeout or
	// Refused.
	Dial
	// Retry: wait After, then attach to Node again, and report as for Dial.
	Retry
	// Done: the session is attached; nothing to do until it drops.
	Done
	// Fail: give up; Err says why and what was tried.
	Fail
)

var stepNames = map[Step]string{Refresh: "refresh", Pick: "pick", Dial: "dial", Retry: "retry", Done: "done", Fail: "fail"}

// String returns the step's name ("refresh").
func (s Step) String() string {
	if n, ok := stepNames[s]; ok {
		return n
	}
	return fmt.Sprintf("step(%d)", int(s))
}

// Action is the step Next asks for.
type Action struct {
	// Step is what to do.
	Step Step
	// Node is the node to dial (Dial, Retry).
	Node string
	// After is how long to wait before doing it (Retry, Refresh, and the
	// Pick that follows a drop).
	After time.Duration
	// Err says why the machine gives up (Fail). It wraps ErrDeadline and
	// the last failure's error, if any.
	Err error
}

// String returns a short description: "retry n1 after 20ms".
func (a Action) String() string {
	s := a.Step.String()
	if a.Node != "" {
		s += " " + a.Node
	}
	if a.After > 0 {
		s += " after " + a.After.String()
	}
	if a.Err != nil {
		s += ": " + a.Err.Error()
	}
	return s
}

// Machine is the failover state machine of one client session. See the
// package doc for the order it enforces. A Machine is not safe for
// concurrent use: the goroutine that drives the session owns it.
type Machine struct {
	cfg Config
	r   Rand

	excluded map[string]time.Time // node -> end of its cool-down
	// dropOnly holds the excluded nodes whose cool-down comes from a
	// drop alone: one that answers a hello since is up again (Fetched).
	dropOnly map[string]bool
	// round holds the nodes the current flow excluded since it began or
	// last found nothing to pick (NoCandidate): they stay excluded past
	// their cool-down until then, so that every other candidate is tried
	// first however long the tries take.
	round map[string]bool

	// The current flow.
	deadline time.Time
	started  time.Time
	node     string     // the node being dialled
	fails    int        // its failed dials in a row
	passes   int        // failed passes in a row
	held     bool       // picking from the directory held at the drop, common address not yet asked
	tried    []*attempt // at most maxTried, in the order first tried
	others   *attempt   // the nodes tried beyond maxTried, counted together
	dirFails int
	noCand   int
	lastErr  error
	failed   error // set once the flow gave up

	// Across flows.
	attached   bool
	attachedAt time.Time
	drops      int // drops in a row of sessions shorter than Stable
}

// attempt is what the flow did with one node, for the give-up error.
type attempt struct {
	node                  string
	failed, refused, lost int
	last                  string
}

// New returns a Machine using cfg (zero fields take their defaults) and r
// for jitter; a nil r is an error, as is a cfg that Validate rejects.
func New(cfg Config, r Rand) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errors.New("failover: nil Rand")
	}
	return &Machine{cfg: cfg.withDefaults(), r: r, excluded: make(map[string]time.Time), dropOnly: make(map[string]bool), round: make(map[string]bool)}, nil
}

// Config returns the configuration in use, defaults filled in.
func (m *Machine) Config() Config { return m.cfg }

// Excluded reports whether node id is in its cool-down at now, or was
// excluded earlier in the current flow (it failed, refused or dropped the
// session) and the flow has not run out of candidates since
// (NoCandidate): a flow tries every other node before one that failed,
// even when the tries take longer than the cool-down (zone nodes that
// each time out after 2 s, say), so that the pick falls back to another
// group rather than going round the same nodes for ever. It is meant for
// pick.Request.Exclude (see ExcludeFunc).
func (m *Machine) Excluded(id string, now time.Time) bool {
	if m.round[id] {
		return true
	}
	until, ok := m.excluded[id]
	return ok && now.Before(until)
}

// ExcludeFunc returns Excluded bound to now, the shape of
// pick.Request.Exclude. Call it afresh for each pick.
func (m *Machine) ExcludeFunc(now time.Time) func(id string) bool {
	return func(id string) bool { return m.Excluded(id, now) }
}

// Next takes the outcome of the last step, observed at now, and returns the
// next step. Begin and Dropped start a flow; the other outcomes continue it.
// Once a flow has failed, Next keeps returning the same Fail until Begin or
// Dropped starts a new one.
func (m *Machine) Next(o Outcome, now time.Time) Action {
	m.prune(now)
	switch o.Kind {
	case Begin:
		m.start(o.Deadline, now)
		return m.at(now, Action{Step: Refresh})
	case Dropped:
		if !m.attached || now.Sub(m.attachedAt) < m.cfg.Stable {
			m.drops++
		} else {
			m.drops = 1
		}
		m.attached = false
		m.start(o.Deadline, now)
		m.exclude(o.Node, now)
		if o.Node != "" {
			m.dropOnly[o.Node] = true
			m.record(o.Node, o.Err).lost++
		}
		bound := grow(m.cfg.DropBase, m.cfg.PassMax, m.drops)
		if o.Held {
			// Straight to a pick from the directory the node sent while
			// it lived: no round trip to the common address first.
			m.held = true
			return m.at(now, Action{Step: Pick, After: m.full(bound)})
		}
		return m.at(now, Action{Step: Refresh, After: m.full(bound)})
	case Attached:
		m.attached, m.attachedAt = true, now
		m.node, m.fails, m.passes, m.failed, m.held = "", 0, 0, nil, false
		clear(m.round)
		return Action{Step: Done}
	}
	if m.failed != nil {
		return Action{Step: Fail, Err: m.failed}
	}
	switch o.Kind {
	case Fetched:
		m.held = false
		if m.dropOnly[o.Node] {
			// It dropped the session (it restarted, say) and answers
			// now: up again, so its cool-down ends. One that failed a
			// dial or refused since keeps its own.
			delete(m.excluded, o.Node)
			delete(m.dropOnly, o.Node)
			delete(m.round, o.Node)
		}
		return m.at(now, Action{Step: Pick})
	case Picked:
		m.node, m.fails = o.Node, 0
		return m.at(now, Action{Step: Dial, Node: o.Node})
	case DialFailed, Timeout:
		if o.Node != m.node {
			m.node, m.fails = o.Node, 0
		}
		m.fails++
		m.record(o.Node, o.Err).failed++
		retries := m.cfg.Retries
		if o.Kind == Timeout {
			retries = min(retries, max(m.cfg.TimeoutRetries, 0))
		}
		if m.fails <= retries {
			wait := m.equal(grow(m.cfg.RetryBase, m.cfg.RetryMax, m.fails))
			return m.at(now, Action{Step: Retry, Node: o.Node, After: wait})
		}
		m.exclude(o.Node, now)
		m.node, m.fails = "", 0
		if m.held {
			// The held directory may list another candidate.
			return m.at(now, Action{Step: Pick})
		}
		return m.at(now, Action{Step: Refresh})
	case Refused:
		err := o.Err
		if err == nil {
			err = fmt.Errorf("node is %s", cmp.Or(string(o.Status), "refusing"))
		}
		m.record(o.Node, err).refused++
		m.exclude(o.Node, now)
		m.node, m.fails = "", 0
		return m.at(now, Action{Step: Pick})
	case DirectoryFailed:
		m.dirFails++
		if o.Err != nil {
			m.lastErr = o.Err
		}
		return m.endPass(now)
	case NoCandidate:
		// Every candidate was tried: the nodes whose cool-down has ended
		// may be picked again.
		clear(m.round)
		m.noCand++
		if o.Err != nil {
			m.lastErr = o.Err
		}
		if m.held {
			// The held directory is used up: the common address now, at
			// once (this is not a failed pass).
			m.held = false
			return m.at(now, Action{Step: Refresh})
		}
		return m.endPass(now)
	}
	return Action{Step: Fail, Err: fmt.Errorf("failover: unknown outcome %v", o.Kind)}
}

// start begins a new flow.
func (m *Machine) start(deadline, now time.Time) {
	m.deadline, m.started = deadline, now
	m.node, m.fails, m.passes, m.held = "", 0, 0, false
	m.tried, m.others, m.dirFails, m.noCand, m.lastErr, m.failed = nil, nil, 0, 0, nil, nil
	clear(m.round)
}

// endPass backs off after a failed pass and starts over with Refresh.
func (m *Machine) endPass(now time.Time) Action {
	m.passes++
	wait := m.equal(grow(m.cfg.PassBase, m.cfg.PassMax, m.passes))
	return m.at(now, Action{Step: Refresh, After: wait})
}

// at returns a, or Fail if a could only start at or after the deadline.
func (m *Machine) at(now time.Time, a Action) Action {
	if m.deadline.IsZero() || now.Add(a.After).Before(m.deadline) {
		return a
	}
	m.failed = m.giveUp(now)
	return Action{Step: Fail, Err: m.failed}
}

// exclude starts id's cool-down and keeps it out of the current flow's
// picks until the flow runs out of candidates (round).
func (m *Machine) exclude(id string, now time.Time) {
	if id == "" {
		return
	}
	delete(m.dropOnly, id)
	if len(m.round) >= maxRound {
		// Ever new nodes (a hostile common address): a new round rather
		// than a set that grows without bound.
		clear(m.round)
	}
	m.round[id] = true
	until := now.Add(m.cfg.Cooldown)
	if until.After(m.excluded[id]) {
		m.excluded[id] = until
	}
}

// prune ends the cool-downs that are over. A node that only dropped the
// session and is still out for the round keeps that mark: when it
// answers a hello (Fetched), it is back at once.
func (m *Machine) prune(now time.Time) {
	for id, until := range m.excluded {
		if !now.Before(until) {
			delete(m.excluded, id)
			if !m.round[id] {
				delete(m.dropOnly, id)
			}
		}
	}
}

// maxRound bounds the nodes a flow keeps out until it runs out of
// candidates: twice what a directory holds (directory.DefaultLimits), so
// that only a flow meeting ever new nodes reaches it.
const maxRound = 4000

// maxTried bounds the nodes a flow names one by one (Tried): a flow
// without a deadline can meet ever new nodes (directories that churn, or
// a hostile common address), and its record must not grow with them.
const maxTried = 16

func (m *Machine) record(id string, err error) *attempt {
	if err != nil {
		m.lastErr = err
	}
	var a *attempt
	for _, t := range m.tried {
		if t.node == id {
			a = t
			break
		}
	}
	switch {
	case a != nil:
	case len(m.tried) < maxTried:
		a = &attempt{node: id}
		m.tried = append(m.tried, a)
	default:
		if m.others == nil {
			m.others = &attempt{node: "other nodes"}
		}
		a = m.others
	}
	if err != nil {
		a.last = err.Error()
	}
	return a
}

// giveUp builds the Fail error: what the flow tried, and the last cause.
// Before the deadline (the next try would begin past it) it says how
// early it gives up.
func (m *Machine) giveUp(now time.Time) error {
	msg := m.Tried(now)
	if left := m.deadline.Sub(now); left > 0 {
		msg = fmt.Sprintf("(%v left, too little for the next try) %s", left, msg)
	}
	if m.lastErr != nil {
		return fmt.Errorf("%w %s; last error: %w", ErrDeadline, msg, m.lastErr)
	}
	return fmt.Errorf("%w %s", ErrDeadline, msg)
}

// Tried says what the current flow tried so far, node by node, as the
// Fail error does: "after 2s and 3 failed passes: n2: 3 dials failed
// (last: ...); no node to pick 2 times". A caller that stops the flow
// itself (its context ended between two steps) puts it in its error.
func (m *Machine) Tried(now time.Time) string {
	var parts []string
	all := m.tried
	if m.others != nil {
		all = append(all[:len(all):len(all)], m.others)
	}
	for _, a := range all {
		var what []string
		if a.lost > 0 {
			what = append(what, "session dropped")
		}
		if a.failed > 0 {
			what = append(what, plural(a.failed, "dial failed", "dials failed"))
		}
		if a.refused > 0 {
			what = append(what, plural(a.refused, "refusal", "refusals"))
		}
		s := a.node + ": " + strings.Join(what, ", ")
		if a.last != "" {
			s += " (last: " + a.last + ")"
		}
		parts = append(parts, s)
	}
	if m.dirFails > 0 {
		parts = append(parts, "common address: "+plural(m.dirFails, "fetch failed", "fetches failed"))
	}
	if m.noCand > 0 {
		parts = append(parts, "no node to pick "+plural(m.noCand, "time", "times"))
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing tried")
	}
	return fmt.Sprintf("after %v and %s: %s", now.Sub(m.started).Round(time.Millisecond),
		plural(m.passes, "failed pass", "failed passes"), strings.Join(parts, "; "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// grow returns base doubled k-1 times, capped at limit. It stops
// doubling at the cap, so that a cap near the largest Duration cannot
// make the wait wrap around.
func grow(base, limit time.Duration, k int) time.Duration {
	d := base
	for i := 1; i < k && d < limit; i++ {
		if d > limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// equal returns a wait uniform in [d/2, d].
func (m *Machine) equal(d time.Duration) time.Duration {
	half := d / 2
	return half + m.jitter(d-half)
}

// full returns a wait uniform in [0, d].
func (m *Machine) full(d time.Duration) time.Duration {
	return m.jitter(d)
}

// jitter returns a duration uniform in [0, d], at microsecond resolution.
func (m *Machine) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	us := int(d / time.Microsecond)
	return time.Duration(m.r.IntN(us+1)) * time.Microsecond
}
