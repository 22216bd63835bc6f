package web_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	sbnode "github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/web"
	"github.com/switchboard/switchboard/wire"
)

// TestWebSocketPingAfterSilence: a WebSocket client may send ping
// frames (RFC 6455 5.5.2; many libraries do, every 20 or 30 s, to keep
// proxies from closing an idle connection), and the node must answer
// them with a pong whenever they come. The node bounds each of its own
// writes with a deadline (WriteTimeout) set on the connection; the pong
// the WebSocket library writes by itself must not inherit the deadline
// of the node's last write, long passed on a quiet session, or the pong
// fails and the session with it.
func TestWebSocketPingAfterSilence(t *testing.T) {
	// Short enough to pass three times over in a few seconds, long
	// enough that no write of a loaded machine's node overruns it.
	const writeTimeout = 2 * time.Second
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *sbnode.Config) {
		cfg.WriteTimeout = writeTimeout
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+c.Nodes[0].HTTPAddr()+web.WebSocketPath, &websocket.DialOptions{Subprotocols: []string{web.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	frames := make(chan wire.Message, 64)
	readErr := make(chan error, 1)
	go func() {
		for {
			_, p, err := ws.Read(ctx)
			if err != nil {
				readErr <- err
				close(frames)
				return
			}
			if m, err := wire.Decode(p); err == nil {
				frames <- m
			}
		}
	}()
	send := func(m wire.Message) {
		t.Helper()
		line, err := wire.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Write(ctx, websocket.MessageText, bytes.TrimSuffix(line, []byte("\n"))); err != nil {
			t.Fatal(err)
		}
	}
	await := func(op string) {
		t.Helper()
		for m := range frames {
			if m.Op == op {
				return
			}
		}
		t.Fatalf("the session ended before %s: %v", op, <-readErr)
	}
	send(wire.Message{Op: wire.OpHello, V: wire.Version, Client: "ping-test/1"})
	send(wire.Message{Op: wire.OpAttach, User: "ann"})
	await(wire.OpAttached)

	// The scenario is time passing: the node writes nothing for longer
	// than the deadline it set for its last write.
	time.Sleep(3 * writeTimeout)
	for i := range 3 {
		pinged := make(chan error, 1)
		go func() { pinged <- ws.Ping(ctx) }()
		select {
		case err := <-pinged:
			if err != nil {
				t.Fatalf("WebSocket ping %d after a silence: %v", i+1, err)
			}
		case err := <-readErr:
			t.Fatalf("WebSocket ping %d after a silence: the session ended: %v", i+1, err)
		}
	}
	// The session goes on.
	send(wire.Message{Op: wire.OpPing})
	await(wire.OpPong)
}
