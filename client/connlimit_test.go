package client_test

import (
	"bufio"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A node at its connection limit refuses the attach with
// too_many_connections: the client picks another node at once, without
// dialling the loaded node again and without a new hello.
func TestTooManyConnectionsAtAttachPicksAnother(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 1 {
			cfg.MaxConns = 1
		}
	}})
	// n2's one connection, counted: it said hello and was answered.
	held, err := net.Dial("tcp", c.Nodes[1].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.Write([]byte(`{"op":"hello","v":1}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(held).ReadString('\n'); err != nil {
		t.Fatalf("reading n2's answer to the held connection's hello: %v", err)
	}

	fd := newFaultDialer(c)
	s, err := client.Dial(dialCtx(t), c.Nodes[0].Addr(), client.WithUser("alice"), client.WithDialer(fd),
		client.WithRetry(fastRetry()), client.WithPolicy(preferring("n2", "n3")))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Node().ID != "n3" {
		t.Errorf("attached to %s, want n3", s.Node().ID)
	}
	if diff := cmp.Diff(fd.log(), []string{"n1", "n2", "n3"}); diff != "" {
		t.Errorf("dials (-got +want):\n%s", diff)
	}
}
