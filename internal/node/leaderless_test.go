package node_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// Two nodes of three stop gracefully: their goodbyes shrink the cluster
// the last one counts, so it still sees a majority, but its JetStream
// keeps both in its peer sets and has no quorum left: it can elect no
// metadata leader and store nothing. The last node must step aside
// rather than say up and leave every join to time out.
func TestNodeWithoutJetStreamQuorumStepsAside(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		// nats-server's own times stay: a leader left without a quorum
		// steps down after 10 s; the node then waits this long.
		node.SetLeaderlessFor(cfg, time.Second)
	}})
	c.WaitAllUp(settle)
	for _, n := range c.Nodes[:2] {
		ctx, cancel := context.WithTimeout(context.Background(), settle)
		err := n.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	last := c.Nodes[2]
	nodetest.Eventually(t, 2*settle, func() error {
		if got := last.Status(); got != directory.Degraded {
			return fmt.Errorf("n3 is %q with two of its cluster's three JetStream servers gone, want degraded", got)
		}
		return nil
	})
	resp, err := http.Get("http://" + last.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %d, want 503", resp.StatusCode)
	}
}
