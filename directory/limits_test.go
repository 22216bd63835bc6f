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
		one := directory.EncodedSize(limitEntry("a", 1).Node)
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
			n := directory.Node{ID: s, Addr: s, HTTP: s, Group: s, Version: s, Status: directory.Status(s), Users: num, Capacity: num, AgeMS: math.MinInt64}
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
