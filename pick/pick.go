package pick

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// ErrNoNode means no node in the directory may be picked: every node is
// down, starting, draining, full or excluded. The caller should fetch a
// fresh directory (after a backoff) and pick again. Errors returned by the
// policies of this package wrap it; test with errors.Is.
var ErrNoNode = errors.New("pick: no server available")

// Rand is the source of randomness a policy draws from. *rand.Rand of
// math/rand/v2 satisfies it, but is not safe for concurrent use; NewRand and
// DefaultRand return sources that are.
type Rand interface {
	// IntN returns a uniform integer in [0, n). n is always > 0.
	IntN(n int) int
}

// NewRand returns a Rand seeded with seed that is safe for concurrent use
// (a mutex around a PCG generator). The same seed gives the same sequence,
// which makes tests and simulations reproducible.
func NewRand(seed uint64) Rand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

// IntN implements Rand under the mutex.
func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// DefaultRand returns the process-wide source of math/rand/v2, randomly
// seeded and safe for concurrent use. Policies given a nil Rand use it.
func DefaultRand() Rand { return globalRand{} }

type globalRand struct{}

// IntN implements Rand with math/rand/v2's global source.
func (globalRand) IntN(n int) int { return rand.IntN(n) }

func orDefault(r Rand) Rand {
	if r == nil {
		return DefaultRand()
	}
	return r
}

// Request says who is picking.
type Request struct {
	// Group is the client's own group: "region/zone", "region" or empty
	// (no preference).
	Group string
	// Exclude reports whether the node with this ID must not be picked,
	// for instance because it failed a moment ago (failover.Machine.Excluded).
	// Nil excludes nothing. It is called synchronously from Pick, on the
	// caller's goroutine, and must not block.
	Exclude func(id string) bool
	// Age is how long ago the caller fetched the directory it passes to
	// Pick (or last applied a push of changes to it). Policies that judge
	// freshness (Balanced) add it to every node's AgeMS, and a Tracker
	// learns only from entries that this leaves recent. Zero means "just
	// fetched".
	Age time.Duration
	// Self is the ID of the node whose hello answer the directory is: the
	// node the common address led to, to which the client is connected.
	// Empty when unknown. Balanced prefers it among equals; the dns-only
	// baseline (Answerer) picks it alone.
	Self string
}

func (r Request) excluded(id string) bool {
	return r.Exclude != nil && r.Exclude(id)
}

// Result is a pick and why it was made.
type Result struct {
	// Node is the picked node, copied from the directory (with a Tracker,
	// its Users include the picks the directory does not show yet).
	Node directory.Node
	// Reason explains the pick to a human, for logs and the CLI, e.g.
	// "status: 4 of 5 available; group: zone eu/a (2 of 4); p2c: n2 (load 0.31) over n3 (load 0.45)".
	// Its wording is not an API: do not parse it.
	Reason string
}

// Policy picks one node from a directory.
//
// Pick must not block, must not modify nodes (the slice may be shared with
// other goroutines), and must return an error wrapping ErrNoNode when it
// has nothing to pick. The policies of this package are immutable and safe
// for concurrent use when their Rand is.
type Policy interface {
	Pick(nodes []directory.Node, req Request) (Result, error)
}

// PolicyFunc adapts a function to the Policy interface.
type PolicyFunc func(nodes []directory.Node, req Request) (Result, error)

// Pick calls f(nodes, req).
func (f PolicyFunc) Pick(nodes []directory.Node, req Request) (Result, error) {
	return f(nodes, req)
}

// Filter narrows the candidates before a chooser sees them. It returns the
// nodes it keeps and a short note for the Result's Reason (empty for none).
//
// A Filter must not modify nodes; it may return nodes itself when it keeps
// them all, and otherwise returns a new slice. It must not block. Returning
// no nodes makes Chain fail with ErrNoNode, the note saying why.
type Filter func(nodes []directory.Node, req Request) (kept []directory.Node, note string)

// Chain returns a Policy that applies filters in order and lets choose pick
// among the nodes left. The notes of the filters and the chooser's Reason
// are joined with "; ". If a filter leaves nothing, Pick returns an error
// wrapping ErrNoNode that carries the filter's note.
func Chain(choose Policy, filters ...Filter) Policy {
	return chain{choose: choose, filters: filters}
}

type chain struct {
	choose  Policy
	filters []Filter
}

// Pick implements Policy.
func (c chain) Pick(nodes []directory.Node, req Request) (Result, error) {
	var notes []string
	for _, f := range c.filters {
		kept, note := f(nodes, req)
		if note != "" {
			notes = append(notes, note)
		}
		if len(kept) == 0 {
			return Result{}, fmt.Errorf("%w (%s)", ErrNoNode, strings.Join(notes, "; "))
		}
		nodes = kept
	}
	res, err := c.choose.Pick(nodes, req)
	if err != nil {
		return Result{}, err
	}
	if len(notes) > 0 {
		res.Reason = strings.Join(append(notes, res.Reason), "; ")
	}
	return res, nil
}

// Available is the status Filter: it keeps the nodes a client may attach to
// (status up and users below capacity, directory.Node.Available) that
// req.Exclude does not exclude. An entry with a negative users count or
// capacity, or without an ID, which no node sends (directory.Entry.Validate
// refuses them), is broken or forged and is not kept: its load would
// look lower than an empty node's, and a node without an ID cannot be
// excluded after it fails (package failover), so a client would pick it
// again and again. Its note counts the nodes kept ("status: 3 of 4
// available") and, when none is left, says why by status ("other" for
// such entries).
func Available(nodes []directory.Node, req Request) ([]directory.Node, string) {
	n := 0
	for i := range nodes {
		if usable(&nodes[i], req) {
			n++
		}
	}
	note := fmt.Sprintf("status: %d of %d available", n, len(nodes))
	switch n {
	case 0:
		return nil, note + why(nodes, req)
	case len(nodes):
		return nodes, note
	}
	kept := make([]directory.Node, 0, n)
	for i := range nodes {
		if usable(&nodes[i], req) {
			kept = append(kept, nodes[i])
		}
	}
	return kept, note
}

// usable reports whether Available keeps n.
func usable(n *directory.Node, req Request) bool {
	return n.Available() && !broken(n) && !req.excluded(n.ID)
}

// broken reports whether n is an entry no node sends: without an ID, or
// with a negative users count or capacity.
func broken(n *directory.Node) bool {
	return n.ID == "" || n.Users < 0 || n.Capacity < 0
}

// why explains, status by status, why no node is available: " (down 1, full 2, excluded 1)".
func why(nodes []directory.Node, req Request) string {
	if len(nodes) == 0 {
		return " (empty directory)"
	}
	order := []string{"excluded", string(directory.Full), string(directory.Draining), string(directory.Degraded), string(directory.Starting), string(directory.Down), "other"}
	counts := make(map[string]int)
	for i := range nodes {
		node := &nodes[i]
		switch {
		case broken(node):
			counts["other"]++
		case req.excluded(node.ID):
			counts["excluded"]++
		case node.Status == directory.Up && node.Users >= node.Capacity:
			counts[string(directory.Full)]++
		case node.Status.Valid():
			counts[string(node.Status)]++
		default:
			counts["other"]++
		}
	}
	var parts []string
	for _, k := range order {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// Affinity is the group Filter with hierarchical fallback. For a client in
// "eu/a" it keeps the nodes whose Group is exactly "eu/a"; if there are
// none, those in region "eu" (any zone, or no zone); if there are none
// either, every node. A client in region "eu" (no zone) starts at the
// region tier, and a client without a group keeps every node. The note
// names the tier that was used: "group: zone eu/a (2 of 5)",
// "group: region eu (3 of 5), none in zone eu/a", "group: anywhere (5),
// none in region eu", or "group: anywhere (no client group)".
func Affinity(nodes []directory.Node, req Request) ([]directory.Node, string) {
	if req.Group == "" {
		return nodes, "group: anywhere (no client group)"
	}
	region, _, hasZone := strings.Cut(req.Group, "/")
	inZone, inRegion := 0, 0
	for i := range nodes {
		if inRegionOf(nodes[i].Group, region) {
			inRegion++
			if hasZone && nodes[i].Group == req.Group {
				inZone++
			}
		}
	}
	var note string
	switch {
	case inZone > 0:
		return keep(nodes, inZone, func(n *directory.Node) bool { return n.Group == req.Group }),
			fmt.Sprintf("group: zone %s (%d of %d)", req.Group, inZone, len(nodes))
	case inRegion > 0:
		note = fmt.Sprintf("group: region %s (%d of %d)", region, inRegion, len(nodes))
		if hasZone {
			note += ", none in zone " + req.Group
		}
		return keep(nodes, inRegion, func(n *directory.Node) bool { return inRegionOf(n.Group, region) }), note
	}
	note = fmt.Sprintf("group: anywhere (%d), none in region %s", len(nodes), region)
	return nodes, note
}

// keep returns the n nodes for which ok is true, or nodes itself if that
// is all of them.
func keep(nodes []directory.Node, n int, ok func(*directory.Node) bool) []directory.Node {
	if n == len(nodes) {
		return nodes
	}
	kept := make([]directory.Node, 0, n)
	for i := range nodes {
		if ok(&nodes[i]) {
			kept = append(kept, nodes[i])
		}
	}
	return kept
}

// inRegionOf reports whether group is region or in it ("eu" or "eu/..."),
// as directory.Node.Region() == region does, without the copy.
func inRegionOf(group, region string) bool {
	return strings.HasPrefix(group, region) && (len(group) == len(region) || group[len(region)] == '/')
}
