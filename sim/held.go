package sim

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/pick"
)

// The directory a session holds (Config.NoPushes false).
//
// A session holds the directory its node sent when it attached (the
// hello on that node: the node's own directory, Propagation old, as a
// view of Config.ViewSize nodes when that is set), and the pushes of
// changes since: a node that joined is added while the session holds
// fewer than its view's size, a node marked down is left out, and a push
// of more than DeltaMax changes is a whole view taken anew. A change of
// users alone is never pushed (as in the real node), so the users a held
// directory shows are those of its last whole view. When the node dies
// the session picks from that directory after the drop's wait, the dead
// node excluded by its failover.Machine, with Request.Age the time since
// the last push, and asks the common address only when those candidates
// fail (failover.Outcome.Held).
//
// Nothing is copied per session: a session's held directory is rebuilt
// from the snapshots when it picks (after a death, a few thousand
// picks), from its attach time and the pushes. The snapshots are kept
// every Tick for the last heldRing and every heldEvery before that, so a
// held directory older than heldRing shows numbers up to heldEvery older
// than it should (it is then past pick.DefaultFreshAge, so the default
// policy reads it as stale either way).
const (
	heldRing  = 2 * time.Second
	heldEvery = 100 * time.Millisecond
)

// usersAt returns the users per node of snapshot k if it is still kept,
// else of the latest kept one before it, and that one's number.
func (r *run) usersAt(k int) ([]int32, int) {
	k = max(min(k, r.taken-1), 0)
	if k >= r.taken-len(r.ring) {
		return r.ring[k%len(r.ring)], k
	}
	c := k / r.histEvery
	return r.hist[c], c * r.histEvery
}

// keepHistory records snapshot k in the history of held directories.
func (r *run) keepHistory(k int) {
	if r.histEvery == 0 || k%r.histEvery != 0 {
		return
	}
	r.hist = append(r.hist, slices.Clone(r.users))
}

// heldNodes returns the candidates of session s in flow fl from the
// directory it held when its node died: the nodes a pick may return,
// without those its machine excludes; and the Request.Age of that
// directory now.
func (r *run) heldNodes(s int32, fl *flow) ([]directory.Node, time.Duration) {
	cfg := r.cfg
	prop, tick := int64(cfg.Propagation), int64(cfg.Tick)
	const ms = int64(time.Millisecond)
	// The pushes the session got before its node died: the last one is
	// when it last heard, and the last whole view is what its numbers
	// come from.
	base, dirAt := fl.from, fl.from
	for i := range r.pushes {
		p := &r.pushes[i]
		if p.at >= fl.dropAt {
			break
		}
		if p.at > fl.from {
			dirAt = p.at
			if p.whole() {
				base = p.at
			}
		}
	}
	k := 0
	if t := base - prop; t > 0 {
		k = int(t / tick)
	}
	users, k := r.usersAt(k)
	at := int64(k) * tick

	// The node's directory at base, as build makes it.
	v := &r.heldV
	for _, i := range v.idx {
		v.pos[i] = -1
	}
	v.nodes, v.idx, v.cum = v.nodes[:0], v.idx[:0], v.cum[:0]
	keepCum := cfg.SampledViews && cfg.ViewSize > 0 && len(r.groups) == 1
	age := prop/ms + (dirAt-base)/ms
	var spare int64
	for i := range r.live {
		if r.joinAt[i] > at {
			continue // pushed to it, if at all: below
		}
		r.appendListed(v, i, int(users[i]), at, age, keepCum, &spare)
	}

	// The view the node drew for the session from it, the same at every
	// pick of the flow (its own stream, seeded by session and snapshot).
	listed := v.nodes
	room := true
	if k := cfg.ViewSize; k > 0 && k < len(v.nodes) {
		r.heldPCG.Seed(cfg.Seed^0x5157_0005, uint64(s)<<32|uint64(uint32(k)))
		saved := r.thin
		r.thin = r.heldRand
		if cfg.SampledViews {
			listed = r.sampled(v, len(v.nodes), r.groups[r.group[s]])
		} else {
			listed = r.thinned(v, len(v.nodes), fl.home)
		}
		r.thin = saved
		room = false // a full view: pushes replace entries, add none
	}

	now := r.clock()
	out := r.heldOut[:0]
	for _, n := range listed {
		i := r.index[n.ID]
		if r.pushedDown(i, fl.dropAt) || fl.excludes(r, i, now) {
			continue
		}
		out = append(out, n)
	}
	if room {
		for i := range r.live {
			j := r.joinAt[i]
			if j <= at || j+prop >= fl.dropAt {
				continue
			}
			if cfg.ViewSize > 0 && len(out) >= cfg.ViewSize {
				break
			}
			// Its entry as the push of its join carried it.
			n := directory.Node{
				ID: r.ids[i], Group: r.groups[r.zone[i]], Status: directory.Up,
				Capacity: cfg.Capacity, AgeMS: prop/ms + (dirAt-j-prop)/ms,
			}
			if r.pushedDown(int32(i), fl.dropAt) || fl.excludes(r, int32(i), now) {
				continue
			}
			out = append(out, n)
		}
	}
	r.heldOut = out
	return out, time.Duration(r.now - dirAt)
}

// pushedDown reports whether node i was marked down in a push that
// reached the sessions before at.
func (r *run) pushedDown(i int32, at int64) bool {
	d := r.deathAt[i]
	return d != never && d+int64(r.cfg.Detect)+int64(r.cfg.Propagation) < at
}

// excludes reports whether fl's machine excludes node i at now.
func (fl *flow) excludes(r *run, i int32, now time.Time) bool {
	return slices.Contains(fl.touched, i) && fl.m.Excluded(r.ids[i], now)
}

// pickHeld runs the policy for session s on the directory it held when
// its node died.
func (r *run) pickHeld(s int32, fl *flow) (int32, error) {
	nodes, age := r.heldNodes(s, fl)
	req := pick.Request{Age: age}
	if len(r.groups) > 1 {
		req.Group = r.groups[r.group[s]]
	}
	// No Self: the connection the directory came on is the one lost.
	res, err := r.policy.Pick(nodes, req)
	r.res.Picks++
	r.res.HeldPicks++
	if err != nil {
		return -1, err
	}
	return r.indexOf(res.Node.ID)
}

// newHeld prepares what the held directories need, for total nodes and
// sessions.
func (r *run) newHeld(total, sessions int) {
	r.attachAt = make([]int64, sessions)
	r.histEvery = max(int(int64(heldEvery)/int64(r.cfg.Tick)), 1)
	r.heldV = view{k: -1, pos: make([]int32, total)}
	for i := range r.heldV.pos {
		r.heldV.pos[i] = -1
	}
	r.heldPCG = rand.NewPCG(0, 0)
	r.heldRand = rand.New(r.heldPCG)
}
