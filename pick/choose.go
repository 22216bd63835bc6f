package pick

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// The choosers below pick among the nodes they are given and filter
// nothing: put them behind Available (and Affinity) with Chain, as Default
// and ByName do. Given no nodes they return ErrNoNode.

// Random returns a Policy that picks uniformly at random among the nodes it
// is given. A nil r means DefaultRand().
func Random(r Rand) Policy {
	r = orDefault(r)
	return PolicyFunc(func(nodes []directory.Node, _ Request) (Result, error) {
		if len(nodes) == 0 {
			return Result{}, ErrNoNode
		}
		n := nodes[r.IntN(len(nodes))]
		return Result{Node: n, Reason: fmt.Sprintf("random: %s of %d", n.ID, len(nodes))}, nil
	})
}

// LeastUsers returns a Policy that picks the node with the lowest load
// (users/capacity, directory.Node.Load), breaking exact ties at random.
// It trusts the numbers it is given: many clients using it with the same
// stale directory all pick the same node (see Balanced). A nil r means
// DefaultRand().
func LeastUsers(r Rand) Policy {
	r = orDefault(r)
	return PolicyFunc(func(nodes []directory.Node, _ Request) (Result, error) {
		if len(nodes) == 0 {
			return Result{}, ErrNoNode
		}
		i, ties := leastLoaded(nodes, 0, r)
		n := nodes[i]
		return Result{Node: n, Reason: fmt.Sprintf("least-users: %s (load %.2f), %d of %d tied", n.ID, n.Load(), ties, len(nodes))}, nil
	})
}

// P2C returns a Policy that applies the power of two choices: it samples
// two distinct nodes uniformly at random and picks the one with the lower
// load (users/capacity), breaking a tie at random. Given one node it picks
// that node. P2C is robust to stale directories: the least loaded node is
// picked at most twice as often as under Random, so a crowd of clients
// with the same old numbers does not herd onto it. A nil r means
// DefaultRand().
func P2C(r Rand) Policy {
	r = orDefault(r)
	return PolicyFunc(func(nodes []directory.Node, _ Request) (Result, error) {
		if len(nodes) == 0 {
			return Result{}, ErrNoNode
		}
		return p2c(nodes, r, "p2c"), nil
	})
}

func p2c(nodes []directory.Node, r Rand, name string) Result {
	return p2cBy(len(nodes), func(k int) *directory.Node { return &nodes[k] }, r, name)
}

// p2cBy is p2c among the n nodes at(0) to at(n-1).
func p2cBy(n int, at func(int) *directory.Node, r Rand, name string) Result {
	if n == 1 {
		a := at(0)
		return Result{Node: *a, Reason: fmt.Sprintf("%s: %s, the only candidate", name, a.ID)}
	}
	i := r.IntN(n)
	j := r.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := *at(i), *at(j)
	la, lb := a.Load(), b.Load()
	if lb < la || (lb == la && r.IntN(2) == 1) {
		a, b, la, lb = b, a, lb, la
	}
	how := "over"
	if la == lb {
		how = "tied with"
	}
	return Result{Node: a, Reason: fmt.Sprintf("%s: %s (load %.2f) %s %s (load %.2f)", name, a.ID, la, how, b.ID, lb)}
}

// leastLoaded returns the index of a node picked uniformly among those
// whose load is within slack of the least load, and how many there were.
// A node is within slack when
//
//	load <= minLoad*(1+slack) + 1/capacity
//
// when slack > 0 (the last term is one user on that node), and when its
// load equals the least load when slack == 0.
func leastLoaded(nodes []directory.Node, slack float64, r Rand) (index, count int) {
	index, count, _ = leastLoadedPreferring(nodes, slack, r, "")
	return index, count
}

// leastLoadedPreferring is leastLoaded that takes the node named prefer
// whenever it is among the nodes near the least load (preferred reports it).
func leastLoadedPreferring(nodes []directory.Node, slack float64, r Rand, prefer string) (index, count int, preferred bool) {
	least := nodes[0].Load()
	for i := range nodes {
		least = min(least, nodes[i].Load())
	}
	index = -1
	for i := range nodes {
		n := &nodes[i]
		l := n.Load()
		within := l == least
		if !within && slack > 0 {
			limit := least * (1 + slack)
			if n.Capacity > 0 {
				limit += 1 / float64(n.Capacity)
			}
			within = l <= limit
		}
		if !within {
			continue
		}
		count++
		if preferred {
			continue
		}
		if prefer != "" && n.ID == prefer {
			index, preferred = i, true
			continue
		}
		// Reservoir sampling: keep the k-th candidate with probability 1/k.
		if count == 1 || r.IntN(count) == 0 {
			index = i
		}
	}
	return index, count, preferred
}

// Defaults of Balanced.
const (
	// DefaultFreshAge is how old a directory may be for Balanced to trust
	// its numbers and pick the least loaded node.
	DefaultFreshAge = time.Second
	// DefaultSlack is the relative slack within which Balanced counts nodes
	// as equally loaded (1%).
	DefaultSlack = 0.01
	// DefaultMargin is how far, relative to the mean load, the connected
	// node may be above Balanced's slack before a client always leaves it,
	// or, with no connected node among the candidates, a node before it
	// is never picked (2%).
	DefaultMargin = 0.02
	// DefaultSample is how many candidates a fresh Balanced compares when
	// it is given more: the connected node and others drawn at random.
	DefaultSample = 8
)

// Balanced is the chooser of the Default policy. It picks by load
// (users/capacity) and adapts to how old its numbers are.
//
// First it leaves out the candidates that have gone silent: those
// overdue by more than half of FreshAge (a node's overdue age is its
// AgeMS less its HeartbeatMS, how late its next word is). A node that
// died shows its last count until it is marked down, and that count
// soon looks least loaded. They are kept when they are all, or more
// than half, of the candidates: then the age tells of the directory
// rather than of its nodes (a copy that pushes of changes kept up to
// date, whose entries age until a push carries them), and leaving them
// out would crowd every pick onto the few left. Then, among the nodes
// left:
//
//   - Fresh directory (their largest overdue age, plus Request.Age, is
//     at most FreshAge): it compares Sample candidates, the connected
//     node (Request.Self) and others drawn uniformly at random, or all
//     of them when there are no more, and picks at random among those
//     within Slack of the least load of the comparison, or within one
//     user of it. A node that just joined is among the lightest of
//     nearly every comparison that holds it, so clients fill it first;
//     but no node is in more than about Sample/len(nodes) of the
//     comparisons, so a crowd of clients reading the same numbers
//     (arrivals within one propagation delay, or a node that died and
//     whose count stopped growing) spreads over many nodes instead of
//     herding onto the one that looks least loaded.
//   - Stale directory: it falls back to P2C, because with old numbers
//     "least loaded" sends every client to the same node.
//
// Among the nodes near the least load it prefers Request.Self, the node
// whose hello answer the directory is: the client is connected to it
// already, so staying saves a connection, and because the common address
// spreads hellos round robin the preference costs no balance.
//
// When every candidate is compared (no more than Sample), above the
// slack the connected node is not left at once: up to Margin
// (relative to the mean load) further, the client leaves it with a
// probability that grows from 0 to 1 over that margin, and otherwise
// stays. Clients that arrive together read the same numbers, and the
// numbers of the other nodes are a little older than those of the node
// that answered (they travel between the nodes first): with a hard
// threshold every client of such a moment that sees its node a few users
// above another leaves it for the same one, and a thousand sessions
// reattaching after a node died pile up on one survivor. A probability
// that grows with the excess moves only as many as the excess calls for,
// however fast they arrive, so the balance does not depend on the clients
// spreading their arrivals out in time (failover.Config.DropBase).
//
// When every candidate is compared and the connected node is not one of
// them (Affinity kept the client's zone, a few nodes, while the common
// address led elsewhere; or the connection was lost), the margin works
// the same way for all: each candidate is picked with a weight, 1 within
// the slack, falling from 1 to 0 over the margin above it (the
// probability that a connected node there is kept), 0 beyond. A crowd
// of clients then spreads over the nearly equal nodes of a small zone
// instead of all taking the one a few users lighter.
//
// The zero value is ready to use. Balanced is immutable and safe for
// concurrent use when Rand is. Pair it with a Tracker when one process
// makes many picks from the same directory.
type Balanced struct {
	// Rand is the source of randomness; nil means DefaultRand().
	Rand Rand
	// FreshAge is the largest directory age at which the numbers are
	// trusted; a node overdue by more than half of it is left out as
	// silent. Zero means DefaultFreshAge (1 s); a negative value means
	// never (always P2C, leaving out the nodes overdue by more than half
	// of DefaultFreshAge).
	FreshAge time.Duration
	// Slack is how far above the least load, relative to it, a node still
	// counts as least loaded: 0.01 means within 1% (plus one user). Zero
	// means DefaultSlack; a negative value means exact ties only.
	Slack float64
	// Margin is how far above the slack, relative to the mean load of the
	// candidates (plus one user), the connected node (Request.Self) may be
	// and still be kept with some probability, or, with no connected node
	// among the candidates, another node still be picked. Zero means
	// DefaultMargin; a negative value means none: a connected node above
	// the slack is always left, and only nodes within the slack are
	// picked.
	Margin float64
	// Sample is how many candidates a fresh pick compares, the connected
	// node included, when it is given more (1 is a random pick, 2 power of
	// two choices). Zero means DefaultSample (8); a negative value means
	// all of them: the least loaded of the whole directory, which herds
	// when many clients read the same numbers.
	Sample int
}

// maxSample bounds Balanced.Sample, so that a comparison lives on the
// stack.
const maxSample = 64

// Pick implements Policy.
func (b Balanced) Pick(nodes []directory.Node, req Request) (Result, error) {
	if len(nodes) == 0 {
		return Result{}, ErrNoNode
	}
	r := orDefault(b.Rand)
	fresh := b.FreshAge
	if fresh == 0 {
		fresh = DefaultFreshAge
	}
	h := hear(nodes, silentAfter(fresh))
	// Saturated: an age in milliseconds past 2^63 ns (only a forged
	// directory says one) would otherwise wrap and look fresh.
	age := time.Duration(math.MaxInt64)
	if h.oldest < int64(math.MaxInt64/time.Millisecond) && req.Age < time.Duration(math.MaxInt64)-time.Duration(h.oldest)*time.Millisecond {
		age = time.Duration(h.oldest)*time.Millisecond + req.Age
	}
	silent := ""
	if left := len(nodes) - h.n; left > 0 {
		silent = fmt.Sprintf(", %d silent left out", left)
	}
	if fresh < 0 || age > fresh {
		res := p2cBy(h.n, h.at, r, "p2c")
		res.Reason = fmt.Sprintf("balanced: stale (age %v > %v%s), %s", age, max(fresh, 0), silent, res.Reason)
		return res, nil
	}
	slack := b.Slack
	switch {
	case slack == 0:
		slack = DefaultSlack
	case slack < 0:
		slack = 0
	}
	var buf [maxSample]directory.Node
	among := b.sample(&h, req.Self, r, buf[:0])
	sampled := len(among) < h.n
	var i, count int
	how := ""
	switch {
	case req.Self != "" && holds(among, req.Self):
		var connected bool
		i, count, connected = leastLoadedPreferring(among, slack, r, req.Self)
		if connected {
			// The node that answered the hello is as good as any: staying
			// on it saves the client a second connection.
			how = ", already connected"
		} else if sampled {
			// A sample spreads a crowd by itself: no margin keeps the
			// connected node above the least load of the comparison.
		} else if s, keep := b.keepConnected(among, req.Self, slack, r); keep != "" {
			i, how = s, keep
		}
	case sampled:
		i, count = leastLoaded(among, slack, r)
	default:
		// Every candidate compared, none of them the connected node (the
		// common address led elsewhere, or the connection was lost): the
		// margin spreads the clients of one moment.
		i, count, how = b.spread(among, slack, r)
	}
	n := among[i]
	compared := ""
	if len(among) < len(nodes) {
		compared = fmt.Sprintf(" of %d compared", len(among))
	}
	return Result{Node: n, Reason: fmt.Sprintf("balanced: %s (load %.2f%s), %d%s of %d near the least load (age %v%s)", n.ID, n.Load(), how, count, compared, len(nodes), age, silent)}, nil
}

// holds reports whether nodes holds the node with ID id.
func holds(nodes []directory.Node, id string) bool {
	for i := range nodes {
		if nodes[i].ID == id {
			return true
		}
	}
	return false
}

// silentAfter is how far past its heartbeat, in milliseconds, Balanced
// lets a node's entry be before it takes the node for silent: half of
// fresh, or of DefaultFreshAge when fresh is negative.
func silentAfter(fresh time.Duration) int64 {
	if fresh < 0 {
		fresh = DefaultFreshAge
	}
	return int64(fresh/2) / int64(time.Millisecond)
}

// heard is the nodes a Balanced pick chooses among: those of nodes
// overdue (overdueMS) by at most limit, when some are overdue by more
// but no more of them than of the others; else all of nodes. A node
// that died shows its last users until it is marked down, its count
// frozen while the others' grow, so it soon looks least loaded; its
// entry's age, which grows from its last heartbeat, gives it away. When
// most entries are that old, though, the age tells of the directory
// rather than of its nodes (a copy kept up to date by pushes, whose
// entries age until a push carries them; the directory of a node cut
// off from its peers), and leaving them out would crowd every pick onto
// the few left. Nothing is copied: rank k, from 0 to n-1, names the k-th
// node kept in the order of nodes.
type heard struct {
	nodes  []directory.Node
	limit  int64
	some   bool  // some nodes are left out
	n      int   // the nodes kept
	oldest int64 // the largest overdue age among them
}

func hear(nodes []directory.Node, limit int64) heard {
	h := heard{nodes: nodes, limit: limit}
	var all int64
	for i := range nodes {
		o := overdueMS(&nodes[i])
		all = max(all, o)
		if o <= limit {
			h.n++
			h.oldest = max(h.oldest, o)
		}
	}
	if left := len(nodes) - h.n; left == 0 || left > h.n {
		h.n, h.oldest = len(nodes), all
		return h
	}
	h.some = true
	return h
}

// kept reports whether h keeps nodes[i].
func (h *heard) kept(i int) bool {
	return !h.some || overdueMS(&h.nodes[i]) <= h.limit
}

// at returns the node of rank k.
func (h *heard) at(k int) *directory.Node {
	if !h.some {
		return &h.nodes[k]
	}
	for i := range h.nodes {
		if h.kept(i) {
			if k == 0 {
				return &h.nodes[i]
			}
			k--
		}
	}
	panic("pick: rank out of range")
}

// overdueMS is how long past its next heartbeat word about n is: its
// AgeMS less its heartbeat interval. A node publishes a change of its
// numbers at once and otherwise a heartbeat every HeartbeatMS, so within
// that interval silence is no news, not old news; in a large cluster,
// whose heartbeats slow to seconds (directory.HeartbeatFor), counting
// the whole AgeMS would make every directory look stale.
func overdueMS(n *directory.Node) int64 {
	return max(n.AgeMS-n.HeartbeatMS, 0)
}

// sample returns the candidates a fresh pick compares: all of the nodes h
// keeps when they are no more than Sample, else the node named self
// (when among them) and others drawn uniformly without replacement, in
// the order of h.nodes. It returns h.nodes itself when that is all of
// them, and otherwise appends to buf (a new slice if buf is too short).
// It draws with r only when it samples.
func (b Balanced) sample(h *heard, self string, r Rand, buf []directory.Node) []directory.Node {
	k := b.Sample
	switch {
	case k == 0:
		k = DefaultSample
	case k < 0:
		k = h.n // all of them
	default:
		k = min(k, maxSample)
	}
	if h.n <= k {
		if !h.some {
			return h.nodes
		}
		if h.n > cap(buf) {
			buf = make([]directory.Node, 0, h.n)
		}
		for i := range h.nodes {
			if h.kept(i) {
				buf = append(buf, h.nodes[i])
			}
		}
		return buf
	}
	// The connected node, when among those kept, is in; the others are
	// drawn from the rest, numbered 0..m-1 with self's rank left out.
	var picked [maxSample]int
	n, skip := 0, -1
	if self != "" {
		rank := 0
		for i := range h.nodes {
			if !h.kept(i) {
				continue
			}
			if h.nodes[i].ID == self {
				picked[0], n, skip = rank, 1, rank
				break
			}
			rank++
		}
	}
	m := h.n - n
	// Floyd's algorithm: k-n distinct numbers in [0, m) with k-n draws.
	drawn := picked[n:n]
	for j := m - (k - n); j < m; j++ {
		t := r.IntN(j + 1)
		if slices.Contains(drawn, t) {
			t = j
		}
		drawn = append(drawn, t)
	}
	for x, t := range drawn {
		if skip >= 0 && t >= skip {
			drawn[x] = t + 1
		}
	}
	n += len(drawn)
	ranks := picked[:n]
	slices.Sort(ranks)
	if !h.some {
		for _, i := range ranks {
			buf = append(buf, h.nodes[i])
		}
		return buf
	}
	rank := 0
	for i := range h.nodes {
		if len(ranks) == 0 {
			break
		}
		if !h.kept(i) {
			continue
		}
		if rank == ranks[0] {
			buf = append(buf, h.nodes[i])
			ranks = ranks[1:]
		}
		rank++
	}
	return buf
}

// spread picks among nodes, none of them the connected node, each with
// a weight: 1 within the slack of the least load, falling from 1 to 0
// over the margin above it (as the chance that keepConnected keeps a
// connected node there), and 0 beyond. Clients that read the same
// numbers then spread over the nodes near the least load in proportion,
// where each would otherwise take the least loaded. It returns the
// index picked, how many nodes are within the slack, and a note for the
// Reason when the node picked is in the margin. With no node in the
// margin it draws as leastLoaded does.
func (b Balanced) spread(nodes []directory.Node, slack float64, r Rand) (index, count int, how string) {
	margin := b.Margin
	switch {
	case margin < 0:
		index, count = leastLoaded(nodes, slack, r)
		return index, count, ""
	case margin == 0:
		margin = DefaultMargin
	}
	least, sum := nodes[0].Load(), 0.0
	for i := range nodes {
		l := nodes[i].Load()
		least, sum = min(least, l), sum+l
	}
	mean := sum / float64(len(nodes))
	total, partial := 0.0, false
	for i := range nodes {
		w, _ := weight(&nodes[i], least, slack, margin, mean)
		total += w
		partial = partial || w < 1 && w > 0
	}
	if !partial {
		index, count = leastLoaded(nodes, slack, r)
		return index, count, ""
	}
	const scale = 1 << 20
	x := (float64(r.IntN(scale)) + 0.5) / scale * total
	index = -1
	for i := range nodes {
		w, into := weight(&nodes[i], least, slack, margin, mean)
		if w == 1 {
			count++
		}
		if index >= 0 || w == 0 {
			continue
		}
		if x < w || i == len(nodes)-1 {
			index = i
			if w < 1 {
				how = fmt.Sprintf(", %.0f%% into the margin above the least load", 100*into)
			}
		}
		x -= w
	}
	if index < 0 {
		// Rounding left x past the last weight: the last node weighed.
		for i := len(nodes) - 1; i >= 0; i-- {
			if w, _ := weight(&nodes[i], least, slack, margin, mean); w > 0 {
				index = i
				break
			}
		}
	}
	return index, count, how
}

// weight is n's weight in spread, and how far into the margin its load
// is (0 to 1): 1 within the slack of least (as leastLoaded counts it),
// else 1 less how far into the margin above least*(1+slack) plus one
// user its load is, the margin being margin*mean plus one user; 0 past
// it.
func weight(n *directory.Node, least, slack, margin, mean float64) (w, into float64) {
	l := n.Load()
	one := 0.0
	if n.Capacity > 0 {
		one = 1 / float64(n.Capacity)
	}
	if l == least || slack > 0 && l <= least*(1+slack)+one {
		return 1, 0
	}
	into = (l - (least*(1+slack) + one)) / (margin*mean + one)
	switch {
	case into >= 1:
		return 0, 1
	case into <= 0:
		return 1, 0
	}
	return 1 - into, into
}

// keepConnected decides whether a client stays on the connected node
// self although it is above the slack: within the margin above it, with
// the probability of its weight (1 less how far into the margin it is,
// as spread draws the others). It returns self's index and a note
// for the Reason when it stays, and "" when it leaves (or self is not
// among nodes).
func (b Balanced) keepConnected(nodes []directory.Node, self string, slack float64, r Rand) (int, string) {
	margin := b.Margin
	switch {
	case self == "" || margin < 0:
		return 0, ""
	case margin == 0:
		margin = DefaultMargin
	}
	s := -1
	least, sum := nodes[0].Load(), 0.0
	for i := range nodes {
		l := nodes[i].Load()
		least, sum = min(least, l), sum+l
		if nodes[i].ID == self {
			s = i
		}
	}
	if s < 0 {
		return 0, ""
	}
	w, into := weight(&nodes[s], least, slack, margin, sum/float64(len(nodes)))
	if w == 0 {
		return 0, ""
	}
	const scale = 1 << 20
	if float64(r.IntN(scale)) < into*scale {
		return 0, ""
	}
	return s, fmt.Sprintf(", already connected, %.0f%% into the margin above the least load", 100*into)
}
