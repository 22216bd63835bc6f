package node_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// A real HAProxy in TCP mode in front of the client listener (connecting
// to it from the tests' balancer address), one frontend sending version 1
// headers (send-proxy), one version 2 (send-proxy-v2), and a third in
// front of the HTTP listener: the node reads them all, and counts each
// client against MaxConnsPerIP by its own address, not as HAProxy's,
// WebSockets included.
func TestPROXYProtocolThroughHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed (.ci/run installs it)")
	}
	n := startBehindBalancer(t, func(cfg *node.Config) { cfg.MaxConnsPerIP = 1 })
	port, err := localcluster.FreePort([]string{"127.0.0.1"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	v1, v2, web := "127.0.0.1:"+strconv.Itoa(port), "127.0.0.1:"+strconv.Itoa(port+1), "127.0.0.1:"+strconv.Itoa(port+2)
	cfg := fmt.Sprintf(`global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 1m
  timeout server 1m
frontend v1
  bind %s
  default_backend node_v1
backend node_v1
  server n1 %s send-proxy source %s
frontend v2
  bind %s
  default_backend node_v2
backend node_v2
  server n1 %s send-proxy-v2 source %s
frontend web
  bind %s
  default_backend node_http
backend node_http
  server n1 %s send-proxy-v2 source %s
`, v1, n.Addr(), balancer, v2, n.Addr(), balancer, web, n.HTTPAddr(), balancer)
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", file)
	cmd.Stdout, cmd.Stderr = nodetest.FailureLog(t), nodetest.FailureLog(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for _, fe := range []string{v1, v2, web} {
		nodetest.Eventually(t, settle, func() error {
			conn, err := net.DialTimeout("tcp", fe, time.Second)
			if err != nil {
				return err
			}
			return conn.Close()
		})
	}

	for _, tt := range []struct{ name, frontend, client, other string }{
		{"version 1", v1, "127.0.0.5", "127.0.0.6"},
		{"version 2", v2, "127.0.0.7", "127.0.0.8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dialFrom(t, tt.client, tt.frontend).hello()
			over := dialFrom(t, tt.client, tt.frontend)
			over.send(`{"op":"hello","v":1}`)
			over.closedWith(wire.CodeTooManyConns)
			dialFrom(t, tt.other, tt.frontend).hello()
		})
	}
	t.Run("WebSockets", func(t *testing.T) {
		if m := wsFrom(t, "127.0.0.9", web, nil); m.Op != wire.OpPong {
			t.Fatalf("a WebSocket through HAProxy: got %+v, want pong", m)
		}
		if m := wsFrom(t, "127.0.0.9", web, nil); m.Code != wire.CodeTooManyConns {
			t.Errorf("a second WebSocket of 127.0.0.9 through HAProxy: got %+v, want too_many_connections", m)
		}
		if m := wsFrom(t, "127.0.0.10", web, nil); m.Op != wire.OpPong {
			t.Errorf("a WebSocket of another client through HAProxy: got %+v, want pong", m)
		}
	})
	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "proxy_header"); got != 0 {
		t.Errorf("refused proxy_header = %v, want 0: HAProxy's headers were not all read", got)
	}
}
