package client

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/wire"
)

// The hello order: the common address's addresses as given, then the
// directory's up nodes, the others not down, the nodes cooling down, and
// last the nodes listed down; each group shuffled.
func TestHelloOrder(t *testing.T) {
	m, err := failover.New(failover.DefaultConfig(), rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m.Next(failover.Outcome{Kind: failover.Begin}, now)
	m.Next(failover.Outcome{Kind: failover.Refused, Node: "c", Status: directory.Full}, now) // cooling down
	s := &Session{opts: options{rand: rand.New(rand.NewPCG(3, 4))}, machine: m}
	node := func(id string, st directory.Status) directory.Node {
		return directory.Node{ID: id, Addr: id + ":7070", Status: st}
	}
	dir := &wire.Directory{Nodes: []directory.Node{
		node("d1", directory.Down), node("u1", directory.Up), node("o1", directory.Starting),
		node("c", directory.Up), node("u2", directory.Up), node("d2", directory.Down),
		node("x", directory.Up), // also the common address's: listed once
		{ID: "noaddr", Status: directory.Up},
	}}
	for range 20 {
		var got []string
		for _, h := range s.helloOrder([]string{"common:7070", "x:7070"}, dir, now) {
			got = append(got, h.addr)
		}
		groups := [][]string{{"common:7070"}, {"x:7070"}, {"u1:7070", "u2:7070"}, {"o1:7070"}, {"c:7070"}, {"d1:7070", "d2:7070"}}
		if len(got) != 8 {
			t.Fatalf("hello order %v, want 8 addresses", got)
		}
		at := 0
		for _, g := range groups {
			part := slices.Clone(got[at : at+len(g)])
			slices.Sort(part)
			if !slices.Equal(part, g) {
				t.Fatalf("hello order %v: at %d got %v, want %v in some order", got, at, part, g)
			}
			at += len(g)
		}
	}
}
