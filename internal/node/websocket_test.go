package node_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/web"
	"github.com/switchboard/switchboard/wire"
)

// wsClient is a test's WebSocket session: one protocol message per text
// frame.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

// dialWS opens a WebSocket to a node's HTTP address; origin, if set, is
// sent as the Origin header.
func dialWS(t *testing.T, httpAddr, origin string) (*wsClient, *http.Response, error) {
	t.Helper()
	return dialWSAs(t, httpAddr, "", origin)
}

// dialWSAs is dialWS with the Host header host (empty: httpAddr), as a
// browser sends the name it reached the node by.
func dialWSAs(t *testing.T, httpAddr, host, origin string) (*wsClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := websocket.Dial(ctx, "ws://"+httpAddr+web.WebSocketPath, &websocket.DialOptions{
		Subprotocols: []string{web.Subprotocol},
		HTTPHeader:   h,
		Host:         host,
	})
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &wsClient{t: t, ws: ws}, resp, nil
}

func mustDialWS(t *testing.T, httpAddr string) *wsClient {
	t.Helper()
	c, _, err := dialWS(t, httpAddr, "")
	if err != nil {
		t.Fatalf("dialing the WebSocket: %v", err)
	}
	return c
}

func (c *wsClient) sendRaw(frame string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		c.t.Fatalf("writing a frame: %v", err)
	}
}

func (c *wsClient) send(m wire.Message) {
	c.t.Helper()
	line, err := wire.Encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(bytes.TrimSuffix(line, []byte("\n"))))
}

// recvFrame reads one frame, checks it is a text frame holding exactly
// one line without its newline, and decodes it.
func (c *wsClient) recv() (wire.Message, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	typ, p, err := c.ws.Read(ctx)
	if err != nil {
		return wire.Message{}, err
	}
	if typ != websocket.MessageText || bytes.ContainsAny(p, "\r\n") {
		c.t.Fatalf("got a %v frame %q, want one line in a text frame", typ, p)
	}
	return wire.Decode(p)
}

// recvReply is the next message that is not a directory push.
func (c *wsClient) recvReply() wire.Message {
	c.t.Helper()
	for {
		m, err := c.recv()
		if err != nil {
			c.t.Fatalf("reading: %v", err)
		}
		if m.Op != wire.OpDirectory {
			return m
		}
	}
}

func (c *wsClient) attach(user string) {
	c.t.Helper()
	c.send(wire.Message{Op: wire.OpHello, V: wire.Version, Client: "test/1"})
	if m, err := c.recv(); err != nil || m.Op != wire.OpDirectory {
		c.t.Fatalf("hello: got %+v %v, want a directory", m, err)
	}
	c.send(wire.Message{Op: wire.OpAttach, User: user})
	if m := c.recvReply(); m.Op != wire.OpAttached {
		c.t.Fatalf("attach: got %+v, want attached", m)
	}
}

// expectClose reads until the server closes, and returns the messages
// read on the way.
func (c *wsClient) expectClose() []wire.Message {
	c.t.Helper()
	var got []wire.Message
	for {
		m, err := c.recv()
		if err != nil {
			if websocket.CloseStatus(err) == -1 && !errors.Is(err, context.DeadlineExceeded) {
				return got // closed without a close frame: still closed
			}
			if errors.Is(err, context.DeadlineExceeded) {
				c.t.Fatalf("the server did not close; read %+v", got)
			}
			return got
		}
		got = append(got, m)
	}
}

func TestWebSocketRoomAcrossTransports(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(settle)
	ann := mustDialWS(t, c.Nodes[0].HTTPAddr())
	ann.attach("ann")
	bob := mustDialWS(t, c.Nodes[1].HTTPAddr())
	bob.attach("bob")
	cat := dial(t, c.Nodes[1].Addr()) // TCP, in the same room
	attach(t, cat, "cat")

	for _, s := range []*wsClient{ann, bob} {
		s.send(wire.Message{Op: wire.OpJoin, Room: "lobby"})
		if m := s.recvReply(); m.Op != wire.OpRoom {
			t.Fatalf("join: got %+v, want the room", m)
		}
	}
	send(t, cat, wire.Message{Op: wire.OpJoin, Room: "lobby"})
	if m := recvReply(t, cat); m.Op != wire.OpRoom {
		t.Fatalf("join over TCP: got %+v", m)
	}

	// Two chunks in one frame would be one bad line: each goes alone.
	for i, ch := range []string{"h", "i"} {
		ann.send(wire.Message{Op: wire.OpText, Room: "lobby", Seq: uint64(i + 1), T: ch})
	}
	acks := 0
	for acks < 2 {
		m := ann.recvReply()
		switch m.Op {
		case wire.OpAck:
			acks++
		case wire.OpPresence:
		default:
			t.Fatalf("ann got %+v, want acks", m)
		}
	}
	var viaWS, viaTCP strings.Builder
	for viaWS.Len() < 2 {
		if m := bob.recvReply(); m.Op == wire.OpText && m.From == "ann" {
			viaWS.WriteString(m.T)
		}
	}
	for viaTCP.Len() < 2 {
		if m := recvReply(t, cat); m.Op == wire.OpText && m.From == "ann" {
			viaTCP.WriteString(m.T)
		}
	}
	if viaWS.String() != "hi" || viaTCP.String() != "hi" {
		t.Errorf("received %q over WebSocket and %q over TCP, want \"hi\"", viaWS.String(), viaTCP.String())
	}

	// And the other way: TCP to WebSocket.
	send(t, cat, wire.Message{Op: wire.OpText, Room: "lobby", Seq: 1, T: "!"})
	for {
		if m := ann.recvReply(); m.Op == wire.OpText && m.From == "cat" {
			if m.T != "!" {
				t.Errorf("ann got %q from cat, want \"!\"", m.T)
			}
			break
		}
	}
}

func TestWebSocketErrorsAsTCP(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		// The first subtest's five round trips, with no hello, must end
		// before it, on a loaded machine too.
		cfg.HelloTimeout = 5 * time.Second
	}})
	addr := c.Nodes[0].HTTPAddr()

	t.Run("errors that keep the session", func(t *testing.T) {
		s := mustDialWS(t, addr)
		for _, tt := range []struct{ frame, code string }{
			{"not json", wire.CodeBadJSON},
			{`{"v":1}`, wire.CodeBadRequest},
			{`{"op":"frobnicate"}`, wire.CodeUnknownOp},
			{`{"op":"join","room":"x"}`, wire.CodeNoHello},
		} {
			s.sendRaw(tt.frame)
			m, err := s.recv()
			if err != nil || m.Op != wire.OpError || m.Code != tt.code {
				t.Errorf("%q: got %+v %v, want error %s", tt.frame, m, err, tt.code)
			}
		}
		// A frame with a newline inside is still one line.
		s.sendRaw("{\"op\":\n\"ping\"}\n")
		if m, err := s.recv(); err != nil || m.Op != wire.OpPong {
			t.Errorf("a ping with newlines inside its frame: got %+v %v, want pong", m, err)
		}
	})

	t.Run("line too long", func(t *testing.T) {
		s := mustDialWS(t, addr)
		s.sendRaw(`{"op":"ping","x":"` + strings.Repeat("a", wire.MaxLine) + `"}`)
		got := s.expectClose()
		if len(got) == 0 || got[len(got)-1].Code != wire.CodeLineTooLong {
			t.Errorf("got %+v before the close, want line_too_long", got)
		}
	})

	t.Run("hello timeout", func(t *testing.T) {
		s := mustDialWS(t, addr)
		got := s.expectClose()
		if len(got) != 1 || got[0].Code != wire.CodeHelloTimeout {
			t.Errorf("got %+v before the close, want hello_timeout", got)
		}
	})
}

func TestWebSocketHandshake(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 1 {
			cfg.WSOrigins = []string{"*.example.org"}
		}
	}})
	n1, n2 := c.Nodes[0].HTTPAddr(), c.Nodes[1].HTTPAddr()
	_, port, err := net.SplitHostPort(n1)
	if err != nil {
		t.Fatal(err)
	}
	rebound := "rebind.example.net:" + port // a name of the attacker's, resolving to n1
	tests := []struct {
		name, addr, host, origin string
		want                     int // 101 or the refusal
	}{
		{"no origin: not a browser", n1, "", "", http.StatusSwitchingProtocols},
		{"the node's own page", n1, "", "http://" + n1, http.StatusSwitchingProtocols},
		{"a page of another node of the service", n1, "", "http://" + n2, http.StatusSwitchingProtocols},
		{"a page under the service's name", n1, "", "https://" + c.Config.Service + ":8443", http.StatusSwitchingProtocols},
		{"a page of this machine", n1, "", "http://localhost:3000", http.StatusSwitchingProtocols},
		{"a foreign page", n1, "", "https://evil.example.org", http.StatusForbidden},
		{"a DNS-rebinding page: Origin and Host agree on a name the service does not publish", n1, rebound, "http://" + rebound, http.StatusForbidden},
		{"a foreign page allowed by pattern", n2, "", "https://chat.example.org", http.StatusSwitchingProtocols},
		{"a foreign page the pattern does not match", n2, "", "https://example.com", http.StatusForbidden},
		{"a malformed origin", n1, "", "::", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := dialWSAs(t, tt.addr, tt.host, tt.origin)
			got := 0
			if resp != nil {
				got = resp.StatusCode
			}
			if got != tt.want {
				t.Errorf("handshake with origin %q: status %d (%v), want %d", tt.origin, got, err, tt.want)
			}
		})
	}

	t.Run("no subprotocol", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), settle)
		defer cancel()
		ws, resp, err := websocket.Dial(ctx, "ws://"+n1+web.WebSocketPath, nil)
		if err == nil {
			_ = ws.CloseNow()
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("without the subprotocol: %v %v, want 400", resp, err)
		}
	})
}

// TestWebSocketOverTLS: with --http-tls the same listener serves wss,
// under the node's certificate for the service name.
func TestWebSocketOverTLS(t *testing.T) {
	sec := newSecrets(t, "wss.test")
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		sec.configure(i, cfg)
		cfg.HTTPTLS = true
	}})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sec.caPool, ServerName: sec.service}}}
	ws, _, err := websocket.Dial(ctx, "wss://"+c.Nodes[0].HTTPAddr()+web.WebSocketPath, &websocket.DialOptions{
		Subprotocols: []string{web.Subprotocol},
		HTTPClient:   hc,
	})
	if err != nil {
		t.Fatalf("dialing wss: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	s := &wsClient{t: t, ws: ws}
	s.send(wire.Message{Op: wire.OpHello, V: wire.Version, Client: "test/1"})
	if m, err := s.recv(); err != nil || m.Op != wire.OpDirectory || m.Service != sec.service {
		t.Fatalf("hello over wss: got %+v %v, want the directory of %s", m, err, sec.service)
	}
	s.send(wire.Message{Op: wire.OpPing})
	if m, err := s.recv(); err != nil || m.Op != wire.OpPong {
		t.Errorf("ping over wss: got %+v %v, want pong", m, err)
	}
}

// TestWebSocketTooManyConnections: WebSockets count against the same
// connection limits as TCP, and a refused one gets the same error.
func TestWebSocketTooManyConnections(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.MaxConns = 1 }})
	first := mustDialWS(t, c.Nodes[0].HTTPAddr())
	first.send(wire.Message{Op: wire.OpPing})
	if m, err := first.recv(); err != nil || m.Op != wire.OpPong {
		t.Fatalf("the first WebSocket: %+v %v, want pong", m, err)
	}
	second := mustDialWS(t, c.Nodes[0].HTTPAddr())
	got := second.expectClose()
	if len(got) != 1 || got[0].Code != wire.CodeTooManyConns {
		t.Errorf("the second WebSocket got %+v before the close, want too_many_connections", got)
	}
}
