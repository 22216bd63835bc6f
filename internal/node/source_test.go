package node_test

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

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
	for i := range node.MaxHTTPConnsPerIP + 1 {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", n.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(settle))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("connection %d from the node's own address: %v", i+1, err)
		}
		resp.Body.Close()
	}
	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "http_per_ip"); got != 0 {
		t.Errorf("HTTP connections from the node's own address refused per address: %v", got)
	}
}
