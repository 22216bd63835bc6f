package sim

import (
	"fmt"
	"sort"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// DeltaMax is the most changed nodes a push of changes carries, as the
// node has it (docs/protocol.md, "Pushes of changes"): past it every
// attached session is pushed a whole view instead.
const DeltaMax = 64

// Pushes is what the nodes pushed to their attached sessions over a run:
// one push per moment at which nodes joined or were marked down (the
// changes reach every node after Config.Propagation), to every session
// attached then. Byte counts are of the lines the real encoder
// (wire.Encode) writes for entries as a typical cluster has them (see
// PushBytes), so they are true to a few bytes.
type Pushes struct {
	// Count is how many pushes went out; Sessions how many sessions were
	// pushed to, summed over the pushes; Whole how many of those pushes
	// were whole views because more than DeltaMax nodes changed at once.
	Count    int `json:"count"`
	Sessions int `json:"sessions"`
	Whole    int `json:"whole"`
	// Bytes is what was pushed: a push of changes to each session where
	// it carries at most DeltaMax nodes, else a whole view. ViewBytes is
	// what pushing a whole view every time (clients that do not ask for
	// deltas) would have cost.
	Bytes     int64 `json:"bytes"`
	ViewBytes int64 `json:"view_bytes"`
	// Each is every push, in order.
	Each []Push `json:"each,omitempty"`
}

// Push is one push of changes to every session attached at the time.
type Push struct {
	// At is when it reached the sessions, in seconds; Deaths and Joins
	// the changes it carried (nodes marked down, nodes that joined).
	At     float64 `json:"at_s"`
	Deaths int     `json:"deaths"`
	Joins  int     `json:"joins"`
	// Sessions is how many sessions it went to; Whole says it was a
	// whole view to each because more than DeltaMax nodes changed.
	Sessions int  `json:"sessions"`
	Whole    bool `json:"whole"`
	// Line and ViewLine are the bytes to one session of the push and of
	// a whole view (the same when Whole).
	Line     int `json:"line"`
	ViewLine int `json:"view_line"`
}

// push is one push of changes: it reaches the sessions attached at at.
type push struct {
	at            int64
	deaths, joins int
}

func (p *push) changed() int { return p.deaths + p.joins }
func (p *push) whole() bool  { return p.changed() > DeltaMax }

// addPush records changes that reach the sessions at at, in one push
// with any others at the same moment not pushed yet.
func (r *run) addPush(at int64, deaths, joins int) {
	i := r.nextPush + sort.Search(len(r.pushes)-r.nextPush, func(i int) bool { return r.pushes[r.nextPush+i].at >= at })
	if i < len(r.pushes) && r.pushes[i].at == at {
		r.pushes[i].deaths += deaths
		r.pushes[i].joins += joins
		return
	}
	r.pushes = append(r.pushes, push{})
	copy(r.pushes[i+1:], r.pushes[i:])
	r.pushes[i] = push{at: at, deaths: deaths, joins: joins}
}

// deliver counts push p going to every session attached now.
func (r *run) deliver(p *push) {
	listed := 0
	for i := range r.live {
		if r.joinAt[i] <= p.at {
			listed++
		}
	}
	delta, view, err := PushBytes(listed, p.deaths, p.joins, r.cfg.ViewSize)
	if err != nil {
		panic(err) // typical entries always encode
	}
	line := delta
	if p.whole() {
		line = view
	}
	n := int64(r.attached)
	ps := &r.res.Pushes
	ps.Count++
	ps.Sessions += r.attached
	ps.ViewBytes += n * int64(view)
	ps.Bytes += n * int64(line)
	if p.whole() {
		ps.Whole++
	}
	ps.Each = append(ps.Each, Push{
		At: float64(p.at) / 1e9, Deaths: p.deaths, Joins: p.joins,
		Sessions: r.attached, Whole: p.whole(), Line: line, ViewLine: view,
	})
}

// typicalService names the service in the typical lines of PushBytes.
const typicalService = "chat.example.com"

// typicalNode is node i's entry as a typical cluster has it: an ID, an
// IPv4 client address and HTTP address, a zone, a version and heartbeat
// interval, users and capacity in the hundreds and thousands.
func typicalNode(i int, status directory.Status) directory.Node {
	ip := fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
	return directory.Node{
		ID: fmt.Sprintf("node-%05d", i), Addr: ip + ":7070", HTTP: ip + ":7071",
		Group: "eu/a", Status: status, Users: 437, Capacity: 1000,
		Version: "1.4.0", HeartbeatMS: 2000, AgeMS: 1234,
	}
}

// PushBytes returns the bytes of the two lines a node of a cluster of
// total listed nodes can push to an attached session when deaths nodes
// have been marked down and joins have joined: delta, a push of changes
// (their entries, "total" and "delta", as docs/protocol.md has it), and
// view, a whole view of at most limit nodes (limit <= 0: as many as fit
// in one line, as for a client that sets no max). Both are measured with
// wire.Encode over typical entries (typicalNode), newline included.
func PushBytes(total, deaths, joins, limit int) (delta, view int, err error) {
	self := typicalNode(0, directory.Up).ID
	changed := make([]directory.Node, 0, deaths+joins)
	for i := range deaths {
		changed = append(changed, typicalNode(1+i, directory.Down))
	}
	for i := range joins {
		n := typicalNode(total-joins+i, directory.Up)
		n.Users, n.AgeMS = 0, 3
		changed = append(changed, n)
	}
	line, err := wire.Encode(wire.DirectoryMessage(&wire.Directory{
		Service: typicalService, Self: self, Nodes: changed, Total: total, Delta: true,
	}))
	if err != nil {
		return 0, 0, fmt.Errorf("sim: encoding a push of changes: %w", err)
	}
	delta = len(line)
	view, err = viewBytes(total, limit)
	return delta, view, err
}

// viewBytes is the length of a whole view of at most limit of total
// typical nodes, cut to the nodes that fit in one line as a node cuts it.
func viewBytes(total, limit int) (int, error) {
	want := total
	if limit > 0 {
		want = min(limit, total)
	}
	nodes := make([]directory.Node, want)
	for i := range nodes {
		nodes[i] = typicalNode(i, directory.Up)
	}
	encode := func(k int) ([]byte, error) {
		d := &wire.Directory{Service: typicalService, Self: typicalNode(0, directory.Up).ID, Nodes: nodes[:k]}
		if k < total {
			d.Total = total
		}
		return wire.Encode(wire.DirectoryMessage(d))
	}
	// The most nodes whose line fits (wire.MaxLine without its newline).
	var fitErr error
	k := sort.Search(want, func(k int) bool {
		line, err := encode(k + 1)
		if err != nil {
			fitErr = err
			return true
		}
		return len(line)-1 > wire.MaxLine
	})
	if fitErr != nil {
		return 0, fmt.Errorf("sim: encoding a view: %w", fitErr)
	}
	line, err := encode(max(k, min(1, want)))
	if err != nil {
		return 0, fmt.Errorf("sim: encoding a view: %w", err)
	}
	return len(line), nil
}
