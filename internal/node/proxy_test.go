package node_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/web"
	"github.com/switchboard/switchboard/wire"
)

// wsFrom opens a WebSocket to httpAddr from the address from, with the
// extra header h, pings, and returns the first message the node sends.
func wsFrom(t *testing.T, from, httpAddr string, h http.Header) wire.Message {
	t.Helper()
	return wsVia(t, dialerFrom(from), from, httpAddr, h)
}

// wsVia is wsFrom over connections d makes, from is what d dials as.
func wsVia(t *testing.T, d client.Dialer, from, httpAddr string, h http.Header) wire.Message {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+httpAddr+web.WebSocketPath, &websocket.DialOptions{
		Subprotocols: []string{web.Subprotocol}, HTTPClient: hc, HTTPHeader: h,
	})
	if err != nil {
		t.Fatalf("a WebSocket from %s: %v", from, err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	c := &wsClient{t: t, ws: ws}
	c.send(wire.Message{Op: wire.OpPing})
	m, err := c.recv()
	if err != nil {
		t.Fatalf("a WebSocket from %s: %v", from, err)
	}
	return m
}

// WebSockets through a trusted reverse proxy count per client, not as the
// proxy; a header from anyone else changes nothing.
func TestWebSocketsThroughATrustedProxyCountPerClient(t *testing.T) {
	const proxyAddr = "127.0.0.50"
	trusted, err := forwarded.Parse(proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.MaxConnsPerIP = 1
		cfg.TrustedProxies = trusted
	}})
	n := c.Nodes[0]

	// The proxy (httputil's, which adds X-Forwarded-For) reaches the node
	// from its own address.
	target, err := url.Parse("http://" + n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{DialContext: dialerFrom(proxyAddr).DialContext}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	for _, client := range []string{"127.0.0.61", "127.0.0.62"} {
		if m := wsFrom(t, client, ln.Addr().String(), nil); m.Op != wire.OpPong {
			t.Errorf("%s through the proxy: got %+v, want pong", client, m)
		}
	}
	if m := wsFrom(t, "127.0.0.61", ln.Addr().String(), nil); m.Code != wire.CodeTooManyConns {
		t.Errorf("a second WebSocket of 127.0.0.61 through the proxy: got %+v, want too_many_connections", m)
	}

	// Directly, a forged header is the client's own word.
	forged := http.Header{"X-Forwarded-For": {"127.0.0.99"}}
	if m := wsFrom(t, "127.0.0.70", n.HTTPAddr(), forged); m.Op != wire.OpPong {
		t.Errorf("a direct WebSocket: got %+v, want pong", m)
	}
	forged = http.Header{"X-Forwarded-For": {"127.0.0.98"}}
	if m := wsFrom(t, "127.0.0.70", n.HTTPAddr(), forged); m.Code != wire.CodeTooManyConns {
		t.Errorf("a second direct WebSocket from 127.0.0.70 with a forged X-Forwarded-For: got %+v, want too_many_connections", m)
	}
}
