package directory

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// ViewRequest says which part of a directory one client is sent: at most
// Max nodes, chosen for a client in Group, whose encoding takes at most
// Budget bytes. A zero Max or Budget sets no bound of its own.
type ViewRequest struct {
	// Max is the most nodes the client wants (the hello's "max"); 0 for
	// as many as Budget allows.
	Max int
	// Group is the client's "region/zone" or "region" (the hello's
	// "group"); empty for a client that prefers none.
	Group string
	// Budget is the most bytes the chosen nodes may take, as Size counts
	// them: what is left of the protocol's line once the message around
	// the nodes is counted. 0 sets no bound.
	Budget int
	// Size is what node i takes in the message, its separator included;
	// nil counts EncodedSize, an upper bound.
	Size func(i int) int
}

// OutsideShare is the part of a view, as a fraction of its Max, kept for
// nodes outside the client's group while the group has enough nodes to
// fill it: a client whose whole region fails still knows where to go
// without asking again.
const OutsideShare = 4 // one node in four

// Sample chooses the nodes of a view: the indices into nodes (sorted by
// ID, as Table.Nodes returns them) of the nodes a client is sent, in
// ascending order, so the view stays sorted by ID.
//
// When every node fits (no more than Max and within Budget) it returns
// them all: a small directory is sent whole, exactly as before views
// existed. Otherwise it fills the view in this order, skipping any node
// that would pass the Budget:
//
//  1. available nodes (up, with room) of the client's zone, then of its
//     region, each drawn at random weighted by spare capacity, until the
//     view is full but for its outside share (Max / OutsideShare);
//  2. available nodes of other groups, drawn the same way;
//  3. the rest of the client's group;
//  4. nodes not available (starting, degraded, draining, full), then down
//     nodes, at random: they tell a client little, but a small cluster
//     still shows them.
//
// Drawing weighted by spare capacity sends clients to where there is
// room, and drawing at random gives each client a different sample, so
// that clients sharing a stale directory do not all see the same few
// nodes. Sample reads nothing but its arguments and r. It is NewDraw
// and Choose in one.
func Sample(nodes []Node, req ViewRequest, r *rand.Rand) []int {
	size := req.sizer(nodes)
	if all, ok := whole(len(nodes), req, size); ok {
		return all
	}
	return NewDraw(nodes, req.Group, r).choose(req, size)
}

// Whole returns the index of every node, and true, when they all fit req
// (no more than Max, within Budget): what Sample and Choose then return,
// drawing nothing.
func Whole(nodes []Node, req ViewRequest) ([]int, bool) {
	return whole(len(nodes), req, req.sizer(nodes))
}

func (req ViewRequest) sizer(nodes []Node) func(int) int {
	if req.Size != nil {
		return req.Size
	}
	return func(i int) int { return EncodedSize(nodes[i]) }
}

// whole returns every index when n nodes fit req whole.
func whole(n int, req ViewRequest, size func(int) int) ([]int, bool) {
	if req.Max > 0 && req.Max < n {
		return nil, false
	}
	if req.Budget > 0 {
		total := 0
		for i := range n {
			total += size(i)
		}
		if total > req.Budget {
			return nil, false
		}
	}
	return allIndices(n), true
}

// A Draw is one random order of a directory's nodes for the clients of
// one group: what Sample draws before it chooses how many to take.
// Drawing costs a random number per node and a sort, choosing only a
// pass over the order; so a caller choosing many views of one directory
// at once (a push to every session) draws a few per group and chooses
// each client's view from one, whatever Max and Budget each asks.
type Draw struct {
	n int
	// own is the client's zone then the rest of its region, outside the
	// other groups' available nodes, rest the unavailable ones: each in
	// the order drawn.
	own, outside, rest []keyed
	size               func(int) int // EncodedSize of the nodes drawn
}

type keyed struct {
	i   int
	key float64 // smaller is drawn first
}

// NewDraw draws an order of nodes for a client in group (see Sample).
func NewDraw(nodes []Node, group string, r *rand.Rand) *Draw {
	zone, region := group, ""
	if zone != "" {
		region, _, _ = strings.Cut(zone, "/")
	}
	var own, outside, rest []keyed
	var ownZone []keyed
	for i := range nodes {
		n := &nodes[i]
		if !n.Available() {
			// Not available: after every available node, down ones last.
			k := keyed{i: i, key: r.Float64()}
			if n.Status == Down {
				k.key += 1
			}
			rest = append(rest, k)
			continue
		}
		// Efraimidis and Spirakis: drawing keys -ln(u)/w and taking the
		// smallest is a weighted draw without replacement.
		k := keyed{i: i, key: -math.Log(1-r.Float64()) / float64(n.Spare())}
		switch {
		case zone != "" && n.Group == zone:
			ownZone = append(ownZone, k)
		case region != "" && n.Region() == region:
			own = append(own, k)
		default:
			outside = append(outside, k)
		}
	}
	byKey := func(a, b keyed) int { return cmp.Compare(a.key, b.key) }
	slices.SortFunc(ownZone, byKey)
	slices.SortFunc(own, byKey)
	slices.SortFunc(outside, byKey)
	slices.SortFunc(rest, byKey)
	return &Draw{n: len(nodes), own: append(ownZone, own...), outside: outside, rest: rest,
		size: func(i int) int { return EncodedSize(nodes[i]) }}
}

// Choose returns the view Sample would choose for req from this draw
// (req.Group is the draw's, whatever req says): every node when they
// all fit, else the order above within req.Max and req.Budget.
func (d *Draw) Choose(req ViewRequest) []int {
	size := req.Size
	if size == nil {
		size = d.size
	}
	if all, ok := whole(d.n, req, size); ok {
		return all
	}
	return d.choose(req, size)
}

func (d *Draw) choose(req ViewRequest, size func(int) int) []int {
	limit := d.n
	if req.Max > 0 {
		limit = min(limit, req.Max)
	}
	own, outside := d.own, d.outside
	ownShare := limit - min(limit/OutsideShare, len(outside))
	if len(outside) > 0 && limit > 1 && ownShare == limit && len(own) >= limit {
		ownShare = limit - 1 // at least one node elsewhere
	}
	ownShare = min(ownShare, len(own))
	// The outside share holds when the budget, not the count, bounds the
	// view (a client that sends no max, in a cluster whose region alone
	// passes a line; or long entries): the client's group may take only
	// three quarters of the budget at first, so that what is left goes
	// elsewhere, and what it could not take is offered again after.
	reserve := 0
	if req.Budget > 0 && len(outside) > 0 {
		reserve = req.Budget / OutsideShare
	}

	chosen := make([]int, 0, limit)
	used := 0
	// take chooses from ks, in order, up to most of them and while they
	// fit within budget (0: no bound), and returns those it passed over.
	take := func(ks []keyed, budget, most int) (left []keyed) {
		took := 0
		for j, k := range ks {
			if len(chosen) == limit || took == most {
				return append(left, ks[j:]...)
			}
			s := size(k.i)
			if budget > 0 && used+s > budget {
				left = append(left, k)
				continue
			}
			used += s
			chosen = append(chosen, k.i)
			took++
		}
		return left
	}
	deferred := take(own[:ownShare], req.Budget-reserve, ownShare)
	outside = take(outside, req.Budget, limit-ownShare)
	take(append(deferred, own[ownShare:]...), req.Budget, limit)
	take(outside, req.Budget, limit)
	take(d.rest, req.Budget, limit)
	slices.Sort(chosen)
	return chosen
}

// Groups indexes the groups and regions of a directory's nodes, to tell
// which clients' groups pick out the same nodes as their own (Key).
type Groups struct {
	zones, regions map[string]struct{}
}

// GroupKey is what of a client's group a directory's nodes match: its
// zone if a node is in it, its region if a node is in that. Clients
// whose groups have the same key are sent views drawn alike, so they
// may share a Draw; a group that matches no node keys as "" (and gets
// the views of a client without a group).
type GroupKey struct{ Zone, Region string }

// NewGroups indexes the groups of nodes.
func NewGroups(nodes []Node) Groups {
	g := Groups{zones: map[string]struct{}{}, regions: map[string]struct{}{}}
	for i := range nodes {
		g.zones[nodes[i].Group] = struct{}{}
		g.regions[nodes[i].Region()] = struct{}{}
	}
	return g
}

// Key is the key of a client in group.
func (g Groups) Key(group string) GroupKey {
	if group == "" {
		return GroupKey{}
	}
	region, _, _ := strings.Cut(group, "/")
	var k GroupKey
	if _, ok := g.zones[group]; ok {
		k.Zone = group
	}
	if _, ok := g.regions[region]; ok && region != "" {
		k.Region = region
	}
	return k
}

// View returns the nodes Sample chooses, sorted by ID.
func View(nodes []Node, req ViewRequest, r *rand.Rand) []Node {
	idx := Sample(nodes, req, r)
	view := make([]Node, len(idx))
	for j, i := range idx {
		view[j] = nodes[i]
	}
	return view
}

func allIndices(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
