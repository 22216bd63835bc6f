package directory

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Status is a node's state as the directory reports it.
type Status string

// The statuses a node can have. A node sets starting, up, degraded,
// draining and full about itself; down is set by its peers when its
// heartbeats stop (or by the node itself as it leaves). Degraded is a
// node that cannot see a majority of its cluster (or its external bus,
// or, on a bus, sees no majority and gets no answer from the bus's
// JetStream) and steps aside: it admits no sessions until it does again.
const (
	Starting Status = "starting"
	Up       Status = "up"
	Degraded Status = "degraded"
	Draining Status = "draining"
	Full     Status = "full"
	Down     Status = "down"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case Starting, Up, Degraded, Draining, Full, Down:
		return true
	}
	return false
}

// maxStatus is the longest status an entry may carry.
const maxStatus = 16

// longestStatus is a status of maxStatus letters, as long as any.
var longestStatus = Status(strings.Repeat("a", maxStatus))

// wellFormed reports whether s has the shape of a status: one to
// maxStatus lower-case ASCII letters. An entry may carry one this version
// does not know (a later version's, during a rolling upgrade): it is
// taken, and its node counts as reachable but is not available (nothing
// picks it or publishes it), where refusing the entry would leave the
// node's last known status, up perhaps, standing until it was marked
// down.
func (s Status) wellFormed() bool {
	if len(s) == 0 || len(s) > maxStatus {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// Node is one server as clients see it in a directory message.
type Node struct {
	// ID names the node uniquely within its service.
	ID string `json:"id"`
	// Addr is the client-facing TCP address, HOST:PORT.
	Addr string `json:"addr"`
	// HTTP is the node's HTTP address (API, metrics), HOST:PORT; may be empty.
	HTTP string `json:"http,omitempty"`
	// Group is "region/zone", "region" or empty.
	Group string `json:"group,omitempty"`
	// Status is the node's state.
	Status Status `json:"status"`
	// Users counts the sessions attached to the node.
	Users int `json:"users"`
	// Capacity is the most sessions the node admits.
	Capacity int `json:"capacity"`
	// Version is the node's software version.
	Version string `json:"version,omitempty"`
	// HeartbeatMS is how often the node sends its heartbeat, in
	// milliseconds (HeartbeatFor: it slows as the cluster grows); zero
	// means not known (the receiver's own interval). A Table marks the
	// node down after HeartbeatMisses of them without word (never sooner
	// than its Timeouts.DownAfter), and a client may take an AgeMS below
	// it as no news rather than old news.
	HeartbeatMS int64 `json:"hb,omitempty"`
	// AgeMS is how many milliseconds old the last update about this node
	// was when the directory was taken. It is set by Table.Nodes, not sent
	// between servers.
	AgeMS int64 `json:"age_ms"`
}

// Available reports whether a client may attach to n: it is up and has room.
// (Node's methods take a pointer so that scanning a directory of a thousand
// entries copies none of them.)
func (n *Node) Available() bool {
	return n.Status == Up && n.Users < n.Capacity
}

// Spare is the number of sessions n can still take, never below zero.
func (n *Node) Spare() int {
	return max(n.Capacity-n.Users, 0)
}

// Load is users over capacity; a node without capacity counts as full (1).
func (n *Node) Load() float64 {
	if n.Capacity <= 0 {
		return 1
	}
	return float64(n.Users) / float64(n.Capacity)
}

// Region is the first part of Group ("eu" of "eu/a").
func (n Node) Region() string {
	region, _, _ := strings.Cut(n.Group, "/")
	return region
}

// Entry is an update a node publishes about itself: its Node fields plus the
// (Incarnation, Seq) pair that orders updates. A node picks a new, larger
// Incarnation each time it starts and raises Seq with each update, so an
// update is newer than another exactly when its pair is larger.
type Entry struct {
	Node
	// Incarnation identifies one run of the node; larger is newer.
	Incarnation uint64 `json:"inc"`
	// Seq orders the updates within one incarnation; larger is newer.
	Seq uint64 `json:"seq"`
	// Conn names the node's connection to the bus as the NATS server
	// reports it: "SERVER_ID/CLIENT_ID". A peer that hears the server
	// report that connection closed marks the node down at once
	// (Table.Disconnected). Empty: not known.
	Conn string `json:"conn,omitempty"`
}

// Newer reports whether e is ordered after o.
func (e Entry) Newer(o Entry) bool {
	if e.Incarnation != o.Incarnation {
		return e.Incarnation > o.Incarnation
	}
	return e.Seq > o.Seq
}

// Validate reports what is wrong with an entry received from elsewhere.
func (e Entry) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("directory: entry without id")
	case e.Addr == "":
		return fmt.Errorf("directory: entry %q without addr", e.ID)
	case !e.Status.wellFormed():
		return fmt.Errorf("directory: entry %q has malformed status %q (want 1 to %d lower-case letters)", e.ID, e.Status, maxStatus)
	case e.Users < 0 || e.Capacity < 0:
		return fmt.Errorf("directory: entry %q has negative users or capacity", e.ID)
	case e.HeartbeatMS < 0 || e.HeartbeatMS > MaxHeartbeat.Milliseconds():
		return fmt.Errorf("directory: entry %q has heartbeat %d ms outside 0..%d", e.ID, e.HeartbeatMS, MaxHeartbeat.Milliseconds())
	case len(e.Conn) > maxConn:
		return fmt.Errorf("directory: entry %q has a conn of %d bytes, the most is %d", e.ID, len(e.Conn), maxConn)
	}
	return nil
}

// Timeouts say how a Table treats silence from a peer.
type Timeouts struct {
	// DownAfter is how long a peer may stay silent before it is marked down.
	DownAfter time.Duration
	// RemoveAfter is how long a down peer stays in the table before it is
	// forgotten.
	RemoveAfter time.Duration
}

// DefaultTimeouts derives the timeouts from a heartbeat interval: a peer
// that misses three heartbeats is down, and a down peer is kept for a
// minute (at least 100 heartbeats) so clients and operators can see it.
func DefaultTimeouts(heartbeat time.Duration) Timeouts {
	return Timeouts{DownAfter: 3 * heartbeat, RemoveAfter: max(time.Minute, 100*heartbeat)}
}

// Kind says what an Apply or a Tick did to one entry.
type Kind int

// The kinds of change.
const (
	// Stale: the update was not newer than what the table holds; ignored.
	Stale Kind = iota
	// Added: a node the table did not know.
	Added
	// Refreshed: a newer update with the same status (users may differ).
	Refreshed
	// StatusChanged: a newer update, or a timeout, changed the status.
	StatusChanged
	// Removed: a down node was forgotten.
	Removed
	// Refused: the update broke the table's Limits and was dropped;
	// Change.Err says which.
	Refused
)

// String names the kind of change in a word, in lower case ("added").
func (k Kind) String() string {
	switch k {
	case Stale:
		return "stale"
	case Added:
		return "added"
	case Refreshed:
		return "refreshed"
	case StatusChanged:
		return "status"
	case Removed:
		return "removed"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Change describes what happened to one node.
type Change struct {
	ID   string
	Kind Kind
	// From and To are the statuses before and after (From is empty when Added).
	From, To Status
	// Err says why an update was Refused (ErrTooMany, ErrTooLarge,
	// ErrFieldTooLong); nil for every other kind.
	Err error
	// Content reports, for Refreshed, that the node's fields (users,
	// capacity, address...) changed, not only when it was last heard.
	Content bool
}

// Membership reports whether the change alters which nodes clients may pick
// (a node came, went, or changed status), as opposed to a users refresh.
func (c Change) Membership() bool {
	return c.Kind == Added || c.Kind == StatusChanged || c.Kind == Removed
}

type record struct {
	entry Entry
	// size is heldSize(entry.Node), counted against Limits.MaxBytes.
	size int
	// heard is when the last update from the node arrived, by the caller's clock.
	heard time.Time
	// changed is when the entry's content last changed (for age_ms).
	changed time.Time
	// closed is the Conn the bus reported closed (Disconnected): an
	// update naming it was sent before the close and is ignored.
	closed string
}

// Table is one server's view of the directory. See the package doc.
type Table struct {
	self     string
	timeouts Timeouts
	limits   Limits
	records  map[string]*record
	bytes    int // sum of the records' sizes
	// byID is the records in ID order, for Nodes and Entries; nil when a
	// record came or went since it was last sorted.
	byID []*record
}

// Option changes how NewTable builds a table.
type Option func(*Table)

// WithLimits bounds what the table holds (see Limits); without it a table
// holds whatever it is given.
func WithLimits(l Limits) Option {
	return func(t *Table) { t.limits = l }
}

// NewTable returns an empty table for the node named self. The self entry
// is never marked down by Tick: a node knows it is alive.
func NewTable(self string, timeouts Timeouts, opts ...Option) *Table {
	t := &Table{self: self, timeouts: timeouts, records: make(map[string]*record)}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Apply merges an update received at now. An update that is not newer than
// the one held is ignored (Kind Stale), so a late or repeated message never
// overwrites newer state. An update that would break the table's Limits is
// dropped (Kind Refused, with Err saying why); the self entry is never
// refused.
func (t *Table) Apply(e Entry, now time.Time) Change {
	e.AgeMS = 0
	r, ok := t.records[e.ID]
	if ok && (!e.Newer(r.entry) || (r.closed != "" && e.Conn == r.closed)) {
		return Change{ID: e.ID, Kind: Stale, From: r.entry.Status, To: r.entry.Status}
	}
	size := heldSize(e.Node)
	if e.ID != t.self {
		held := 0
		if ok {
			held = r.size
		}
		if err := t.limits.admit(e.Node, ok, len(t.records), t.bytes-held+size); err != nil {
			c := Change{ID: e.ID, Kind: Refused, To: e.Status, Err: err}
			if ok {
				c.From, c.To = r.entry.Status, r.entry.Status
			}
			return c
		}
	}
	if !ok {
		t.records[e.ID] = &record{entry: e, size: size, heard: now, changed: now}
		t.bytes += size
		t.byID = nil
		return Change{ID: e.ID, Kind: Added, To: e.Status}
	}
	from := r.entry.Status
	content := e.Node != r.entry.Node
	if content {
		r.changed = now
	}
	t.bytes += size - r.size
	r.entry = e
	r.size = size
	r.heard = now
	if from != e.Status {
		return Change{ID: e.ID, Kind: StatusChanged, From: from, To: e.Status}
	}
	return Change{ID: e.ID, Kind: Refreshed, From: from, To: e.Status, Content: content}
}

// Tick applies the passage of time up to now: peers silent for DownAfter
// become down, and peers down for RemoveAfter are forgotten. It returns
// what changed, ordered by node ID.
func (t *Table) Tick(now time.Time) []Change {
	var changes []Change
	for id, r := range t.records {
		if id == t.self {
			continue
		}
		silent := now.Sub(r.heard)
		switch {
		case r.entry.Status == Down && now.Sub(r.changed) >= t.timeouts.RemoveAfter && silent >= t.timeouts.RemoveAfter:
			delete(t.records, id)
			t.bytes -= r.size
			t.byID = nil
			changes = append(changes, Change{ID: id, Kind: Removed, From: Down})
		case r.entry.Status != Down && silent >= t.downAfter(r.entry):
			changes = append(changes, Change{ID: id, Kind: StatusChanged, From: r.entry.Status, To: Down})
			r.entry.Status = Down
			r.changed = now
		}
	}
	slices.SortFunc(changes, func(a, b Change) int { return cmp.Compare(a.ID, b.ID) })
	return changes
}

// NextTick returns the earliest time at which Tick would change
// something if nothing else happened first: a peer's silence reaching
// its down-after, or a down peer's removal. ok is false when the table
// holds no peer. A node's loop can sleep until then instead of ticking
// often; an Apply, Disconnected or SetDownAfter may move it, earlier or
// later, so it is asked again after each.
func (t *Table) NextTick() (at time.Time, ok bool) {
	for id, r := range t.records {
		if id == t.self {
			continue
		}
		var due time.Time
		if r.entry.Status == Down {
			due = later(r.changed, r.heard).Add(t.timeouts.RemoveAfter)
		} else {
			due = r.heard.Add(t.downAfter(r.entry))
		}
		if !ok || due.Before(at) {
			at, ok = due, true
		}
	}
	return at, ok
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// SetDownAfter changes Timeouts.DownAfter, the least silence that makes
// a peer down. A node whose own heartbeat slowed with the cluster's size
// raises it to that many of its own heartbeats: a newcomer announces the
// quick heartbeat of a node that knows no peer yet, and on a busy
// machine it would flap down and back many times before it announced
// the cluster's pace (each flap a push to every attached client).
func (t *Table) SetDownAfter(d time.Duration) { t.timeouts.DownAfter = d }

// downAfter is how long e's node may stay silent before it is down:
// HeartbeatMisses of the heartbeats it announced, never less than
// Timeouts.DownAfter.
func (t *Table) downAfter(e Entry) time.Duration {
	return max(t.timeouts.DownAfter, HeartbeatMisses*time.Duration(e.HeartbeatMS)*time.Millisecond)
}

// Disconnected applies the bus's word, at now, that the connection conn
// (an Entry.Conn) closed: every node whose entry names it is down at once,
// without waiting for its heartbeats to stop, and any update still naming
// that connection (sent before the close, arriving late) is ignored as
// stale. A node that is alive reconnects and publishes its entry naming
// the new connection, which is taken as usual. It returns the changes, in
// ID order; none when no node held names conn (or it is this node, or
// down already). Only one node's entries name a connection unless one
// lies: that one goes down with the node it names, which goes down as it
// should.
func (t *Table) Disconnected(conn string, now time.Time) []Change {
	if conn == "" {
		return nil
	}
	var out []Change
	for id, r := range t.records {
		if r.entry.Conn != conn || id == t.self {
			continue
		}
		r.closed = conn
		if r.entry.Status == Down {
			continue
		}
		out = append(out, Change{ID: id, Kind: StatusChanged, From: r.entry.Status, To: Down})
		r.entry.Status = Down
		r.changed = now
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Get returns the entry held for id.
func (t *Table) Get(id string) (Entry, bool) {
	r, ok := t.records[id]
	if !ok {
		return Entry{}, false
	}
	return r.entry, true
}

// Len is the number of nodes held, down ones included.
func (t *Table) Len() int { return len(t.records) }

// Bytes is what the nodes held are counted for against Limits.MaxBytes:
// the sum of their EncodedSize with each one's numbers (users, capacity,
// heartbeat) at their widest and its status at the longest. That is at
// least as many bytes as they take in a directory message, and it
// changes only when a node's strings do: at the bound, the heartbeats
// of the nodes held still fit, whatever they say.
func (t *Table) Bytes() int { return t.bytes }

// Nodes returns a copy of the directory as of now, sorted by ID, with AgeMS
// set to the time since each entry last changed or was heard from.
func (t *Table) Nodes(now time.Time) []Node {
	nodes := make([]Node, 0, len(t.records))
	for _, r := range t.sorted() {
		n := r.entry.Node
		n.AgeMS = max(now.Sub(r.heard).Milliseconds(), 0)
		nodes = append(nodes, n)
	}
	return nodes
}

// Entries returns a copy of every entry held, sorted by ID.
func (t *Table) Entries() []Entry {
	entries := make([]Entry, 0, len(t.records))
	for _, r := range t.sorted() {
		entries = append(entries, r.entry)
	}
	return entries
}

// sorted returns the records in ID order, sorting them only after one
// came or went: a view is taken many times between changes of
// membership, and at a few hundred nodes sorting was most of its cost.
func (t *Table) sorted() []*record {
	if t.byID == nil {
		t.byID = make([]*record, 0, len(t.records))
		for _, r := range t.records {
			t.byID = append(t.byID, r)
		}
		slices.SortFunc(t.byID, func(a, b *record) int { return cmp.Compare(a.entry.ID, b.entry.ID) })
	}
	return t.byID
}

// StatusFor is the status a node reports about itself, given whether it has
// finished starting, whether it has lost its cluster's majority, whether
// it is draining, and its users and capacity.
func StatusFor(ready, degraded, draining bool, users, capacity int) Status {
	switch {
	case !ready:
		return Starting
	case degraded:
		return Degraded
	case draining:
		return Draining
	case users >= capacity:
		return Full
	}
	return Up
}
