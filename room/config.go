package room

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/rtt"
)

// Sink receives the lines a Room sends to this node's sessions. The node
// implements it; the Room calls it from the goroutine that owns the Room,
// during Apply, so Deliver must not block (queue the line and return).
// Every line is one wire message, newline included; one line may be
// handed to many sessions and must not be modified.
type Sink interface {
	// Deliver hands line to the local session under key.
	Deliver(key string, line []byte)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(key string, line []byte)

// Deliver calls fn(key, line).
func (fn SinkFunc) Deliver(key string, line []byte) { fn(key, line) }

// discard is the Sink of a Room given none: it drops every line.
type discard struct{}

func (discard) Deliver(string, []byte) {}

// Config says how a Room behaves on one node. DefaultConfig gives the
// defaults; New fills every zero field with its default.
type Config struct {
	// Self is this node's ID. Required.
	Self string
	// Incarnation is this node's incarnation: a member of Self with
	// another one is a session of an earlier run, and stale.
	Incarnation uint64
	// MaxUsers is how many distinct users the room admits (default 100).
	// A join of a new user beyond it is refused on every node alike.
	MaxUsers int
	// MaxUserSessions is how many sessions of one user the room admits at
	// once (default 8): a join beyond it is refused on every node alike.
	// With MaxUsers it bounds the room's members, and so its snapshot and
	// the state every joiner gets; without it one user could fill both
	// by joining from thousands of connections.
	MaxUserSessions int
	// MaxSenders is how many senders the room remembers before it forgets
	// departed ones (default 1000, and never less than twice MaxUsers, so
	// that departed senders make at least half of them and one round of
	// forgetting frees a quarter): those whose current line is empty
	// first, then those who left mid-line, whose line is completed. A
	// forgotten sender counts from seq 1 again; every active local
	// session gets the room's state when senders are forgotten.
	MaxSenders int
	// MaxLines is how many completed lines the room keeps (default
	// rtt.DefaultMaxLines, 100).
	MaxLines int
	// Grace is how long a foreign member's node must be seen down or
	// missing, with a majority of the cluster up all along, before the
	// member counts as stale (default 3 s).
	Grace time.Duration
	// MaxGap is the longest time between two calls of Reconcile that still
	// counts as watching the cluster without a break (default Grace/2). A
	// longer gap, such as a process paused by SIGSTOP, throws away the
	// evidence gathered before it.
	MaxGap time.Duration
	// OwnGrace is how long a member of this node that has no local
	// session (or belongs to an earlier incarnation) stays before this
	// node removes it (default 1 s): its own leave is usually on its way.
	OwnGrace time.Duration
	// Retry is the least time between two cleanups Reconcile asks for,
	// and between two re-joins of one local session (default 2 s).
	Retry time.Duration
	// LeaderWait bounds how long Reconcile waits for the room's stream
	// to have a live leader (StoreLeader) before a foreign member's grace
	// counts from its node's death alone (default 20 s: more than
	// nats-server's longest election timeout, 9 s, with room for a second
	// election). A view of the leader that stays stale (a replica whose
	// Raft group stopped, an election not heard of) must not keep a dead
	// node's members in the room for good.
	LeaderWait time.Duration
	// Sink receives the room's deliveries to local sessions (default: a
	// sink that drops them).
	Sink Sink
}

// DefaultConfig returns the defaults for the node self, incarnation inc.
func DefaultConfig(self string, inc uint64) Config {
	return Config{
		Self:            self,
		Incarnation:     inc,
		MaxUsers:        100,
		MaxUserSessions: 8,
		MaxSenders:      1000,
		MaxLines:        rtt.DefaultMaxLines,
		Grace:           3 * time.Second,
		MaxGap:          1500 * time.Millisecond,
		OwnGrace:        time.Second,
		Retry:           2 * time.Second,
		LeaderWait:      20 * time.Second,
		Sink:            discard{},
	}
}

// ErrConfig is wrapped by the errors New and Restore return for a Config
// they cannot use.
var ErrConfig = errors.New("room: invalid config")

// validate fills c's zero fields with the defaults and rejects what no
// default can mend.
func (c *Config) validate() error {
	if c.Self == "" {
		return fmt.Errorf("%w: no node ID (Self)", ErrConfig)
	}
	if c.MaxUsers < 0 || c.MaxUserSessions < 0 || c.MaxSenders < 0 || c.MaxLines < 0 || c.Grace < 0 || c.MaxGap < 0 || c.OwnGrace < 0 || c.Retry < 0 || c.LeaderWait < 0 {
		return fmt.Errorf("%w: negative limit or duration", ErrConfig)
	}
	d := DefaultConfig(c.Self, c.Incarnation)
	if c.Grace == 0 {
		c.Grace = d.Grace
	}
	if c.MaxGap == 0 {
		c.MaxGap = c.Grace / 2
	}
	fill(&c.MaxUsers, d.MaxUsers)
	fill(&c.MaxUserSessions, d.MaxUserSessions)
	fill(&c.MaxSenders, d.MaxSenders)
	fill(&c.MaxLines, d.MaxLines)
	// Fewer would leave too few departed senders to forget: the room
	// would look for them at every record, and send its state each time.
	c.MaxSenders = max(c.MaxSenders, 2*c.MaxUsers)
	fill(&c.OwnGrace, d.OwnGrace)
	fill(&c.Retry, d.Retry)
	fill(&c.LeaderWait, d.LeaderWait)
	if c.Sink == nil {
		c.Sink = d.Sink
	}
	return nil
}

func fill[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
