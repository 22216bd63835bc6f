package failover_test

import (
	"fmt"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/pick"
)

// The order for a node that refuses connections, then a full one.
func Example() {
	m, err := failover.New(failover.DefaultConfig(), pick.NewRand(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, o := range []failover.Outcome{
		{Kind: failover.Begin},
		{Kind: failover.Fetched},
		{Kind: failover.Picked, Node: "n1"},
		{Kind: failover.DialFailed, Node: "n1"},
		{Kind: failover.DialFailed, Node: "n1"},
		{Kind: failover.DialFailed, Node: "n1"},
		{Kind: failover.Fetched},
		{Kind: failover.Picked, Node: "n2"},
		{Kind: failover.Refused, Node: "n2", Status: directory.Full},
		{Kind: failover.Picked, Node: "n3"},
		{Kind: failover.Attached, Node: "n3"},
	} {
		a := m.Next(o, now)
		fmt.Printf("%-17s -> %s\n", o, a.Step)
		now = now.Add(a.After)
	}
	fmt.Println("excluded:", m.Excluded("n1", now), m.Excluded("n2", now), m.Excluded("n3", now))
	// Output:
	// begin             -> refresh
	// fetched           -> pick
	// picked n1         -> dial
	// dial failed n1    -> retry
	// dial failed n1    -> retry
	// dial failed n1    -> refresh
	// fetched           -> pick
	// picked n2         -> dial
	// refused n2 (full) -> pick
	// picked n3         -> dial
	// attached n3       -> done
	// excluded: true true false
}
