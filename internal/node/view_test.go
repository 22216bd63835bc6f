package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// A hello that asks for fewer nodes than the cluster has gets that many,
// with the size of the whole; the refusal of a full node and the pushes
// of an attached session keep to the same view.
func TestHelloView(t *testing.T) {
	c := nodetest.Start(t, 4, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Capacity = 1
	}})
	c.WaitAllUp(settle)
	n1 := c.Nodes[0]
	nodetest.Eventually(t, settle, func() error {
		if got := len(n1.Nodes()); got != 4 {
			return fmt.Errorf("n1 knows %d nodes, want 4", got)
		}
		return nil
	})
	hello := func(conn interface {
		HelloView(context.Context, string, string, int) (*wire.Directory, error)
	}, max int) *wire.Directory {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		dir, err := conn.HelloView(ctx, "test/1", "", max)
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	whole := hello(dial(t, n1.Addr()), 0)
	if len(whole.Nodes) != 4 || whole.Total != 0 {
		t.Errorf("a hello without max: %d nodes, total %d; want 4 and no total", len(whole.Nodes), whole.Total)
	}

	first := dial(t, n1.Addr())
	if dir := hello(first, 2); len(dir.Nodes) != 2 || dir.Total != 4 {
		t.Fatalf("a hello asking for 2: %d nodes, total %d; want 2 of 4", len(dir.Nodes), dir.Total)
	}
	send(t, first, wire.Message{Op: wire.OpAttach, User: "alice"})
	if m := recvReply(t, first); m.Op != wire.OpAttached {
		t.Fatalf("attach: %+v", m)
	}

	second := dial(t, n1.Addr())
	hello(second, 3)
	send(t, second, wire.Message{Op: wire.OpAttach, User: "bob"})
	m := recvReply(t, second)
	if m.Op != wire.OpError || m.Code != wire.CodeFull || m.Dir == nil {
		t.Fatalf("attach to a full node: %+v, want full with a directory", m)
	}
	if len(m.Dir.Nodes) != 3 || m.Dir.Total != 4 {
		t.Errorf("the refusal's directory: %d nodes, total %d; want 3 of 4", len(m.Dir.Nodes), m.Dir.Total)
	}

	// A node leaves: alice's push is a view of 2 of what n1 now knows.
	c.Nodes[3].Halt()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	for {
		m, err := first.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for a push: %v", err)
		}
		if m.Op != wire.OpDirectory {
			continue
		}
		if len(m.Nodes) != 2 || m.Total != 4 {
			t.Fatalf("a push: %d nodes, total %d; want 2 of 4", len(m.Nodes), m.Total)
		}
		return
	}
}
