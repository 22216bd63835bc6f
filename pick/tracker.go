package pick

import (
	"fmt"
	"sync"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// DefaultTrackerTTL is how long a Tracker counts a pick the directory does
// not show, when NewTracker is given no TTL.
const DefaultTrackerTTL = 5 * time.Second

// Tracker remembers the picks one process made that its directory does not
// show yet, and adds them to the users before a policy compares nodes. A
// process that attaches many sessions from one directory (a bench tool, a
// gateway, a client library holding many sessions) shares one Tracker so
// that its own picks spread out instead of piling onto the node that looked
// emptiest when the directory was fetched.
//
// For each node the Tracker keeps the highest users count the directories
// it saw lately showed, and the times of its pending picks. A pick stays
// pending until
//
//   - a directory shows that node with more users than that count: the
//     increase is taken as the pending picks arriving, oldest first; or
//   - it is TTL old; or
//   - Release withdraws it (the attach failed).
//
// Directories fetched from different nodes are not equally fresh: a node
// counts its own users as they attach, but hears the others' counts a
// moment later. So a count lower than the one kept is taken for an older
// view, and ignored, until TrackerSettle has passed without a higher or
// equal count; only then is the fall believed (users left). Until then
// the Tracker shows the node with the count it kept, plus the pending
// picks: every pick of the process, whichever node's directory it reads,
// sees the same, freshest numbers, and the arrivals in flight on top.
//
// An entry older than TrackerSettle teaches the Tracker nothing: its
// count is older than the one kept, and a session that reattaches from
// the directory its node pushed it would otherwise take a count of long
// ago for news, believe a fall or clear pending picks with it. An
// entry's age is how long the caller has held the directory
// (Request.Age, for Pick) plus how far past its node's heartbeat the
// entry was (AgeMS less HeartbeatMS: within the heartbeat, silence is no
// news). Both count: a session applies pushes of changes to the
// directory it holds, which makes the directory new (Request.Age is the
// time since the last push) while the entries the pushes left alone keep
// the users of the last whole view, their AgeMS grown by the time since.
// Such entries only get the kept counts and the pending picks added. The
// fresh directory a node answers the following hello with should then be
// shown to the Tracker (Observe), so that the counts it keeps stay
// current.
//
// This is a heuristic: arrivals from other processes also raise the count
// and may clear our pending picks early, and departures may hide our
// arrivals until the TTL. Either way the error is bounded by the TTL, which
// should be longer than the time the process keeps using one directory.
//
// A Tracker reads no clock: every method takes now. It is safe for
// concurrent use; its methods never block for long (Pick holds its mutex
// while the policy runs, which serialises the picks of the process and so
// lets each one see the ones before it).
type Tracker struct {
	ttl   time.Duration
	mu    sync.Mutex
	gen   uint64 // counts the directories adjust has seen
	nodes map[string]*tracked
	buf   []directory.Node // reused by Pick for the adjusted copy
}

// TrackerSettle is how long a Tracker keeps a node's highest recent users
// count when directories show it lower, before it believes the fall.
const TrackerSettle = time.Second

type tracked struct {
	seen    int         // the users count kept (see Tracker); -1 if none yet
	seenAt  time.Time   // when a directory last showed seen (or more)
	gen     uint64      // the last directory that showed the node
	pending []time.Time // when each pending pick was made, oldest first
}

// NewTracker returns an empty Tracker whose pending picks expire after ttl
// (DefaultTrackerTTL if ttl <= 0).
func NewTracker(ttl time.Duration) *Tracker {
	if ttl <= 0 {
		ttl = DefaultTrackerTTL
	}
	return &Tracker{ttl: ttl, nodes: make(map[string]*tracked)}
}

// Pick observes nodes, lets p pick from the nodes with the pending picks
// added to their users, records the pick as pending and returns it, with a
// note on the pending picks in the Reason. p must not call back into t nor
// keep the slice it is given after it returns (Pick reuses it).
func (t *Tracker) Pick(p Policy, nodes []directory.Node, req Request, now time.Time) (Result, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	adjusted, added := t.adjust(t.buf, nodes, now, req.Age)
	if added > 0 {
		t.buf = adjusted
	}
	res, err := p.Pick(adjusted, req)
	if err != nil {
		return res, err
	}
	t.add(res.Node.ID, now)
	if added > 0 {
		res.Reason += fmt.Sprintf("; tracker: %d pending picks counted", added)
	}
	return res, nil
}

// Adjust observes nodes, a directory just received (clearing the pending
// picks they now show, and expired ones), and returns them with each
// node's Users raised to the count the Tracker keeps when that is higher,
// and its pending picks added. It returns nodes itself when nothing is
// pending, and a copy otherwise; nodes is never modified. Use it with Add
// when Pick does not fit.
func (t *Tracker) Adjust(nodes []directory.Node, now time.Time) []directory.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	adjusted, _ := t.adjust(nil, nodes, now, 0)
	return adjusted
}

// Observe learns from nodes, a directory just received (a hello's
// answer), as Adjust does, without a pick: the counts it shows and the
// pending picks they take in.
func (t *Tracker) Observe(nodes []directory.Node, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.adjust(nil, nodes, now, 0)
}

// Add records a pick of node id made at now.
func (t *Tracker) Add(id string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.add(id, now)
}

// Release withdraws the newest pending pick of node id, for an attach that
// failed. It does nothing if none is pending.
func (t *Tracker) Release(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.nodes[id]; ok && len(tr.pending) > 0 {
		tr.pending = tr.pending[:len(tr.pending)-1]
	}
}

// Pending returns how many picks of node id are pending at now.
func (t *Tracker) Pending(id string, now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr, ok := t.nodes[id]
	if !ok {
		return 0
	}
	t.expire(tr, now)
	return len(tr.pending)
}

func (t *Tracker) add(id string, now time.Time) {
	tr, ok := t.nodes[id]
	if !ok {
		// Picked before any directory showed the node: we cannot tell
		// which later increase is ours, so only the TTL clears it.
		tr = &tracked{seen: -1}
		t.nodes[id] = tr
	}
	tr.pending = append(tr.pending, now)
}

func (t *Tracker) expire(tr *tracked, now time.Time) {
	n := 0
	for n < len(tr.pending) && now.Sub(tr.pending[n]) >= t.ttl {
		n++
	}
	tr.pending = tr.pending[n:]
}

// adjust is Adjust with t.mu held, for a directory held for age,
// copying into dst's storage when it must copy; it also returns the
// number of pending picks it added. An entry older than TrackerSettle
// (see news) changes nothing the Tracker keeps but the expiry of pending
// picks.
func (t *Tracker) adjust(dst, nodes []directory.Node, now time.Time, age time.Duration) ([]directory.Node, int) {
	var out []directory.Node
	total, marked, learnt := 0, 0, false
	t.gen++
	for i := range nodes {
		n := &nodes[i]
		learn := news(n, age)
		learnt = learnt || learn
		tr, ok := t.nodes[n.ID]
		if !ok {
			if learn {
				t.nodes[n.ID] = &tracked{seen: n.Users, seenAt: now, gen: t.gen}
				marked++
			}
			continue
		}
		if tr.gen != t.gen {
			tr.gen = t.gen
			marked++
		}
		switch {
		case !learn:
		case tr.seen < 0 || n.Users == tr.seen:
			tr.seen, tr.seenAt = n.Users, now
		case n.Users > tr.seen:
			arrived := min(n.Users-tr.seen, len(tr.pending))
			tr.pending = tr.pending[arrived:]
			tr.seen, tr.seenAt = n.Users, now
		case now.Sub(tr.seenAt) >= TrackerSettle:
			// Lower for a while now: users left.
			tr.seen, tr.seenAt = n.Users, now
		}
		t.expire(tr, now)
		users := max(n.Users, tr.seen) + len(tr.pending)
		if users == n.Users {
			continue
		}
		if out == nil {
			out = append(dst[:0], nodes...)
		}
		out[i].Users = users
		total += len(tr.pending)
	}
	// Forget nodes that left the directory and have nothing pending; a
	// directory too old to teach anything says nothing of who left either.
	for id, tr := range t.nodes {
		if !learnt || marked == len(t.nodes) {
			break // or every node held is in this directory
		}
		if tr.gen != t.gen {
			t.expire(tr, now)
			if len(tr.pending) == 0 {
				delete(t.nodes, id)
			}
		}
	}
	if out == nil {
		return nodes, 0
	}
	return out, total
}

// news reports whether n's entry, in a directory held for age, is recent
// enough to teach a Tracker: age plus how far past its heartbeat the
// entry was (overdueMS) at most TrackerSettle.
func news(n *directory.Node, age time.Duration) bool {
	left := TrackerSettle - max(age, 0)
	return left >= 0 && overdueMS(n) <= left.Milliseconds()
}
