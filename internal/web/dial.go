package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// ErrNoHTTPAddr is returned by Dialer for a node whose HTTP address it
// does not know.
var ErrNoHTTPAddr = errors.New("web: no HTTP address known for this node")

// Dialer opens protocol connections over WebSocket instead of TCP, the way
// browsers reach the nodes: it satisfies client.Dialer, so a Go client
// (client.WithDialer) speaks protocol v1 through each node's /v1/ws with
// everything else unchanged. The client names nodes by their client
// address (the common address's answers, the directory's addr); HTTPAddr
// maps each to the node's HTTP address (the directory's http).
//
// It dials ws:// only; per-message compression is off, as on the nodes.
type Dialer struct {
	// HTTPAddr gives the HTTP address (HOST:PORT) of the node whose
	// client address is addr, and false for an unknown node.
	HTTPAddr func(addr string) (string, bool)
	// Net opens the TCP connections (a zero net.Dialer when nil).
	Net *net.Dialer
}

// DialContext opens a WebSocket to the node at addr and returns it as a
// stream of protocol lines (see WSConn). ctx bounds the TCP connect and
// the WebSocket handshake, not the connection's life.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	httpAddr, ok := d.HTTPAddr(addr)
	if !ok {
		return nil, fmt.Errorf("web: dialing %s over WebSocket: %w", addr, ErrNoHTTPAddr)
	}
	nd := d.Net
	if nd == nil {
		nd = &net.Dialer{}
	}
	// The handshake's one connection, kept for WSConn's deadlines.
	var (
		mu  sync.Mutex
		raw net.Conn
	)
	transport := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, httpAddr)
			if err == nil {
				mu.Lock()
				raw = c
				mu.Unlock()
			}
			return c, err
		},
	}
	ws, _, err := websocket.Dial(ctx, "ws://"+httpAddr+WebSocketPath, &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: transport},
		Subprotocols:    []string{Subprotocol},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, fmt.Errorf("web: dialing %s over WebSocket at %s: %w", addr, httpAddr, err)
	}
	mu.Lock()
	c := raw
	mu.Unlock()
	if c == nil || ws.Subprotocol() != Subprotocol {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("web: %s answered the WebSocket without the subprotocol %s", httpAddr, Subprotocol)
	}
	return NewWSConn(ws, c), nil
}
