package node_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// A balancer's connect-only health check (a TCP connect, closed or
// reset without a byte) sent no PROXY protocol header, bad or good: on
// neither listener is it counted as a header that failed, which would
// keep the refusals alert firing. A connection that sent a byte of a
// header and stopped is still counted. (A reset connection cannot be
// read from to learn that the node is done with it: the counts after
// the rows that follow it say it was not counted, the node reading the
// connections in the order they came.)
func TestPROXYProtocolConnectOnlyCheckIsNoHeaderFailure(t *testing.T) {
	n := startBehindBalancer(t, func(*node.Config) {})
	for _, tt := range []struct {
		name, addr, first string
		reset             bool    // closed with a reset, as HAProxy closes its checks
		want              float64 // proxy_header refusals after it
	}{
		{"client listener, connect and close", n.Addr(), "", false, 0},
		{"HTTP listener, connect and close", n.HTTPAddr(), "", false, 0},
		{"client listener, connect and reset", n.Addr(), "", true, 0},
		{"HTTP listener, connect and reset", n.HTTPAddr(), "", true, 0},
		{"client listener, a byte and close", n.Addr(), "P", false, 1},
		{"HTTP listener, a byte and close", n.HTTPAddr(), "P", false, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := dialFrom(t, balancer, tt.addr)
			if tt.reset {
				if err := rc.conn.(*net.TCPConn).SetLinger(0); err != nil {
					t.Fatal(err)
				}
				rc.conn.Close()
				return
			}
			if _, err := io.WriteString(rc.conn, tt.first); err != nil {
				t.Fatal(err)
			}
			if err := rc.conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			// The node counts a failed header before it closes the
			// connection: once closed, the count is final.
			if m, err := rc.next(); err == nil {
				t.Fatalf("got %+v, want the connection closed", m)
			}
			if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "proxy_header"); got != tt.want {
				t.Errorf("refused proxy_header = %v, want %v", got, tt.want)
			}
		})
	}
}

// A client the balancer relays without naming it (version 1 UNKNOWN,
// version 2 PROXY of family UNSPEC) is not the balancer's own connection:
// such clients count together against MaxConnsPerIP, under the
// balancer's address, on the client listener, and against the HTTP
// listener's 64 per address. Only version 2 LOCAL is the balancer's own,
// not counted per address.
func TestPROXYProtocolUndescribedClientsCountTogether(t *testing.T) {
	n := startBehindBalancer(t, func(cfg *node.Config) { cfg.MaxConnsPerIP = 2 })
	addr := n.Addr()
	unknown := func(net.Addr) string { return "PROXY UNKNOWN\r\n" }
	unspec := func(net.Addr) string { return "\r\n\r\n\x00\r\nQUIT\n\x21\x00\x00\x00" }
	local := func(net.Addr) string { return "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00" }
	viaProxy(t, addr, unknown).hello()
	viaProxy(t, addr, unspec).hello()
	over := viaProxy(t, addr, unknown)
	over.send(`{"op":"hello","v":1}`)
	over.closedWith(wire.CodeTooManyConns)
	for range 3 {
		viaProxy(t, addr, local).hello()
	}

	// 64 idle HTTP connections of clients the balancer does not name
	// hold the HTTP listener's allowance of one address: the next is
	// closed at accept.
	for range 64 + 1 {
		rc := dialFrom(t, balancer, n.HTTPAddr())
		if _, err := io.WriteString(rc.conn, "PROXY UNKNOWN\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the 65th HTTP connection refused", func() bool {
		return labelled(t, n, "switchboard_connections_refused_total", "reason", "http_per_ip") == 1
	})
}

// --ws-origins '*:*' (any page on any port) opens the WebSocket to every
// page, and says so at warn level with what it does not open: the node's
// reads, its own routes included, still answer 421 under a name the
// service does not publish, as a DNS-rebinding page uses.
func TestCatchAllOriginsKeepTheRebindingGuard(t *testing.T) {
	var logs nodetest.LockedBuffer
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.WSOrigins = []string{"*:*"}
		cfg.Pprof = true
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}})
	n := c.Nodes[0]
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "accepted from pages of any origin") || !strings.Contains(out, "not its stats, event stream or metrics") {
		t.Errorf("the node logged %q; want a warning that any page may open a WebSocket, and what it may not read", out)
	}
	for _, path := range []string{"/v1/drain", "/debug/pprof/", "/metrics", "/v1/stats"} {
		r, err := http.NewRequest(http.MethodGet, "http://"+n.HTTPAddr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = "rebind.example:7071"
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("GET %s under Host %s: %s, want 421", path, r.Host, resp.Status)
		}
	}
}
