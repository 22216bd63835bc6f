package node_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/web"
)

// A WebSocket session leaves the HTTP listener's connection limit when it
// is upgraded: from then on it is a client connection, bounded like any
// other by --max-conns and --max-conns-per-ip. It used to keep its HTTP
// slot for its whole life, so node.MaxHTTPConns browser users (256) left
// no room on the listener: /healthz, /readyz and /metrics were closed at
// accept (a supervisor's probe then restarts a healthy node), and so was
// the next browser, however much capacity the node had.
func TestWebSocketsLeaveTheHTTPLimit(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.MaxConns = node.MaxHTTPConns }})
	n := c.Nodes[0]
	url := "ws://" + n.HTTPAddr() + web.WebSocketPath
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	dial := func() (*websocket.Conn, error) {
		ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{web.Subprotocol}})
		if err == nil {
			t.Cleanup(func() { _ = ws.CloseNow() })
		}
		return ws, err
	}
	for i := range node.MaxHTTPConns {
		if _, err := dial(); err != nil {
			t.Fatalf("WebSocket %d: %v", i+1, err)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + n.HTTPAddr() + path)
		if err != nil {
			t.Fatalf("GET %s beside %d WebSockets: %v", path, node.MaxHTTPConns, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s beside %d WebSockets = %d", path, node.MaxHTTPConns, resp.StatusCode)
		}
	}
	// The WebSockets still count where client connections do: the node
	// holds --max-conns (256 here) of them, so the next one is upgraded,
	// told too_many_connections and closed.
	ws, err := dial()
	if err != nil {
		t.Fatalf("one more WebSocket: %v", err)
	}
	_, msg, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(msg), "too_many_connections") {
		t.Errorf("one more WebSocket than --max-conns: read %q, %v; want too_many_connections", msg, err)
	}
}
