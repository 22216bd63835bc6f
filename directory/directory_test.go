package directory_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
)

// t0 is the start of every test's clock; at(d) is d after it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// timeouts are short and distinct so that off-by-one errors in Tick show.
var timeouts = directory.Timeouts{DownAfter: 600 * time.Millisecond, RemoveAfter: 10 * time.Second}

// entry is an update from node id with the pair (inc, seq).
func entry(id string, inc, seq uint64, status directory.Status) directory.Entry {
	return directory.Entry{
		Node: directory.Node{
			ID: id, Addr: id + ".example:7000", Group: "eu/a",
			Status: status, Users: 3, Capacity: 100, Version: "1.0.0",
		},
		Incarnation: inc,
		Seq:         seq,
	}
}

func withUsers(e directory.Entry, users int) directory.Entry {
	e.Users = users
	return e
}

func TestApply(t *testing.T) {
	tests := []struct {
		name   string
		before []directory.Entry // applied first, in order
		in     directory.Entry
		want   directory.Change
		// wantHeld is what Get returns for in.ID afterwards.
		wantHeld directory.Entry
	}{
		{
			name:     "unknown node is added",
			in:       entry("b", 1, 1, directory.Up),
			want:     directory.Change{ID: "b", Kind: directory.Added, To: directory.Up},
			wantHeld: entry("b", 1, 1, directory.Up),
		},
		{
			name:     "unknown node announced down is added as down",
			in:       entry("b", 1, 1, directory.Down),
			want:     directory.Change{ID: "b", Kind: directory.Added, To: directory.Down},
			wantHeld: entry("b", 1, 1, directory.Down),
		},
		{
			name:     "newer seq with the same status refreshes",
			before:   []directory.Entry{entry("b", 1, 1, directory.Up)},
			in:       withUsers(entry("b", 1, 2, directory.Up), 50),
			want:     directory.Change{ID: "b", Kind: directory.Refreshed, From: directory.Up, To: directory.Up, Content: true},
			wantHeld: withUsers(entry("b", 1, 2, directory.Up), 50),
		},
		{
			name:     "newer seq with identical content still refreshes",
			before:   []directory.Entry{entry("b", 1, 1, directory.Up)},
			in:       entry("b", 1, 2, directory.Up),
			want:     directory.Change{ID: "b", Kind: directory.Refreshed, From: directory.Up, To: directory.Up},
			wantHeld: entry("b", 1, 2, directory.Up),
		},
		{
			name:     "newer seq with another status changes status",
			before:   []directory.Entry{entry("b", 1, 1, directory.Up)},
			in:       entry("b", 1, 2, directory.Draining),
			want:     directory.Change{ID: "b", Kind: directory.StatusChanged, From: directory.Up, To: directory.Draining},
			wantHeld: entry("b", 1, 2, directory.Draining),
		},
		{
			name:     "much newer seq wins",
			before:   []directory.Entry{entry("b", 1, 1, directory.Starting)},
			in:       entry("b", 1, 1000, directory.Full),
			want:     directory.Change{ID: "b", Kind: directory.StatusChanged, From: directory.Starting, To: directory.Full},
			wantHeld: entry("b", 1, 1000, directory.Full),
		},
		{
			name:     "lower seq is stale",
			before:   []directory.Entry{entry("b", 1, 5, directory.Up)},
			in:       entry("b", 1, 4, directory.Draining),
			want:     directory.Change{ID: "b", Kind: directory.Stale, From: directory.Up, To: directory.Up},
			wantHeld: entry("b", 1, 5, directory.Up),
		},
		{
			name:     "duplicate delivery is stale",
			before:   []directory.Entry{entry("b", 1, 5, directory.Up)},
			in:       entry("b", 1, 5, directory.Up),
			want:     directory.Change{ID: "b", Kind: directory.Stale, From: directory.Up, To: directory.Up},
			wantHeld: entry("b", 1, 5, directory.Up),
		},
		{
			name:     "same pair with other content is stale: the first one stays",
			before:   []directory.Entry{entry("b", 1, 5, directory.Up)},
			in:       withUsers(entry("b", 1, 5, directory.Full), 100),
			want:     directory.Change{ID: "b", Kind: directory.Stale, From: directory.Up, To: directory.Up},
			wantHeld: entry("b", 1, 5, directory.Up),
		},
		{
			name:     "higher incarnation wins with a lower seq",
			before:   []directory.Entry{entry("b", 1, 900, directory.Draining)},
			in:       entry("b", 2, 1, directory.Starting),
			want:     directory.Change{ID: "b", Kind: directory.StatusChanged, From: directory.Draining, To: directory.Starting},
			wantHeld: entry("b", 2, 1, directory.Starting),
		},
		{
			name:     "higher incarnation with the same status refreshes",
			before:   []directory.Entry{entry("b", 1, 9, directory.Up)},
			in:       withUsers(entry("b", 2, 0, directory.Up), 0),
			want:     directory.Change{ID: "b", Kind: directory.Refreshed, From: directory.Up, To: directory.Up, Content: true},
			wantHeld: withUsers(entry("b", 2, 0, directory.Up), 0),
		},
		{
			name:     "older incarnation never overwrites, whatever its seq",
			before:   []directory.Entry{entry("b", 2, 1, directory.Up)},
			in:       entry("b", 1, 1<<63, directory.Full),
			want:     directory.Change{ID: "b", Kind: directory.Stale, From: directory.Up, To: directory.Up},
			wantHeld: entry("b", 2, 1, directory.Up),
		},
		{
			name: "out of order delivery keeps the newest",
			before: []directory.Entry{
				entry("b", 1, 3, directory.Full),
				entry("b", 1, 1, directory.Starting),
			},
			in:       entry("b", 1, 2, directory.Up),
			want:     directory.Change{ID: "b", Kind: directory.Stale, From: directory.Full, To: directory.Full},
			wantHeld: entry("b", 1, 3, directory.Full),
		},
		{
			name:     "self is merged like any node",
			before:   []directory.Entry{entry("a", 1, 1, directory.Starting)},
			in:       entry("a", 1, 2, directory.Up),
			want:     directory.Change{ID: "a", Kind: directory.StatusChanged, From: directory.Starting, To: directory.Up},
			wantHeld: entry("a", 1, 2, directory.Up),
		},
		{
			name:   "a sender's AgeMS is not stored",
			before: []directory.Entry{entry("b", 1, 1, directory.Up)},
			in: func() directory.Entry {
				e := entry("b", 1, 2, directory.Up)
				e.AgeMS = 12345
				return e
			}(),
			want:     directory.Change{ID: "b", Kind: directory.Refreshed, From: directory.Up, To: directory.Up},
			wantHeld: entry("b", 1, 2, directory.Up),
		},
		{
			name:     "other nodes do not interfere",
			before:   []directory.Entry{entry("c", 9, 9, directory.Full)},
			in:       entry("b", 1, 1, directory.Up),
			want:     directory.Change{ID: "b", Kind: directory.Added, To: directory.Up},
			wantHeld: entry("b", 1, 1, directory.Up),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := directory.NewTable("a", timeouts)
			for i, e := range tt.before {
				tab.Apply(e, at(time.Duration(i)*time.Millisecond))
			}
			got := tab.Apply(tt.in, at(time.Second))
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Apply(%+v) change (-got +want):\n%s", tt.in, diff)
			}
			held, ok := tab.Get(tt.in.ID)
			if !ok {
				t.Fatalf("Get(%q) after Apply: not found", tt.in.ID)
			}
			if diff := cmp.Diff(held, tt.wantHeld); diff != "" {
				t.Errorf("Get(%q) after Apply (-got +want):\n%s", tt.in.ID, diff)
			}
		})
	}
}

// TestApplyOrderIndependent delivers the same updates in every order: the
// table must always end with the newest one, and the newest must be the
// only one that ever reports a change after it arrived.
func TestApplyOrderIndependent(t *testing.T) {
	updates := []directory.Entry{
		entry("b", 1, 1, directory.Starting),
		entry("b", 1, 2, directory.Up),
		withUsers(entry("b", 1, 7, directory.Up), 40),
		entry("b", 2, 0, directory.Starting),
		entry("b", 2, 3, directory.Draining), // the newest
	}
	newest := updates[len(updates)-1]
	n := 0
	permute(len(updates), func(order []int) {
		n++
		tab := directory.NewTable("a", timeouts)
		seenNewest := false
		for i, k := range order {
			c := tab.Apply(updates[k], at(time.Duration(i)*time.Millisecond))
			if seenNewest && c.Kind != directory.Stale {
				t.Errorf("order %v: update %d applied after the newest: %+v", order, k, c)
			}
			seenNewest = seenNewest || k == len(updates)-1
			// Duplicate delivery of every update changes nothing.
			if dup := tab.Apply(updates[k], at(time.Duration(i)*time.Millisecond)); dup.Kind != directory.Stale {
				t.Errorf("order %v: duplicate of update %d: %+v, want stale", order, k, dup)
			}
		}
		if diff := cmp.Diff(tab.Entries(), []directory.Entry{newest}); diff != "" {
			t.Errorf("order %v: entries (-got +want):\n%s", order, diff)
		}
	})
	if n != 120 {
		t.Fatalf("permute visited %d orders, want 120", n)
	}
}

// permute calls f with every permutation of 0..n-1 (Heap's algorithm).
func permute(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	var gen func(k int)
	gen = func(k int) {
		if k == 1 {
			f(p)
			return
		}
		for i := 0; i < k-1; i++ {
			gen(k - 1)
			if k%2 == 0 {
				p[i], p[k-1] = p[k-1], p[i]
			} else {
				p[0], p[k-1] = p[k-1], p[0]
			}
		}
		gen(k - 1)
	}
	gen(n)
}

// timed is one step of an expiry case: an update applied at a time.
type timed struct {
	at time.Duration
	e  directory.Entry
}

func TestTick(t *testing.T) {
	down, remove := timeouts.DownAfter, timeouts.RemoveAfter
	tests := []struct {
		name  string
		in    []timed         // updates applied before the ticks
		ticks []time.Duration // earlier ticks; their changes are not checked
		at    time.Duration   // the tick under test
		want  []directory.Change
		// wantEntries is the table after the tick under test.
		wantEntries []directory.Entry
	}{
		{
			name:        "peer silent just under DownAfter stays up",
			in:          []timed{{0, entry("b", 1, 1, directory.Up)}},
			at:          down - time.Nanosecond,
			want:        nil,
			wantEntries: []directory.Entry{entry("b", 1, 1, directory.Up)},
		},
		{
			name:        "peer silent exactly DownAfter goes down",
			in:          []timed{{0, entry("b", 1, 1, directory.Up)}},
			at:          down,
			want:        []directory.Change{{ID: "b", Kind: directory.StatusChanged, From: directory.Up, To: directory.Down}},
			wantEntries: []directory.Entry{entry("b", 1, 1, directory.Down)},
		},
		{
			name:        "peer found silent long after DownAfter goes down, not away",
			in:          []timed{{0, entry("b", 1, 1, directory.Full)}},
			at:          time.Hour,
			want:        []directory.Change{{ID: "b", Kind: directory.StatusChanged, From: directory.Full, To: directory.Down}},
			wantEntries: []directory.Entry{entry("b", 1, 1, directory.Down)},
		},
		{
			name: "every live status goes down",
			in: []timed{
				{0, entry("s", 1, 1, directory.Starting)},
				{0, entry("d", 1, 1, directory.Draining)},
				{0, entry("f", 1, 1, directory.Full)},
			},
			at: down,
			want: []directory.Change{
				{ID: "d", Kind: directory.StatusChanged, From: directory.Draining, To: directory.Down},
				{ID: "f", Kind: directory.StatusChanged, From: directory.Full, To: directory.Down},
				{ID: "s", Kind: directory.StatusChanged, From: directory.Starting, To: directory.Down},
			},
			wantEntries: []directory.Entry{
				entry("d", 1, 1, directory.Down),
				entry("f", 1, 1, directory.Down),
				entry("s", 1, 1, directory.Down),
			},
		},
		{
			name:        "self never goes down",
			in:          []timed{{0, entry("a", 1, 1, directory.Up)}},
			ticks:       []time.Duration{down, remove},
			at:          remove + down + time.Hour,
			want:        nil,
			wantEntries: []directory.Entry{entry("a", 1, 1, directory.Up)},
		},
		{
			name:        "self that announced down is never removed",
			in:          []timed{{0, entry("a", 1, 1, directory.Down)}},
			ticks:       []time.Duration{remove},
			at:          2 * remove,
			want:        nil,
			wantEntries: []directory.Entry{entry("a", 1, 1, directory.Down)},
		},
		{
			name: "a newer update resets the silence",
			in: []timed{
				{0, entry("b", 1, 1, directory.Up)},
				{500 * time.Millisecond, entry("b", 1, 2, directory.Up)},
			},
			at:          500*time.Millisecond + down - time.Nanosecond,
			want:        nil,
			wantEntries: []directory.Entry{entry("b", 1, 2, directory.Up)},
		},
		{
			name: "a duplicate does not reset the silence",
			in: []timed{
				{0, entry("b", 1, 1, directory.Up)},
				{500 * time.Millisecond, entry("b", 1, 1, directory.Up)},
			},
			at:          down,
			want:        []directory.Change{{ID: "b", Kind: directory.StatusChanged, From: directory.Up, To: directory.Down}},
			wantEntries: []directory.Entry{entry("b", 1, 1, directory.Down)},
		},
		{
			name:        "down peer is kept until RemoveAfter",
			in:          []timed{{0, entry("b", 1, 1, directory.Up)}},
			ticks:       []time.Duration{down},
			at:          down + remove - time.Nanosecond,
			want:        nil,
			wantEntries: []directory.Entry{entry("b", 1, 1, directory.Down)},
		},
		{
			name:        "down peer is removed RemoveAfter after it went down",
			in:          []timed{{0, entry("b", 1, 1, directory.Up)}},
			ticks:       []time.Duration{down},
			at:          down + remove,
			want:        []directory.Change{{ID: "b", Kind: directory.Removed, From: directory.Down}},
			wantEntries: []directory.Entry{},
		},
		{
			name:        "peer that announced down is removed after RemoveAfter",
			in:          []timed{{0, entry("b", 1, 1, directory.Down)}},
			ticks:       []time.Duration{remove - time.Nanosecond},
			at:          remove,
			want:        []directory.Change{{ID: "b", Kind: directory.Removed, From: directory.Down}},
			wantEntries: []directory.Entry{},
		},
		{
			name: "peer that keeps announcing down is kept",
			in: []timed{
				{0, entry("b", 1, 1, directory.Down)},
				{9 * time.Second, entry("b", 1, 2, directory.Down)},
			},
			at:          remove,
			want:        nil,
			wantEntries: []directory.Entry{entry("b", 1, 2, directory.Down)},
		},
		{
			name: "changes are sorted by ID",
			in: []timed{
				{0, entry("a", 1, 1, directory.Up)}, // self
				{0, entry("zed", 1, 1, directory.Down)},
				{0, entry("b", 1, 1, directory.Down)},
				{remove, entry("m", 1, 1, directory.Up)},
				{remove, entry("c", 1, 1, directory.Draining)},
				{remove, entry("x", 1, 1, directory.Up)},
				{remove + down, entry("x", 1, 2, directory.Up)}, // still fresh
			},
			at: remove + down,
			want: []directory.Change{
				{ID: "b", Kind: directory.Removed, From: directory.Down},
				{ID: "c", Kind: directory.StatusChanged, From: directory.Draining, To: directory.Down},
				{ID: "m", Kind: directory.StatusChanged, From: directory.Up, To: directory.Down},
				{ID: "zed", Kind: directory.Removed, From: directory.Down},
			},
			wantEntries: []directory.Entry{
				entry("a", 1, 1, directory.Up),
				entry("c", 1, 1, directory.Down),
				entry("m", 1, 1, directory.Down),
				entry("x", 1, 2, directory.Up),
			},
		},
		{
			name:        "empty table",
			at:          time.Hour,
			want:        nil,
			wantEntries: []directory.Entry{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := directory.NewTable("a", timeouts)
			for _, s := range tt.in {
				tab.Apply(s.e, at(s.at))
			}
			for _, d := range tt.ticks {
				tab.Tick(at(d))
			}
			got := tab.Tick(at(tt.at))
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Tick(+%v) (-got +want):\n%s", tt.at, diff)
			}
			if diff := cmp.Diff(tab.Entries(), tt.wantEntries); diff != "" {
				t.Errorf("Entries after Tick(+%v) (-got +want):\n%s", tt.at, diff)
			}
			if tab.Len() != len(tt.wantEntries) {
				t.Errorf("Len() = %d, want %d", tab.Len(), len(tt.wantEntries))
			}
		})
	}
}

func TestDownPeerComesBack(t *testing.T) {
	down, remove := timeouts.DownAfter, timeouts.RemoveAfter
	back := down + remove/2 // when the update below arrives
	tests := []struct {
		name string
		in   directory.Entry // applied at back, after b was marked down
		want directory.Change
		// A later tick and what it must report.
		tick     time.Duration
		wantTick []directory.Change
	}{
		{
			name:     "newer seq comes back up with a fresh DownAfter",
			in:       entry("b", 1, 2, directory.Up),
			want:     directory.Change{ID: "b", Kind: directory.StatusChanged, From: directory.Down, To: directory.Up},
			tick:     back + down - time.Nanosecond,
			wantTick: nil,
		},
		{
			name:     "newer seq goes down again after DownAfter",
			in:       entry("b", 1, 2, directory.Up),
			want:     directory.Change{ID: "b", Kind: directory.StatusChanged, From: directory.Down, To: directory.Up},
			tick:     back + down,
			wantTick: []directory.Change{{ID: "b", Kind: directory.StatusChanged, From: directory.Up, To: directory.Down}},
		},
		{
			name:     "new incarnation comes back",
			in:       entry("b", 2, 0, directory.Starting),
			want:     directory.Change{ID: "b", Kind: directory.StatusChanged, From: directory.Down, To: directory.Starting},
			tick:     down + remove,
			wantTick: []directory.Change{{ID: "b", Kind: directory.StatusChanged, From: directory.Starting, To: directory.Down}},
		},
		{
			name:     "newer update announcing down keeps it until RemoveAfter after that",
			in:       entry("b", 1, 2, directory.Down),
			want:     directory.Change{ID: "b", Kind: directory.Refreshed, From: directory.Down, To: directory.Down},
			tick:     back + remove,
			wantTick: []directory.Change{{ID: "b", Kind: directory.Removed, From: directory.Down}},
		},
		{
			name:     "duplicate of the last update stays down and is removed on time",
			in:       entry("b", 1, 1, directory.Up),
			want:     directory.Change{ID: "b", Kind: directory.Stale, From: directory.Down, To: directory.Down},
			tick:     down + remove,
			wantTick: []directory.Change{{ID: "b", Kind: directory.Removed, From: directory.Down}},
		},
		{
			name:     "older update stays down",
			in:       entry("b", 1, 0, directory.Up),
			want:     directory.Change{ID: "b", Kind: directory.Stale, From: directory.Down, To: directory.Down},
			tick:     down + remove - time.Nanosecond,
			wantTick: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := directory.NewTable("a", timeouts)
			tab.Apply(entry("b", 1, 1, directory.Up), at(0))
			wantDown := []directory.Change{{ID: "b", Kind: directory.StatusChanged, From: directory.Up, To: directory.Down}}
			if diff := cmp.Diff(tab.Tick(at(down)), wantDown); diff != "" {
				t.Fatalf("Tick(+%v) (-got +want):\n%s", down, diff)
			}
			got := tab.Apply(tt.in, at(back))
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Fatalf("Apply after down (-got +want):\n%s", diff)
			}
			if held, _ := tab.Get("b"); held.Status != tt.want.To {
				t.Errorf("held status %q, want %q", held.Status, tt.want.To)
			}
			if diff := cmp.Diff(tab.Tick(at(tt.tick)), tt.wantTick); diff != "" {
				t.Errorf("Tick(+%v) (-got +want):\n%s", tt.tick, diff)
			}
		})
	}
}

func TestNodes(t *testing.T) {
	tab := directory.NewTable("a", timeouts)
	if got := tab.Nodes(at(0)); got == nil || len(got) != 0 {
		t.Errorf("Nodes of an empty table = %#v, want an empty non-nil slice", got)
	}
	tab.Apply(entry("c", 1, 1, directory.Up), at(0))
	tab.Apply(entry("a", 1, 1, directory.Up), at(1500*time.Microsecond)) // 1.5ms
	tab.Apply(entry("b", 1, 1, directory.Up), at(100*time.Millisecond))
	tab.Apply(entry("c", 1, 2, directory.Full), at(50*time.Millisecond))
	tab.Apply(entry("c", 1, 1, directory.Up), at(90*time.Millisecond)) // stale: not heard

	node := func(id string, status directory.Status, age int64) directory.Node {
		n := entry(id, 0, 0, status).Node
		n.AgeMS = age
		return n
	}
	tests := []struct {
		name string
		at   time.Duration
		want []directory.Node
	}{
		{
			name: "ages since last heard, sorted by ID",
			at:   200 * time.Millisecond,
			want: []directory.Node{
				node("a", directory.Up, 198), // 198.5ms truncates
				node("b", directory.Up, 100),
				node("c", directory.Full, 150),
			},
		},
		{
			name: "a clock before the update gives age 0, never negative",
			at:   0,
			want: []directory.Node{
				node("a", directory.Up, 0),
				node("b", directory.Up, 0),
				node("c", directory.Full, 0),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tab.Nodes(at(tt.at))
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Nodes(+%v) (-got +want):\n%s", tt.at, diff)
			}
		})
	}

	t.Run("copies", func(t *testing.T) {
		nodes := tab.Nodes(at(0))
		nodes[0].Status = directory.Down
		entries := tab.Entries()
		entries[1].Users = -1
		if e, _ := tab.Get("a"); e.Status != directory.Up {
			t.Errorf("changing Nodes' result changed the table: a is %q", e.Status)
		}
		if e, _ := tab.Get("b"); e.Users != 3 {
			t.Errorf("changing Entries' result changed the table: b has %d users", e.Users)
		}
	})
	t.Run("entries keep inc and seq and have no age", func(t *testing.T) {
		want := []directory.Entry{
			entry("a", 1, 1, directory.Up),
			entry("b", 1, 1, directory.Up),
			entry("c", 1, 2, directory.Full),
		}
		if diff := cmp.Diff(tab.Entries(), want); diff != "" {
			t.Errorf("Entries (-got +want):\n%s", diff)
		}
	})
	t.Run("order follows arrivals and removals", func(t *testing.T) {
		tab := directory.NewTable("a", timeouts)
		ids := func(nodes []directory.Node) []string {
			var out []string
			for _, n := range nodes {
				out = append(out, n.ID)
			}
			return out
		}
		steps := []struct {
			name string
			do   func()
			want []string
		}{
			{"two arrive", func() {
				tab.Apply(entry("d", 1, 1, directory.Up), at(0))
				tab.Apply(entry("b", 1, 1, directory.Up), at(0))
			}, []string{"b", "d"}},
			{"one arrives between them", func() { tab.Apply(entry("c", 1, 1, directory.Up), at(0)) }, []string{"b", "c", "d"}},
			{"a status changes", func() { tab.Tick(at(time.Second)) }, []string{"b", "c", "d"}},
			{"d is forgotten", func() {
				tab.Apply(entry("b", 1, 2, directory.Up), at(11900*time.Millisecond))
				tab.Apply(entry("c", 1, 2, directory.Up), at(11900*time.Millisecond))
				tab.Tick(at(12 * time.Second))
			}, []string{"b", "c"}},
			{"one arrives first", func() { tab.Apply(entry("a0", 1, 1, directory.Up), at(12*time.Second)) }, []string{"a0", "b", "c"}},
		}
		for _, st := range steps {
			st.do()
			if diff := cmp.Diff(ids(tab.Nodes(at(12*time.Second))), st.want); diff != "" {
				t.Errorf("%s: Nodes (-got +want):\n%s", st.name, diff)
			}
			var entries []string
			for _, e := range tab.Entries() {
				entries = append(entries, e.ID)
			}
			if diff := cmp.Diff(entries, st.want); diff != "" {
				t.Errorf("%s: Entries (-got +want):\n%s", st.name, diff)
			}
		}
	})
	t.Run("get unknown", func(t *testing.T) {
		if e, ok := tab.Get("nope"); ok || e != (directory.Entry{}) {
			t.Errorf("Get(nope) = %+v, %v; want zero, false", e, ok)
		}
	})
}

func TestValidate(t *testing.T) {
	valid := entry("b", 1, 1, directory.Up)
	tests := []struct {
		name string
		in   func(e *directory.Entry)
		want string // a substring of the error, "" for none
	}{
		{name: "valid", in: func(e *directory.Entry) {}},
		{name: "every status is valid", in: func(e *directory.Entry) { e.Status = directory.Down }},
		{name: "zero users and capacity", in: func(e *directory.Entry) { e.Users, e.Capacity = 0, 0 }},
		{name: "more users than capacity", in: func(e *directory.Entry) { e.Users = 101 }},
		{name: "no http, group or version", in: func(e *directory.Entry) { e.HTTP, e.Group, e.Version = "", "", "" }},
		{name: "no id", in: func(e *directory.Entry) { e.ID = "" }, want: "directory: entry without id"},
		{name: "no addr", in: func(e *directory.Entry) { e.Addr = "" }, want: `entry "b" without addr`},
		{name: "a later version's status", in: func(e *directory.Entry) { e.Status = "resting" }},
		{name: "empty status", in: func(e *directory.Entry) { e.Status = "" }, want: `malformed status ""`},
		{name: "status in capitals", in: func(e *directory.Entry) { e.Status = "UP" }, want: `malformed status "UP"`},
		{name: "status not a word", in: func(e *directory.Entry) { e.Status = "up!" }, want: `malformed status "up!"`},
		{name: "status too long", in: func(e *directory.Entry) { e.Status = "abcdefghijklmnopq" }, want: `malformed status`},
		{name: "negative users", in: func(e *directory.Entry) { e.Users = -1 }, want: "negative users or capacity"},
		{name: "negative capacity", in: func(e *directory.Entry) { e.Capacity = -1 }, want: "negative users or capacity"},
		{name: "id checked first", in: func(e *directory.Entry) { *e = directory.Entry{} }, want: "without id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid
			tt.in(&e)
			err := e.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Errorf("Validate() = nil, want an error with %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestStatusFor(t *testing.T) {
	type in struct {
		ready, degraded, draining bool
		users, capacity           int
	}
	tests := []struct {
		name string
		in   in
		want directory.Status
	}{
		{"not ready", in{false, false, false, 0, 10}, directory.Starting},
		{"not ready beats degraded, draining and full", in{false, true, true, 10, 10}, directory.Starting},
		{"degraded", in{true, true, false, 0, 10}, directory.Degraded},
		{"degraded beats draining and full", in{true, true, true, 10, 10}, directory.Degraded},
		{"draining", in{true, false, true, 0, 10}, directory.Draining},
		{"draining beats full", in{true, false, true, 10, 10}, directory.Draining},
		{"room", in{true, false, false, 9, 10}, directory.Up},
		{"empty", in{true, false, false, 0, 10}, directory.Up},
		{"exactly full", in{true, false, false, 10, 10}, directory.Full},
		{"over full", in{true, false, false, 11, 10}, directory.Full},
		{"no capacity", in{true, false, false, 0, 0}, directory.Full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := directory.StatusFor(tt.in.ready, tt.in.degraded, tt.in.draining, tt.in.users, tt.in.capacity)
			if got != tt.want {
				t.Errorf("StatusFor(%+v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNodeHelpers(t *testing.T) {
	type want struct {
		Available bool
		Spare     int
		Load      float64
		Region    string
	}
	tests := []struct {
		name string
		in   directory.Node
		want want
	}{
		{"up with room", directory.Node{Status: directory.Up, Users: 5, Capacity: 10, Group: "eu/a"}, want{true, 5, 0.5, "eu"}},
		{"up and empty", directory.Node{Status: directory.Up, Users: 0, Capacity: 4, Group: "eu"}, want{true, 4, 0, "eu"}},
		{"up and exactly full", directory.Node{Status: directory.Up, Users: 10, Capacity: 10, Group: "us/b"}, want{false, 0, 1, "us"}},
		{"up and over full", directory.Node{Status: directory.Up, Users: 12, Capacity: 10}, want{false, 0, 1.2, ""}},
		{"up without capacity", directory.Node{Status: directory.Up, Users: 0, Capacity: 0}, want{false, 0, 1, ""}},
		{"negative capacity counts as full", directory.Node{Status: directory.Up, Capacity: -5}, want{false, 0, 1, ""}},
		{"starting with room", directory.Node{Status: directory.Starting, Users: 0, Capacity: 10}, want{false, 10, 0, ""}},
		{"draining with room", directory.Node{Status: directory.Draining, Users: 1, Capacity: 10}, want{false, 9, 0.1, ""}},
		{"full status with room", directory.Node{Status: directory.Full, Users: 1, Capacity: 10}, want{false, 9, 0.1, ""}},
		{"down with room", directory.Node{Status: directory.Down, Users: 0, Capacity: 10}, want{false, 10, 0, ""}},
		{"zone only", directory.Node{Group: "/a"}, want{false, 0, 1, ""}},
		{"deeper group", directory.Node{Group: "eu/a/rack1"}, want{false, 0, 1, "eu"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := want{tt.in.Available(), tt.in.Spare(), tt.in.Load(), tt.in.Region()}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("helpers of %+v (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}

func TestSmallTypes(t *testing.T) {
	t.Run("status valid", func(t *testing.T) {
		for _, s := range []directory.Status{directory.Starting, directory.Up, directory.Draining, directory.Full, directory.Down} {
			if !s.Valid() {
				t.Errorf("%q.Valid() = false", s)
			}
		}
		for _, s := range []directory.Status{"", "Up", "gone", "up "} {
			if s.Valid() {
				t.Errorf("%q.Valid() = true", s)
			}
		}
	})
	t.Run("kind string and membership", func(t *testing.T) {
		tests := []struct {
			in         directory.Kind
			want       string
			membership bool
		}{
			{directory.Stale, "stale", false},
			{directory.Added, "added", true},
			{directory.Refreshed, "refreshed", false},
			{directory.StatusChanged, "status", true},
			{directory.Removed, "removed", true},
			{directory.Kind(42), "kind(42)", false},
		}
		for _, tt := range tests {
			if got := tt.in.String(); got != tt.want {
				t.Errorf("Kind(%d).String() = %q, want %q", int(tt.in), got, tt.want)
			}
			if got := (directory.Change{Kind: tt.in}).Membership(); got != tt.membership {
				t.Errorf("Change{Kind: %v}.Membership() = %v, want %v", tt.in, got, tt.membership)
			}
		}
	})
	t.Run("newer", func(t *testing.T) {
		tests := []struct {
			a, b [2]uint64
			want bool
		}{
			{[2]uint64{1, 2}, [2]uint64{1, 1}, true},
			{[2]uint64{1, 1}, [2]uint64{1, 1}, false},
			{[2]uint64{1, 0}, [2]uint64{1, 1}, false},
			{[2]uint64{2, 0}, [2]uint64{1, 99}, true},
			{[2]uint64{1, 99}, [2]uint64{2, 0}, false},
		}
		for _, tt := range tests {
			a := directory.Entry{Incarnation: tt.a[0], Seq: tt.a[1]}
			b := directory.Entry{Incarnation: tt.b[0], Seq: tt.b[1]}
			if got := a.Newer(b); got != tt.want {
				t.Errorf("%v.Newer(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		}
	})
	t.Run("default timeouts", func(t *testing.T) {
		tests := []struct {
			in   time.Duration
			want directory.Timeouts
		}{
			{200 * time.Millisecond, directory.Timeouts{DownAfter: 600 * time.Millisecond, RemoveAfter: time.Minute}},
			{time.Second, directory.Timeouts{DownAfter: 3 * time.Second, RemoveAfter: 100 * time.Second}},
		}
		for _, tt := range tests {
			if diff := cmp.Diff(directory.DefaultTimeouts(tt.in), tt.want); diff != "" {
				t.Errorf("DefaultTimeouts(%v) (-got +want):\n%s", tt.in, diff)
			}
		}
	})
}

func BenchmarkApply(b *testing.B) {
	const n = 1000
	tab := directory.NewTable("n0000", timeouts)
	entries := make([]directory.Entry, n)
	for i := range entries {
		entries[i] = entry(fmt.Sprintf("n%04d", i), 1, 0, directory.Up)
		tab.Apply(entries[i], t0)
	}
	b.ReportAllocs()
	seq := uint64(0)
	now := t0
	for b.Loop() {
		seq++
		now = now.Add(time.Millisecond)
		e := entries[seq%n]
		e.Seq, e.Users = seq, int(seq%100)
		if c := tab.Apply(e, now); c.Kind != directory.Refreshed {
			b.Fatalf("Apply = %+v, want refreshed", c)
		}
	}
}

func BenchmarkNodes(b *testing.B) {
	const n = 1000
	tab := directory.NewTable("n0000", timeouts)
	for i := range n {
		tab.Apply(entry(fmt.Sprintf("n%04d", i), 1, 1, directory.Up), t0)
	}
	now := at(time.Second)
	b.ReportAllocs()
	for b.Loop() {
		if nodes := tab.Nodes(now); len(nodes) != n {
			b.Fatalf("Nodes returned %d nodes, want %d", len(nodes), n)
		}
	}
}
