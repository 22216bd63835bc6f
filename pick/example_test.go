package pick_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/pick"
)

var nodes = []directory.Node{
	{ID: "n1", Addr: "10.0.0.1:7000", Group: "eu/a", Status: directory.Up, Users: 120, Capacity: 1000, AgeMS: 40},
	{ID: "n2", Addr: "10.0.0.2:7000", Group: "eu/a", Status: directory.Up, Users: 480, Capacity: 1000, AgeMS: 90},
	{ID: "n3", Addr: "10.0.0.3:7000", Group: "eu/b", Status: directory.Up, Users: 10, Capacity: 1000, AgeMS: 15},
	{ID: "n4", Addr: "10.0.0.4:7000", Group: "us/a", Status: directory.Draining, Users: 0, Capacity: 1000, AgeMS: 5},
}

// The default policy keeps the available nodes, prefers the client's zone,
// and takes the least loaded node there, since the directory is fresh.
func ExampleDefault() {
	p := pick.Default(pick.NewRand(1))
	res, err := p.Pick(nodes, pick.Request{Group: "eu/a"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Node.ID, res.Node.Addr)
	fmt.Println(res.Reason)
	// Output:
	// n1 10.0.0.1:7000
	// status: 3 of 4 available; group: zone eu/a (2 of 3); balanced: n1 (load 0.12), 1 of 2 near the least load (age 90ms)
}

// ErrNoNode tells the caller to fetch a fresh directory.
func ExampleErrNoNode() {
	p, _ := pick.ByName("p2c", nil)
	exclude := func(id string) bool { return id != "n4" } // as if all had failed
	_, err := p.Pick(nodes, pick.Request{Exclude: exclude})
	fmt.Println(errors.Is(err, pick.ErrNoNode))
	fmt.Println(err)
	// Output:
	// true
	// pick: no server available (status: 0 of 4 available (excluded 3, draining 1))
}

// A policy of one's own: a Filter that keeps one software version, in front
// of the status filter and P2C.
func ExampleChain() {
	sameVersion := func(v string) pick.Filter {
		return func(nodes []directory.Node, _ pick.Request) ([]directory.Node, string) {
			var kept []directory.Node
			for _, n := range nodes {
				if n.Version == v {
					kept = append(kept, n)
				}
			}
			return kept, fmt.Sprintf("version %s: %d", v, len(kept))
		}
	}
	p := pick.Chain(pick.P2C(nil), pick.Available, sameVersion("1.4"))
	_, err := p.Pick(nodes, pick.Request{})
	fmt.Println(err)
	// Output:
	// pick: no server available (status: 3 of 4 available; version 1.4: 0)
}

// A process that attaches many sessions from one directory shares a Tracker,
// so that its own picks count before the directory shows them.
func ExampleTracker() {
	tr := pick.NewTracker(5 * time.Second)
	p := pick.Chain(pick.LeastUsers(pick.NewRand(1)), pick.Available)
	dir := []directory.Node{
		{ID: "old", Status: directory.Up, Users: 3, Capacity: 10},
		{ID: "new", Status: directory.Up, Users: 0, Capacity: 10},
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var picked []string
	for range 4 {
		res, _ := tr.Pick(p, dir, pick.Request{}, now)
		picked = append(picked, res.Node.ID)
	}
	fmt.Println(picked)
	fmt.Println(tr.Pending("new", now), tr.Pending("new", now.Add(5*time.Second)))
	// Output:
	// [new new new old]
	// 3 0
}
