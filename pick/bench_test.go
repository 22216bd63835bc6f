package pick

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// benchTable makes n up nodes spread over four zones in two regions.
func benchTable(n int) []directory.Node {
	src := rand.New(rand.NewPCG(1, 1))
	zones := []string{"eu/a", "eu/b", "us/a", "us/b"}
	nodes := make([]directory.Node, n)
	for i := range nodes {
		nodes[i] = directory.Node{
			ID: fmt.Sprintf("n%04d", i), Addr: fmt.Sprintf("10.0.%d.%d:7000", i/256, i%256),
			Group: zones[i%len(zones)], Status: directory.Up,
			Users: src.IntN(800), Capacity: 1000, AgeMS: int64(src.IntN(300)),
		}
	}
	return nodes
}

func BenchmarkPick(b *testing.B) {
	for _, size := range []int{3, 1000} {
		nodes := benchTable(size)
		req := Request{Group: "eu/a"}
		for _, name := range Names() {
			p, err := ByName(name, NewRand(1))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.Pick(nodes, req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("default+tracker/%d", size), func(b *testing.B) {
			p, tr := Default(NewRand(1)), NewTracker(20*time.Millisecond)
			b.ReportAllocs()
			now := epoch
			for b.Loop() {
				now = now.Add(time.Millisecond)
				if _, err := tr.Pick(p, nodes, req, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
