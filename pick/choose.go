package pick

import (
	"fmt"
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
	if len(nodes) == 1 {
		return Result{Node: nodes[0], Reason: fmt.Sprintf("%s: %s, the only candidate", name, nodes[0].ID)}
	}
	i := r.IntN(len(nodes))
	j := r.IntN(len(nodes) - 1)
	if j >= i {
		j++
	}
	a, b := nodes[i], nodes[j]
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
	// node may be above Balanced's slack before a client always leaves it
	// (2%).
	DefaultMargin = 0.02
)

// Balanced is the chooser of the Default policy. It picks by load
// (users/capacity) and adapts to how old its numbers are:
//
//   - Fresh directory (the largest AgeMS among the candidates, plus
//     Request.Age, is at most FreshAge): it picks at random among the
//     nodes within Slack of the least load, or within one user of it. Every
//     client then fills the emptiest nodes first, which is what a node
//     that just joined needs.
//   - Stale directory: it falls back to P2C, because with old numbers
//     "least loaded" sends every client to the same node.
//
// Among the nodes near the least load it prefers Request.Self, the node
// whose hello answer the directory is: the client is connected to it
// already, so staying saves a connection, and because the common address
// spreads hellos round robin the preference costs no balance.
//
// Above the slack, the connected node is not left at once: up to Margin
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
// The zero value is ready to use. Balanced is immutable and safe for
// concurrent use when Rand is. Pair it with a Tracker when one process
// makes many picks from the same directory.
type Balanced struct {
	// Rand is the source of randomness; nil means DefaultRand().
	Rand Rand
	// FreshAge is the largest directory age at which the numbers are
	// trusted. Zero means DefaultFreshAge (1 s); a negative value means
	// never (always P2C).
	FreshAge time.Duration
	// Slack is how far above the least load, relative to it, a node still
	// counts as least loaded: 0.01 means within 1% (plus one user). Zero
	// means DefaultSlack; a negative value means exact ties only.
	Slack float64
	// Margin is how far above the slack, relative to the mean load of the
	// candidates (plus one user), the connected node (Request.Self) may be
	// and still be kept with some probability. Zero means DefaultMargin; a
	// negative value means none: a connected node above the slack is
	// always left.
	Margin float64
}

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
	var oldest int64
	for i := range nodes {
		oldest = max(oldest, nodes[i].AgeMS)
	}
	age := time.Duration(oldest)*time.Millisecond + req.Age
	if fresh < 0 || age > fresh {
		res := p2c(nodes, r, "p2c")
		res.Reason = fmt.Sprintf("balanced: stale (age %v > %v), %s", age, max(fresh, 0), res.Reason)
		return res, nil
	}
	slack := b.Slack
	switch {
	case slack == 0:
		slack = DefaultSlack
	case slack < 0:
		slack = 0
	}
	i, count, connected := leastLoadedPreferring(nodes, slack, r, req.Self)
	how := ""
	if connected {
		// The node that answered the hello is as good as any: staying on
		// it saves the client a second connection.
		how = ", already connected"
	} else if s, keep := b.keepConnected(nodes, req.Self, slack, r); keep != "" {
		i, how = s, keep
	}
	n := nodes[i]
	return Result{Node: n, Reason: fmt.Sprintf("balanced: %s (load %.2f%s), %d of %d near the least load (age %v)", n.ID, n.Load(), how, count, len(nodes), age)}, nil
}

// keepConnected decides whether a client stays on the connected node
// self although it is above the slack: within the margin above it, with
// the probability 1 - excess/margin. It returns self's index and a note
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
	one := 0.0
	if c := nodes[s].Capacity; c > 0 {
		one = 1 / float64(c)
	}
	excess := nodes[s].Load() - (least*(1+slack) + one)
	width := margin*sum/float64(len(nodes)) + one
	if excess >= width {
		return 0, ""
	}
	const scale = 1 << 20
	if float64(r.IntN(scale)) < excess/width*scale {
		return 0, ""
	}
	return s, fmt.Sprintf(", already connected, %.0f%% into the margin above the least load", 100*excess/width)
}
