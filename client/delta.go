package client

import (
	"slices"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// applyDelta returns the directory held (received heldAge ago) with the
// changes of the push d (d.Delta) applied, for a session that asked for
// at most max nodes: a node held is replaced by its entry in d, a node
// not held is added while fewer than max are held, and the nodes of
// d.Gone are dropped. The ages of the nodes d leaves alone grow by
// heldAge, so that the result is as of now. held is not changed; with
// no held directory the changes are all there is.
func applyDelta(held *wire.Directory, heldAge time.Duration, d *wire.Directory, max int) *wire.Directory {
	out := &wire.Directory{}
	if held != nil {
		// One copy of the held nodes, with room for the newcomers.
		out.Nodes = append(make([]directory.Node, 0, len(held.Nodes)+len(d.Nodes)), held.Nodes...)
	}
	applyDeltaInPlace(out, heldAge, d, max)
	return out
}

// applyDeltaInPlace is applyDelta changing held itself, which the caller
// owns: a session applies a push to its own copy without allocating,
// unless the push and the copy are large (a whole directory of thousands
// of nodes from an old or hostile node): then it indexes the copy by ID,
// so that a push costs its length, not its length times the copy's.
func applyDeltaInPlace(held *wire.Directory, heldAge time.Duration, d *wire.Directory, max int) {
	held.Service, held.Self = d.Service, d.Self
	if len(d.Gone) > 0 {
		if len(d.Gone)*len(held.Nodes) <= linearDelta {
			held.Nodes = slices.DeleteFunc(held.Nodes, func(n directory.Node) bool { return slices.Contains(d.Gone, n.ID) })
		} else {
			gone := make(map[string]bool, len(d.Gone))
			for _, id := range d.Gone {
				gone[id] = true
			}
			held.Nodes = slices.DeleteFunc(held.Nodes, func(n directory.Node) bool { return gone[n.ID] })
		}
	}
	age := heldAge.Milliseconds()
	for i := range held.Nodes {
		held.Nodes[i].AgeMS += age
	}
	var index map[string]int // held.Nodes by ID, when they are many
	if len(d.Nodes)*len(held.Nodes) > linearDelta {
		index = make(map[string]int, len(held.Nodes)+len(d.Nodes))
		for i, h := range held.Nodes {
			index[h.ID] = i
		}
	}
	for _, n := range d.Nodes {
		var i int
		if index != nil {
			var ok bool
			if i, ok = index[n.ID]; !ok {
				i = -1
			}
		} else {
			i = slices.IndexFunc(held.Nodes, func(h directory.Node) bool { return h.ID == n.ID })
		}
		switch {
		case i >= 0:
			held.Nodes[i] = n
		case max <= 0 || len(held.Nodes) < max:
			if index != nil {
				index[n.ID] = len(held.Nodes)
			}
			held.Nodes = append(held.Nodes, n)
		}
	}
	held.Total = 0
	if d.Total > len(held.Nodes) {
		held.Total = d.Total
	}
}

// linearDelta bounds the comparisons a push may cost by linear search:
// an honest view (ViewSize nodes) and its changes stay below it.
const linearDelta = 1 << 14
