package directory_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
)

func limitEntry(id string, inc uint64) directory.Entry {
	return directory.Entry{Node: directory.Node{ID: id, Addr: id + ":7070", Status: directory.Up, Capacity: 10}, Incarnation: inc, Seq: 1}
}

func TestLimitsRefuse(t *testing.T) {
	now := time.Unix(1000, 0)
	timeouts := directory.Timeouts{DownAfter: time.Second, RemoveAfter: time.Second}

	t.Run("entries", func(t *testing.T) {
		tb := directory.NewTable("self", timeouts, directory.WithLimits(directory.Limits{MaxEntries: 3}))
		for _, id := range []string{"self", "a", "b"} {
			if c := tb.Apply(limitEntry(id, 1), now); c.Kind != directory.Added {
				t.Fatalf("%s: %v", id, c.Kind)
			}
		}
		c := tb.Apply(limitEntry("c", 1), now)
		if c.Kind != directory.Refused || !errors.Is(c.Err, directory.ErrTooMany) {
			t.Fatalf("a fourth entry: %v %v, want refused, too many", c.Kind, c.Err)
		}
		if _, ok := tb.Get("c"); ok || tb.Len() != 3 {
			t.Fatalf("the refused entry is held (len %d)", tb.Len())
		}
		// Known entries still update.
		if c := tb.Apply(limitEntry("a", 2), now); c.Kind != directory.Refreshed {
			t.Fatalf("updating a: %v", c.Kind)
		}
		// Once a peer is forgotten there is room again.
		tb.Tick(now.Add(time.Second))
		tb.Tick(now.Add(3 * time.Second))
		if c := tb.Apply(limitEntry("c", 1), now.Add(3*time.Second)); c.Kind != directory.Added {
			t.Fatalf("after removals: %v %v", c.Kind, c.Err)
		}
	})

	t.Run("field", func(t *testing.T) {
		tb := directory.NewTable("self", timeouts, directory.WithLimits(directory.Limits{MaxField: 8}))
		e := limitEntry("a", 1)
		e.Group = strings.Repeat("g", 9)
		c := tb.Apply(e, now)
		if c.Kind != directory.Refused || !errors.Is(c.Err, directory.ErrFieldTooLong) {
			t.Fatalf("a long group: %v %v", c.Kind, c.Err)
		}
		// The self entry is never refused.
		self := limitEntry("self", 1)
		self.Version = strings.Repeat("v", 100)
		if c := tb.Apply(self, now); c.Kind != directory.Added {
			t.Fatalf("self: %v %v", c.Kind, c.Err)
		}
	})

	t.Run("bytes", func(t *testing.T) {
		// What one entry is counted for (Table.Bytes), measured.
		probe := directory.NewTable("self", timeouts)
		probe.Apply(limitEntry("a", 1), now)
		one := probe.Bytes()
		if one < directory.EncodedSize(limitEntry("a", 1).Node) {
			t.Fatalf("an entry counted for %d bytes, below its EncodedSize", one)
		}
		tb := directory.NewTable("self", timeouts, directory.WithLimits(directory.Limits{MaxBytes: 2 * one}))
		tb.Apply(limitEntry("a", 1), now)
		tb.Apply(limitEntry("b", 1), now)
		if c := tb.Apply(limitEntry("c", 1), now); c.Kind != directory.Refused || !errors.Is(c.Err, directory.ErrTooLarge) {
			t.Fatalf("a third entry: %v %v", c.Kind, c.Err)
		}
		grown := limitEntry("a", 2)
		grown.Group = "eu/a"
		c := tb.Apply(grown, now)
		if c.Kind != directory.Refused || !errors.Is(c.Err, directory.ErrTooLarge) {
			t.Fatalf("a growing: %v %v", c.Kind, c.Err)
		}
		if got, _ := tb.Get("a"); got.Group != "" || got.Incarnation != 1 {
			t.Fatalf("a after a refused update: %+v, want the old entry", got)
		}
		if tb.Bytes() != 2*one {
			t.Fatalf("Bytes = %d, want %d", tb.Bytes(), 2*one)
		}
	})
}

// EncodedSize is never below what encoding/json writes, whatever the
// strings and numbers hold.
func TestEncodedSizeBoundsJSON(t *testing.T) {
	nasty := []string{"", "n1", "127.0.0.1:7070", `"\<>&`, "\x00\x1f", "é€😀", "\xff\xfe", "\u2028\u2029", strings.Repeat("<", 300)}
	for _, s := range nasty {
		for _, num := range []int{0, 7, -1, math.MaxInt64, math.MinInt64} {
			n := directory.Node{ID: s, Addr: s, HTTP: s, Group: s, Version: s, Status: directory.Status(s), Users: num, Capacity: num, HeartbeatMS: int64(num), AgeMS: math.MinInt64}
			data, err := json.Marshal(n)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := directory.EncodedSize(n), len(data)+1; got < want {
				t.Errorf("EncodedSize(%q, %d) = %d, below the %d bytes encoded", s, num, got, want)
			}
		}
	}
}

// A table filled to DefaultLimits holds a cluster of a thousand nodes and
// more, and refuses a flood past it; what a client is sent of it (a view
// within a line's budget) encodes within the budget.
func TestDefaultLimitsHoldAThousandAndViewsFitALine(t *testing.T) {
	now := time.Unix(1000, 0)
	tb := directory.NewTable("self", directory.DefaultTimeouts(time.Second), directory.WithLimits(directory.DefaultLimits()))
	refused := 0
	for i := range 5000 {
		e := limitEntry(fmt.Sprintf("node-%04d.eu-west.example.com", i), 1)
		e.HTTP = e.Addr
		e.Group = "eu-west/a"
		e.Version = "v1.2.3-0.20250101000000-abcdefabcdef"
		if c := tb.Apply(e, now); c.Kind == directory.Refused {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("5,000 entries all held")
	}
	if tb.Len() < 1000 {
		t.Fatalf("only %d entries held: too tight for a thousand nodes", tb.Len())
	}
	const budget = 60 << 10
	nodes := tb.Nodes(now.Add(time.Hour))
	view := directory.View(nodes, directory.ViewRequest{Budget: budget}, rand.New(rand.NewPCG(1, 2)))
	data, err := json.Marshal(view)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > budget {
		t.Fatalf("a view of %d entries encodes to %d bytes, more than the budget of %d", len(view), len(data), budget)
	}
	if len(view) < 200 || len(view) == len(nodes) {
		t.Fatalf("the view holds %d of %d entries: want as many as fit, and not all", len(view), len(nodes))
	}
}

// A table at its byte bound (a flood of entries with long fields, from a
// member of an open cluster) still takes the heartbeats of the peers it
// holds, whatever users and status they carry: a peer whose users gain a
// digit, or that starts draining (or takes a later version's status of
// 16 letters), stays as it says. Before, each such
// update needed a few bytes more than the peer held and was refused;
// the peer's later heartbeats too, so its peers marked it down while it
// was alive and forgot it. A peer's longer strings still need room.
func TestByteBoundKeepsKnownPeers(t *testing.T) {
	now := time.Unix(1000, 0)
	timeouts := directory.Timeouts{DownAfter: time.Second, RemoveAfter: time.Minute}
	peer := func(seq uint64, users int, status directory.Status) directory.Entry {
		e := limitEntry("b", 1)
		e.Seq, e.Users, e.Capacity, e.Status = seq, users, 100000, status
		return e
	}
	tests := []struct {
		name   string
		update directory.Entry
		want   directory.Kind
		status directory.Status // held after it, and after a tick past DownAfter from the flood
	}{
		{"the same numbers", peer(2, 9, directory.Up), directory.Refreshed, directory.Up},
		{"users gain a digit", peer(2, 10, directory.Up), directory.Refreshed, directory.Up},
		{"users gain five", peer(2, 99999, directory.Up), directory.Refreshed, directory.Up},
		{"draining", peer(2, 9, directory.Draining), directory.StatusChanged, directory.Draining},
		{"a later version's longest status", peer(2, 9, "abcdefghijklmnop"), directory.StatusChanged, "abcdefghijklmnop"},
		{"a longer group", func() directory.Entry { e := peer(2, 9, directory.Up); e.Group = "eu/a"; return e }(), directory.Refused, directory.Down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The bound is what self, b and five entries of the flood
			// take: the table is full to the byte, and a sixth is refused.
			long := strings.Repeat("<", 300)
			fill := func(tb *directory.Table, flood int) directory.Change {
				tb.Apply(limitEntry("self", 1), now)
				if c := tb.Apply(peer(1, 9, directory.Up), now); c.Kind != directory.Added {
					t.Fatalf("b: %v %v", c.Kind, c.Err)
				}
				var c directory.Change
				for i := range flood {
					e := limitEntry(fmt.Sprintf("flood-%03d", i), 1)
					e.Addr, e.Version = long, long
					c = tb.Apply(e, now)
				}
				return c
			}
			probe := directory.NewTable("self", timeouts)
			fill(probe, 5)
			bound := directory.Limits{MaxField: 300, MaxBytes: probe.Bytes()}
			tb := directory.NewTable("self", timeouts, directory.WithLimits(bound))
			if c := fill(tb, 6); c.Kind != directory.Refused {
				t.Fatalf("the sixth entry of the flood: %v, want refused", c.Kind)
			}
			at := now.Add(900 * time.Millisecond)
			c := tb.Apply(tt.update, at)
			if c.Kind != tt.want {
				t.Fatalf("update at the bound: %v %v, want %v", c.Kind, c.Err, tt.want)
			}
			if tb.Bytes() > bound.MaxBytes {
				t.Fatalf("%d bytes held, past the bound of %d", tb.Bytes(), bound.MaxBytes)
			}
			tb.Tick(now.Add(1500 * time.Millisecond)) // the flood's entries are down; b spoke at 900 ms
			if got, _ := tb.Get("b"); got.Status != tt.status {
				t.Fatalf("b is %s, want %s", got.Status, tt.status)
			}
		})
	}
}
