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

func TestPagesAndStats(t *testing.T) {
	h := web.NewHandler(&fakeSource{}, prometheus.NewRegistry(), web.WithUI(http.NotFoundHandler()))
	for _, tt := range []struct {
		path string
		want int
		cors bool
	}{
		{"/v1/directory", 200, true},
		{"/v1/stats", 200, true},
		{"/anything", 404, false},
	} {
		r := httptest.NewRequest("GET", tt.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want || (w.Header().Get("Access-Control-Allow-Origin") == "*") != tt.cors {
			t.Errorf("GET %s: %d, CORS %q; want %d, CORS %v", tt.path, w.Code, w.Header().Get("Access-Control-Allow-Origin"), tt.want, tt.cors)
		}
	}
}
