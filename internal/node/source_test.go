package node_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// Connections from the node's own host to the address they came from (its
// SIP and WebRTC fronts, a reverse proxy beside it) carry many users:
// they count towards MaxConns only, where another address is held to
// MaxConnsPerIP.
func TestSameHostConnectionsCountOnlyTowardsTheTotal(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.MaxConns = 6
		cfg.MaxConnsPerIP = 2
	}})
	addr := c.Nodes[0].Addr() // 127.0.0.1
	for range 4 {
		dialFrom(t, "127.0.0.1", addr).hello()
	}
	dialFrom(t, "127.0.0.8", addr).hello()
	dialFrom(t, "127.0.0.8", addr).hello()
	dialFrom(t, "127.0.0.8", addr).closedWith(wire.CodeTooManyConns)
	// The total holds for the node's own host too.
	dialFrom(t, "127.0.0.1", addr).closedWith(wire.CodeTooManyConns)
}

// The same holds on the HTTP listener: a reverse proxy beside the node
// keeps more connections open than one address may.
func TestSameHostHTTPConnectionsAreNotCountedPerAddress(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	n := c.Nodes[0]
	for range node.MaxHTTPConnsPerIP + 1 {
		idleKeepAlive(t, "127.0.0.1", n.HTTPAddr())
	}
	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "http_per_ip"); got != 0 {
		t.Errorf("HTTP connections from the node's own address refused per address: %v", got)
	}
}

// The node's own host is told by the address alone: a connection from
// another loopback address than the one it came to is counted per
// address like any other (the tests here, and the demo's nodes on
// 127.0.0.2 and up, depend on it).
func TestAnotherLoopbackAddressIsCountedPerAddress(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.Listen = "127.0.0.2:0"
		cfg.MaxConnsPerIP = 2
	}})
	addr := c.Nodes[0].Addr()
	dialFrom(t, "127.0.0.2", addr).hello()
	dialFrom(t, "127.0.0.2", addr).hello()
	dialFrom(t, "127.0.0.2", addr).hello()
	dialFrom(t, "127.0.0.1", addr).hello()
	dialFrom(t, "127.0.0.1", addr).hello()
	dialFrom(t, "127.0.0.1", addr).closedWith(wire.CodeTooManyConns)
}
