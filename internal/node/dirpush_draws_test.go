package node

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/switchboard/switchboard/wire"
)

// countingSource counts the random numbers drawn from it: a view drawn
// from scratch takes one per node of the directory.
type countingSource struct {
	rand.Source
	n int
}

func (c *countingSource) Uint64() uint64 { c.n++; return c.Source.Uint64() }

// The views of one push cost a bounded number of draws whatever the
// sessions asked: sessions that each ask for a max and a group of their
// own (a hostile client's, or a thousand of them) share the draws of the
// nodes' order, and each is only chosen from one. Before, each distinct
// want drew the whole directory afresh on the node's run loop (about a
// millisecond at 2,000 nodes): a thousand sessions with made-up groups or
// maxima held the loop for a second at every push, its heartbeats with it.
// Each session still gets what it asked: at most its max, within a line,
// its own group first.
func TestPushDrawsBounded(t *testing.T) {
	taken := time.Unix(1000, 0)
	v := bigView(2000, taken)
	src := &countingSource{Source: rand.NewPCG(1, 2)}
	p := newPushLines(v, "chat.example.com", "node-00000.example.com", taken)
	p.r = rand.New(src)
	const sessions = 400
	for i := range sessions {
		w := viewWant{max: 1 + i%150, group: fmt.Sprintf("made-up-%d", i)}
		if i%3 == 0 {
			w.group = "eu-west/b" // a real zone
		}
		line, err := p.line(w)
		if err != nil {
			t.Fatal(err)
		}
		if len(line)-1 > wire.MaxLine {
			t.Fatalf("session %d: a line of %d bytes", i, len(line)-1)
		}
		m, err := wire.Decode(line[:len(line)-1])
		if err != nil {
			t.Fatal(err)
		}
		if w.max <= 64 && len(m.Nodes) != w.max {
			t.Fatalf("session %d asked for %d nodes and got %d", i, w.max, len(m.Nodes))
		}
		if len(m.Nodes) > w.max {
			t.Fatalf("session %d asked for %d nodes and got %d", i, w.max, len(m.Nodes))
		}
		if w.group == "eu-west/b" && w.max >= 4 {
			own := 0
			for _, n := range m.Nodes {
				if n.Group == w.group {
					own++
				}
			}
			if own < len(m.Nodes)-len(m.Nodes)/4-1 {
				t.Fatalf("session %d in %s got %d of %d nodes of its zone", i, w.group, own, len(m.Nodes))
			}
		}
	}
	// Two groups of draws (the real zone, and every made-up group, which
	// picks out no node), pushVariants each, one number per node each.
	if most := 2 * pushVariants * len(v.nodes); src.n > most {
		t.Fatalf("%d sessions drew %d random numbers, the most is %d: views drawn from scratch", sessions, src.n, most)
	}
}
