package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/switchboard/switchboard/directory"
)

// TestWeightedIsSample checks the fast draw of sampled views against
// directory.Sample itself: over many draws of 3 nodes out of 7 with
// uneven spare capacity, each node is in the view as often (within 0.01,
// some six standard deviations), and every view is in ID order with no
// node twice.
func TestWeightedIsSample(t *testing.T) {
	users := []int{0, 900, 500, 990, 300, 700, 100}
	r := &run{cfg: Config{ViewSize: 3, SampledViews: true}, groups: []string{"r0/a"}, thin: rand.New(rand.NewPCG(7, 8))}
	v := &view{pos: make([]int32, len(users))}
	var spare int64
	for i, u := range users {
		n := directory.Node{ID: fmt.Sprintf("n%d", i), Group: "r0/a", Status: directory.Up, Users: u, Capacity: 1000}
		v.pos[i] = int32(i)
		v.nodes = append(v.nodes, n)
		v.idx = append(v.idx, int32(i))
		spare += int64(n.Spare())
		v.cum = append(v.cum, spare)
	}
	const draws = 200_000
	fast, real := make([]float64, len(users)), make([]float64, len(users))
	src := rand.New(rand.NewPCG(9, 10))
	for range draws {
		got := r.weighted(v)
		if len(got) != 3 {
			t.Fatalf("view of %d nodes, want 3", len(got))
		}
		for j := range got {
			if j > 0 && got[j-1].ID >= got[j].ID {
				t.Fatalf("view %v not in ID order, or a node twice", got)
			}
			fast[int(got[j].ID[1]-'0')]++
		}
		for _, i := range directory.Sample(v.nodes, directory.ViewRequest{Max: 3, Group: "r0/a"}, src) {
			real[i]++
		}
	}
	for i := range users {
		f, s := fast[i]/draws, real[i]/draws
		t.Logf("n%d (spare %d): in %.4f of the fast views, %.4f of Sample's", i, 1000-users[i], f, s)
		if math.Abs(f-s) > 0.01 {
			t.Errorf("n%d is in %.4f of the fast views and %.4f of Sample's", i, f, s)
		}
	}
}
