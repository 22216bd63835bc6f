package room

import (
	"slices"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// Peer is what one node's view of the cluster says about a node.
type Peer struct {
	// Listed is set when the directory lists the node (in any status).
	Listed bool
	// Status is the node's status in the directory ("" when not listed).
	Status directory.Status
	// Newest is the newest incarnation heard from the node, 0 if none.
	Newest uint64
}

// live reports whether the directory lists the node and not as down.
func (p Peer) live() bool { return p.Listed && p.Status != directory.Down }

// View is one node's view of the cluster at one instant: its directory
// and the newest incarnation it heard from each node. A View is
// immutable, so one may be shared by the rooms of a node and read from
// many goroutines.
type View struct {
	peers        map[string]Peer
	listed, live int
	answered     time.Time // Vouched's; zero: not vouched for
}

// NewView returns the view of a directory and of the newest incarnations
// heard (node ID -> incarnation). It keeps neither argument.
func NewView(nodes []directory.Node, incarnations map[string]uint64) *View {
	v := &View{peers: make(map[string]Peer, len(nodes)+len(incarnations))}
	for id, inc := range incarnations {
		v.peers[id] = Peer{Newest: inc}
	}
	for _, n := range nodes {
		p := v.peers[n.ID]
		if p.Listed {
			continue // listed twice: the first wins
		}
		p.Listed, p.Status = true, n.Status
		v.peers[n.ID] = p
		v.listed++
		if p.live() {
			v.live++
		}
	}
	return v
}

// Vouched returns a view like v that this node's external bus vouches
// for: the bus's JetStream answered a question asked at answered, lately
// enough (the caller decides), so the node is on the side of the cluster
// that stores, and a node v does not show live is gone from the bus or
// cut off from it, not merely unseen. Such a view stands for a majority
// of the cluster in Reconcile, but an answer counts only if its question
// was asked since Reconcile first saw no majority: one from before the
// peers vanished says nothing about them (a node cut off from its bus
// still holds one for a while). v is not changed; a nil v is the view of
// a cluster of no listed nodes.
func (v *View) Vouched(answered time.Time) *View {
	var c View
	if v != nil {
		c = *v
	}
	c.answered = answered
	return &c
}

// Peer returns what v says about node id.
func (v *View) Peer(id string) Peer {
	if v == nil {
		return Peer{}
	}
	return v.peers[id]
}

// majority reports whether v shows more than half of the cluster's nodes
// live. The cluster is every node v lists, self, and the nodes of the
// members; self counts as live (it is the one looking).
func (r *Room) majority(v *View) bool {
	known, live := 0, 0
	if v != nil {
		known, live = v.listed, v.live
	}
	self := v.Peer(r.cfg.Self)
	if !self.Listed {
		known++
		live++
	} else if !self.live() {
		live++
	}
	var extra []string
	for _, m := range r.members {
		if !v.Peer(m.Node).Listed && m.Node != r.cfg.Self && !slices.Contains(extra, m.Node) {
			extra = append(extra, m.Node)
		}
	}
	known += len(extra)
	return 2*live > known
}

// Steward reports whether this node is the room's steward as v shows the
// cluster: the lowest ID among itself and the nodes of the members that
// are live in v and in the incarnation the member joined with. The
// steward writes the room's snapshots and removes stale foreign members.
// Two nodes that both believe they are steward do no harm: snapshots are
// written with optimistic concurrency and leaves are idempotent.
func (r *Room) Steward(v *View) bool {
	for _, m := range r.members {
		if m.Node >= r.cfg.Self {
			continue
		}
		if p := v.Peer(m.Node); p.live() && p.Newest <= m.Inc {
			return false
		}
	}
	return true
}

// Reconcile checks the members against v, this node's view of the
// cluster at now, and against the local sessions. It returns the records
// this node should store: one leave of the stale members it is to remove,
// and a join for each active local session the room lost (its membership
// was removed while the session lives on, as after a partition). Call it
// every few heartbeats with the time of the call; the grace periods are
// measured with these times only. If a time steps back (a wall clock set
// back), the evidence gathered is dropped and the graces and retries
// under way start again from it, rather than wait for the clock to
// catch up.
//
// A member of this node is stale when its session is not a local session
// any more, or is one the room lost (a later copy of the join refused
// for it stored it again), or it joined in an earlier incarnation, and
// stays so for OwnGrace. This node removes those itself.
//
// A member of another node is stale, on evidence the cluster agrees on,
// when
//
//   - its node has a newer incarnation than the member's (the node
//     restarted and said so itself), or
//   - its node has been down or missing in v continuously for Grace, and
//     at every Reconcile of that time v showed a majority of the
//     cluster's nodes live or was vouched for by the node's bus
//     (View.Vouched), with no gap longer than MaxGap between two calls;
//     if it was ever only vouched for, the latest answer was to a
//     question asked since the first Reconcile of that time that saw
//     no majority; and, when StoreLeader names the room's stream
//     leader, that leader has been live in v (or is this node) for
//     Grace too: until the stream can store, the member's user cannot
//     join again from another node either, and a removal stored first
//     when it can would show the room a leave and a join. After
//     LeaderWait without a live leader the grace counts without it.
//
// A node that was paused or cut off sees its peers down when it comes
// back, but not a majority up, and a gap in its watching; it removes
// nobody it merely could not see. Only the steward removes foreign
// members, and at most one cleanup goes out per Retry.
func (r *Room) Reconcile(now time.Time, v *View) []Record {
	// States owed since the last call go out now (live.go).
	r.reconciles++
	r.flushOwed()
	// Evidence holds only while this node kept watching.
	if !r.watched.IsZero() && (now.Sub(r.watched) > r.cfg.MaxGap || now.Before(r.watched)) {
		clear(r.downFrom)
		r.storable, r.unstorable = time.Time{}, time.Time{}
	}
	r.watched = now
	r.clampTimes(now)
	storable := r.watchLeader(now, v)
	peers := r.majority(v)
	var answered time.Time
	if v != nil {
		answered = v.answered
	}
	quorum := peers || !answered.IsZero()
	if !quorum {
		clear(r.downFrom)
	}

	var own, foreign []string
	var seen map[string]bool // nodes down or missing now; allocated when there are some
	for key, m := range r.members {
		if m.Node == r.cfg.Self {
			if lm := r.local[key]; m.Inc == r.cfg.Incarnation && lm != nil && !lm.lost {
				delete(r.suspect, key)
				continue
			}
			first, ok := r.suspect[key]
			if !ok {
				r.suspect[key] = now
			} else if now.Sub(first) >= r.cfg.OwnGrace {
				own = append(own, key)
			}
			continue
		}
		p := v.Peer(m.Node)
		if p.Newest > m.Inc {
			foreign = append(foreign, key)
			continue
		}
		if p.live() || !quorum {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool)
		}
		seen[m.Node] = true
		down, ok := r.downFrom[m.Node]
		if !ok {
			down = downSince{at: now}
		}
		if !peers && down.busFrom.IsZero() {
			down.busFrom = now
		}
		r.downFrom[m.Node] = down
		if ok && now.Sub(down.at) >= r.cfg.Grace && (down.busFrom.IsZero() || !answered.Before(down.busFrom)) && storable {
			foreign = append(foreign, key)
		}
	}
	for id := range r.downFrom {
		if !seen[id] {
			delete(r.downFrom, id)
		}
	}
	for key := range r.suspect {
		if _, ok := r.members[key]; !ok {
			delete(r.suspect, key)
		}
	}

	var out []Record
	stale := own
	if len(foreign) > 0 && r.Steward(v) {
		stale = append(stale, foreign...)
	}
	if len(stale) > 0 && !now.Before(r.dropAt) {
		r.dropAt = now.Add(r.cfg.Retry)
		slices.Sort(stale)
		out = append(out, Record{Op: OpLeave, Keys: stale})
	}
	for _, key := range r.order {
		lm := r.local[key]
		if _, ok := r.members[key]; ok || !lm.active || lm.leaving || lm.rejected != nil || now.Before(lm.retryAt) {
			continue
		}
		lm.retryAt = now.Add(r.cfg.Retry)
		out = append(out, Record{Op: OpJoin, User: lm.user, Key: key, Node: r.cfg.Self, Inc: r.cfg.Incarnation})
	}
	return out
}

// StoreLeader tells the room which node leads its stream, as this node
// knows it (its replica's view, or the last election it heard of): id,
// or "" while it has none. known is false when this node cannot tell
// (its bus is an external NATS, or it has heard nothing of the stream
// yet); Reconcile then asks nothing of the leader. Call it before
// Reconcile.
func (r *Room) StoreLeader(id string, known bool) {
	r.leader, r.leaderKnown = id, known
}

// watchLeader notes whether the room's stream leader is live in v at
// now, and reports whether a foreign member's grace may end: the leader
// has been live for Grace, none has been for LeaderWait, or the leader
// is not known.
func (r *Room) watchLeader(now time.Time, v *View) bool {
	if !r.leaderKnown {
		r.storable, r.unstorable = time.Time{}, time.Time{}
		return true
	}
	if r.leader == "" || r.leader != r.cfg.Self && !v.Peer(r.leader).live() {
		r.storable = time.Time{}
		if r.unstorable.IsZero() {
			r.unstorable = now
		}
		return now.Sub(r.unstorable) >= r.cfg.LeaderWait
	}
	r.unstorable = time.Time{}
	if r.storable.IsZero() {
		r.storable = now
	}
	return now.Sub(r.storable) >= r.cfg.Grace
}

// clampTimes brings the times Reconcile measures from back to now if a
// clock that stepped back left them in the future: no grace or retry then
// waits for the clock to catch up. Times from time.Now carry a monotonic
// reading that never steps back; a caller may pass others.
func (r *Room) clampTimes(now time.Time) {
	for key, first := range r.suspect {
		if first.After(now) {
			r.suspect[key] = now // the grace starts again
		}
	}
	if r.storable.After(now) {
		r.storable = now
	}
	if r.unstorable.After(now) {
		r.unstorable = now
	}
	limit := now.Add(r.cfg.Retry)
	if r.dropAt.After(limit) {
		r.dropAt = limit
	}
	for _, lm := range r.local {
		if lm.retryAt.After(limit) {
			lm.retryAt = limit
		}
	}
}

// downSince is the evidence that a member's node is gone: since when
// Reconcile has seen it down or missing, and since when only the node's
// bus has vouched for the view (View.Vouched), no majority of its peers
// being live (zero: a majority all along). Only an answer to a question
// asked since then counts: one from before the peers vanished says
// nothing about them.
type downSince struct {
	at, busFrom time.Time
}
