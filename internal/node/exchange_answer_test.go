package node_test

import (
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// A newcomer asks for every entry with a sync request naming itself, and
// each peer answers it alone (and tells it about itself alone when it
// first sees it) rather than publishing to every node: a join costs the
// cluster one message per peer, not one per pair of nodes.
func TestNewcomerIsAnsweredAlone(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	const answers = "switchboard_directory_answers_total"
	before := make([]float64, len(c.Nodes))
	for i, n := range c.Nodes {
		before[i] = counter(t, n, answers)
	}
	newcomer := c.Add(nil)
	c.WaitAllUp(settle)
	nodetest.Eventually(t, settle, func() error {
		for i, n := range c.Nodes[:3] {
			if got := counter(t, n, answers); got <= before[i] {
				return fmt.Errorf("%s answered %v times, as many as before %s joined", n.ID(), got, newcomer.ID())
			}
		}
		// The newcomer tells each peer it adds about itself alone too.
		if got := counter(t, newcomer, answers); got < 3 {
			return fmt.Errorf("%s answered %v peers, want 3", newcomer.ID(), got)
		}
		return nil
	})
}
