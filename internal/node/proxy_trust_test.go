package node_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/wire"
)

// A WebSocket through a PROXY protocol balancer counts under the client
// its header names, even when the header names the same address as
// source and destination (127.0.0.1 to 127.0.0.1: a client on the
// balancer's own host, or a header made up): only the connection's own
// addresses make a connection one from the node's own host, not counted
// per address.
func TestPROXYProtocolHeaderIsNotTheNodesHost(t *testing.T) {
	n := startBehindBalancer(t, func(cfg *node.Config) { cfg.MaxConnsPerIP = 2 })
	httpAddr := n.HTTPAddr()
	via := proxyDialer{from: balancer, header: v1For("127.0.0.1", httpAddr)}
	refused := 0
	for range 5 {
		switch m := wsVia(t, via, "127.0.0.1", httpAddr, nil); {
		case m.Op == wire.OpPong:
		case m.Code == wire.CodeTooManyConns:
			refused++
		default:
			t.Fatalf("a WebSocket through the balancer: got %+v", m)
		}
	}
	if refused != 3 {
		t.Errorf("%d of 5 WebSockets with a header naming 127.0.0.1 to 127.0.0.1 refused, want 3 (MaxConnsPerIP 2)", refused)
	}
}

// Connections from the balancer waiting for their headers count towards
// MaxConns only, so they are bounded on their own: at most 1,024 of them
// (an AWS NLB sends the header with the client's first bytes, so each
// silent client through it holds one), one more closing the oldest,
// counted as a header that failed. Before, silent clients through the
// balancer held every place of MaxConns for the hello timeout.
func TestPROXYProtocolPendingHeadersAreBounded(t *testing.T) {
	n := startBehindBalancer(t, func(cfg *node.Config) {
		cfg.MaxConns = 2000
		cfg.HelloTimeout = time.Hour
	})
	var silent []*rawConn
	for range 1024 + 1 {
		silent = append(silent, dialFrom(t, balancer, n.Addr()))
	}
	// Were it left open, nothing would come before the hello timeout.
	_ = silent[0].conn.SetReadDeadline(time.Now().Add(settle))
	if _, err := silent[0].conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the oldest connection waiting for its header: %v, want it closed", err)
	}
	waitFor(t, "the oldest counted as a header that failed", func() bool {
		return labelled(t, n, "switchboard_connections_refused_total", "reason", "proxy_header") == 1
	})
	waitFor(t, "1,024 connections open", func() bool { return labelled(t, n, "switchboard_connections", "", "") == 1024 })
	viaProxy(t, n.Addr(), v1For("192.0.2.7", n.Addr())).hello()
}
