package node_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// httpFrom is an HTTP client whose connections come from the loopback
// address from (127.0.0.x), one connection per request.
func httpFrom(from string) *http.Client {
	d := dialerFrom(from)
	return &http.Client{Timeout: settle, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// idleKeepAlive opens a connection from from, has one request served on
// it and leaves it open, idle, as a keep-alive connection.
func idleKeepAlive(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	conn, err := dialerFrom(from).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(settle))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a keep-alive request from %s: %v", from, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return conn
}

// A few addresses holding idle connections cannot shut the operator out
// of the HTTP listener. Four addresses used to fill its node.MaxHTTPConns
// slots with node.MaxHTTPConnsPerIP keep-alive connections each (one
// request, then nothing for up to a minute, then again): a health check,
// a scrape of the metrics and an admin's drain were closed at accept. A
// new connection now takes the place of an idle one, the longest idle of
// the address holding the most.
func TestHTTPIdleConnectionsMakeRoom(t *testing.T) {
	const secret = "an-admin-secret-long-enough-0123456789"
	file := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.AdminToken = file }})
	n := c.Nodes[0]
	addr := n.HTTPAddr()
	for i := range node.MaxHTTPConns / node.MaxHTTPConnsPerIP {
		from := fmt.Sprintf("127.0.0.%d", 2+i)
		for range node.MaxHTTPConnsPerIP {
			idleKeepAlive(t, from, addr)
		}
	}

	resp, err := httpFrom("127.0.0.1").Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("a health check beside %d idle connections: %v", node.MaxHTTPConns, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz beside %d idle connections = %d", node.MaxHTTPConns, resp.StatusCode)
	}

	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/drain", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err = httpFrom("127.0.0.9").Do(req)
	if err != nil {
		t.Fatalf("an admin's drain beside %d idle connections: %v", node.MaxHTTPConns, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n.Status() != directory.Draining {
		t.Errorf("POST /v1/drain beside %d idle connections = %d %s; node %s, want it draining", node.MaxHTTPConns, resp.StatusCode, strings.TrimSpace(string(body)), n.Status())
	}
	// The health check took an idle connection's place; the drain took
	// another's, or the slot the health check left.
	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "http_idle"); got < 1 || got > 2 {
		t.Errorf("idle HTTP connections closed to make room = %v, want 1 or 2", got)
	}
}

// Nor can a few addresses holding requests whose bodies never finish
// coming, to a handler that reads its body (here one of a front's, as
// serve --rtc's offers are): node.MaxHTTPConnsPerIP from each of four
// addresses, each with a byte of its announced body sent. Such a
// connection counted as serving a request until the body's deadline, and
// the attacker reconnected at each: a health check from another address
// was closed at accept. A connection whose handler waits for its body
// now counts as idle, and makes room.
func TestHTTPSlowBodiesMakeRoom(t *testing.T) {
	defer node.SetHTTPBodyTimeout(10 * time.Minute)() // the bodies never end by themselves here
	c := nodetest.Start(t, 1, nodetest.Options{})
	n := c.Nodes[0]
	reading := make(chan struct{}, node.MaxHTTPConns)
	n.HandleHTTP("POST /test/offer", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reading <- struct{}{}
		if _, err := io.ReadAll(r.Body); err != nil {
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	addr := n.HTTPAddr()
	for i := range node.MaxHTTPConns / node.MaxHTTPConnsPerIP {
		from := fmt.Sprintf("127.0.0.%d", 2+i)
		for range node.MaxHTTPConnsPerIP {
			conn, err := dialerFrom(from).Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			if _, err := io.WriteString(conn, "POST /test/offer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range node.MaxHTTPConns {
		<-reading // every slot held by a handler waiting for its body
	}
	resp, err := httpFrom("127.0.0.9").Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("a readiness check beside %d requests waiting for their bodies: %v", node.MaxHTTPConns, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz beside %d requests waiting for their bodies = %d", node.MaxHTTPConns, resp.StatusCode)
	}
	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "http_idle"); got != 1 {
		t.Errorf("connections closed to make room = %v, want 1", got)
	}
}
