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
	"github.com/switchboard/switchboard/wire"
)

// TestNotUpUntilRoomsReady: a node is up only once it can store rooms. The
// first node of a cluster, alone, has no JetStream quorum: it stays
// starting (and /readyz 503) however many heartbeats pass, and a join on
// it is answered unavailable. Once a peer joins, both come up and the
// join works.
func TestNotUpUntilRoomsReady(t *testing.T) {
	secret := nodetest.NewSecret(t)
	// The nodes stop in the order they started, after alice's session
	// has closed and before their data directories go (cleanups run last
	// first): n1 first, while n2 still gives the rooms' streams a quorum.
	// Stopped the other way round, n1 spent some 15 s on the leave and
	// the last snapshot of alice's room, which it could no longer store.
	dataDirs := []string{t.TempDir(), t.TempDir()}
	var nodes []*node.Node
	t.Cleanup(func() {
		for _, n := range nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := n.Shutdown(ctx); err != nil {
				t.Errorf("closing %s: %v", n.ID(), err)
			}
			cancel()
		}
	})
	start := func(i int, join string) *node.Node {
		cfg := nodetest.Config("ready-test", i)
		cfg.ClusterSecret = secret
		cfg.DataDir = dataDirs[i]
		cfg.StoreTimeout = time.Second
		if join != "" {
			cfg.Join = []string{join}
		}
		n, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		return n
	}
	n1 := start(0, "")

	// The join waits StoreTimeout (ten heartbeats) and is refused: n1
	// has had time to say up, and must not have.
	alice := newPeer(t, n1.Addr(), "alice")
	alice.send(wire.Message{Op: wire.OpJoin, Room: "early"})
	m := alice.await("answer to the early join", func(m wire.Message) bool { return m.Room == "early" })
	if m.Op != wire.OpError || m.Code != wire.CodeUnavailable {
		t.Fatalf("join on a node without a quorum: %+v, want unavailable", m)
	}
	if st := n1.Status(); st != directory.Starting {
		t.Errorf("n1 alone is %q, want starting", st)
	}
	resp, err := http.Get("http://" + n1.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz of n1 alone: %d, want 503", resp.StatusCode)
	}

	n2 := start(1, n1.ClusterAddr())
	nodetest.Eventually(t, wait, func() error {
		for _, n := range []*node.Node{n1, n2} {
			if st := n.Status(); st != directory.Up {
				return fmt.Errorf("%s is %s", n.ID(), st)
			}
		}
		return nil
	})
	alice.rejoin("early")
}
