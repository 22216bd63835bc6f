package node_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// Limits changed on a running node hold from the next attach or
// connection, and its capacity reaches the peers' directories.
func TestSetLimits(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitAllUp(settle)
	n1, n2 := c.Nodes[0], c.Nodes[1]
	attach(t, dial(t, n1.Addr()), "alice")

	if err := n1.SetLimits(node.Limits{Capacity: 1}); err != nil {
		t.Fatal(err)
	}
	attachAs := func(user string) wire.Message {
		conn := dial(t, n1.Addr())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Hello(ctx, "test/1", ""); err != nil {
			t.Fatal(err)
		}
		send(t, conn, wire.Message{Op: wire.OpAttach, User: user})
		return recvReply(t, conn)
	}
	if m := attachAs("bob"); m.Op != wire.OpError || m.Code != wire.CodeFull {
		t.Fatalf("attach past a capacity lowered to 1: got %+v, want full", m)
	}
	nodetest.Eventually(t, settle, func() error {
		got, ok := nodetest.Lookup(n2, n1.ID())
		if !ok || got.Capacity != 1 || got.Status != directory.Full {
			return fmt.Errorf("n2 lists n1 as %+v, want capacity 1 and full", got)
		}
		return nil
	})

	if err := n1.SetLimits(node.Limits{Capacity: 2}); err != nil {
		t.Fatal(err)
	}
	if m := attachAs("bob"); m.Op != wire.OpAttached {
		t.Fatalf("attach once the capacity was raised to 2: got %+v, want attached", m)
	}

	// Two connections from another address, then the limit lowered
	// below them: they stay, a new one is refused.
	dialFrom(t, "127.0.0.7", n1.Addr()).hello()
	dialFrom(t, "127.0.0.7", n1.Addr()).hello()
	if err := n1.SetLimits(node.Limits{Capacity: 2, MaxConnsPerIP: 1}); err != nil {
		t.Fatal(err)
	}
	m, err := dialFrom(t, "127.0.0.7", n1.Addr()).next()
	if err != nil || m.Op != wire.OpError || m.Code != wire.CodeTooManyConns {
		t.Fatalf("a connection past max-conns-per-ip lowered to 1: got %+v, %v; want too_many_connections", m, err)
	}
	if got := n1.Users(); got != 2 {
		t.Errorf("n1 holds %d sessions after the limits were lowered, want the 2 it had", got)
	}

	if err := n1.SetLimits(node.Limits{Capacity: -1}); !errors.Is(err, node.ErrNegativeLimit) {
		t.Errorf("SetLimits with a negative capacity: %v, want ErrNegativeLimit", err)
	}
	if err := n1.SetLimits(node.Limits{}); err != nil {
		t.Fatal(err)
	}
	d := node.DefaultConfig()
	if got, want := n1.Limits(), (node.Limits{Capacity: d.Capacity, MaxConns: d.MaxConns, MaxConnsPerIP: d.MaxConnsPerIP}); got != want {
		t.Errorf("limits after SetLimits(zero) = %+v, want the defaults %+v", got, want)
	}
}
