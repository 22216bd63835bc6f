package web_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/internal/web"
)

// TestWSConnFraming checks the adapter alone: lines written together go
// out one per frame, a line written in pieces goes out whole, and
// frames read back as lines.
func TestWSConnFraming(t *testing.T) {
	got := make(chan string, 16)
	serve := func(c net.Conn) error {
		defer c.Close()
		// Two lines and the start of a third, then its end.
		if _, err := c.Write([]byte("{\"op\":\"a\"}\n{\"op\":\"b\"}\n{\"op\"")); err != nil {
			return err
		}
		if _, err := c.Write([]byte(":\"c\"}\n")); err != nil {
			return err
		}
		buf := make([]byte, 64)
		var read strings.Builder
		for strings.Count(read.String(), "\n") < 2 {
			n, err := c.Read(buf)
			if err != nil {
				return err
			}
			read.Write(buf[:n])
		}
		got <- read.String()
		return nil
	}
	srv := httptest.NewServer(web.NewHandler(&fakeSource{}, prometheus.NewRegistry(), web.WithConnServer(serve)))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+web.WebSocketPath, &websocket.DialOptions{Subprotocols: []string{web.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if ws.Subprotocol() != web.Subprotocol {
		t.Errorf("subprotocol %q, want %q", ws.Subprotocol(), web.Subprotocol)
	}
	for _, want := range []string{`{"op":"a"}`, `{"op":"b"}`, `{"op":"c"}`} {
		typ, p, err := ws.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(p) != want {
			t.Fatalf("frame %v %q %v, want text %q", typ, p, err, want)
		}
	}
	for _, f := range []string{"x\r\ny", "z"} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case s := <-got:
		if s != "x  y\nz\n" {
			t.Errorf("the server read %q, want %q", s, "x  y\nz\n")
		}
	case <-ctx.Done():
		t.Fatal("the server read nothing")
	}
}

// The directory, the stats and the event stream are readable across
// origins by the pages that may open a WebSocket (the service's own, and
// those web.WithOrigins allows), and by no other page: with "*", any page
// on the web that a user of an intranet node opened read that node's
// directory (every node's addresses, users and groups) through the
// user's browser.
func TestPagesAndStats(t *testing.T) {
	src := &fakeSource{}
	mon, stop := runMonitor(src)
	defer stop()
	h := web.NewHandler(src, prometheus.NewRegistry(), web.WithUI(http.NotFoundHandler()), web.WithMonitor(mon), web.WithOrigins([]string{"*.example.org"}))
	for _, tt := range []struct {
		path, origin string
		want         int
		cors         string // the Access-Control-Allow-Origin wanted
	}{
		{"/v1/directory", "", 200, ""},
		{"/v1/directory", "http://s:8080", 200, "http://s:8080"},
		{"/v1/directory", "https://app.example.org", 200, "https://app.example.org"},
		{"/v1/directory", "http://localhost:3000", 200, "http://localhost:3000"},
		{"/v1/directory", "https://evil.example", 200, ""},
		{"/v1/directory", "null", 200, ""},
		{"/v1/stats", "http://s", 200, "http://s"},
		{"/v1/stats", "https://evil.example", 200, ""},
		{"/v1/events", "https://evil.example", 200, ""},
		{"/anything", "http://s", 404, ""},
	} {
		rctx, rcancel := context.WithCancel(context.Background())
		r := httptest.NewRequest("GET", "http://10.0.0.1:7071"+tt.path, nil).WithContext(rctx) // the node by address
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		w := httptest.NewRecorder()
		if tt.path == "/v1/events" {
			rcancel() // the stream answers, then ends with the request
		}
		h.ServeHTTP(w, r)
		rcancel()
		if got := w.Header().Get("Access-Control-Allow-Origin"); w.Code != tt.want || got != tt.cors {
			t.Errorf("GET %s from %q: %d, CORS %q; want %d, CORS %q", tt.path, tt.origin, w.Code, got, tt.want, tt.cors)
		}
	}
}

// A binary frame is no protocol line: the server's read fails, and the
// peer is closed with 1003 (unsupported data) and the reason. Another
// session on the same handler reads on.
func TestWSBinaryFrameClosesWith1003(t *testing.T) {
	reads := make(chan string, 4)
	serve := func(c net.Conn) error {
		defer c.Close()
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			reads <- "error: " + err.Error()
			return err
		}
		reads <- string(buf[:n])
		return nil
	}
	srv := httptest.NewServer(web.NewHandler(&fakeSource{}, prometheus.NewRegistry(), web.WithConnServer(serve)))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dial := func() *websocket.Conn {
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+web.WebSocketPath, &websocket.DialOptions{Subprotocols: []string{web.Subprotocol}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		return ws
	}
	bad, good := dial(), dial()
	if err := bad.Write(ctx, websocket.MessageBinary, []byte(`{"op":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	_, _, err := bad.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusUnsupportedData {
		t.Errorf("after a binary frame: %v (close status %d), want %d", err, code, websocket.StatusUnsupportedData)
	}
	select {
	case got := <-reads:
		if !strings.HasPrefix(got, "error: ") {
			t.Errorf("the server read %q from a binary frame, want an error", got)
		}
	case <-ctx.Done():
		t.Fatal("the server's read of a binary frame never ended")
	}
	if err := good.Write(ctx, websocket.MessageText, []byte(`{"op":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-reads:
		if got != `{"op":"hello"}` {
			t.Errorf("the other session read %q", got)
		}
	case <-ctx.Done():
		t.Fatal("the other session read nothing")
	}
}
