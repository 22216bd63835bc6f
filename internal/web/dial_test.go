package web_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/internal/web"
)

// TestDialerCarriesLines runs protocol lines both ways through a real
// WebSocket: a Go client dialing with web.Dialer, the handler's WSConn on
// the other side. The server answers each line with a batch of three in
// one Write (one of them longer than the socket buffer), which must
// arrive as three lines, in order.
func TestDialerCarriesLines(t *testing.T) {
	long := strings.Repeat("x", 3000)
	serve := func(conn net.Conn) error {
		defer conn.Close()
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return nil
			}
			in := strings.TrimSuffix(line, "\n")
			batch := fmt.Sprintf("%s-1\n%s-2 %s\n%s-3\n", in, in, long, in)
			if _, err := conn.Write([]byte(batch)); err != nil {
				return err
			}
		}
	}
	srv := httptest.NewServer(web.NewHandler(&fakeSource{}, prometheus.NewRegistry(), web.WithConnServer(serve)))
	defer srv.Close()
	d := &web.Dialer{HTTPAddr: func(addr string) (string, bool) {
		return srv.Listener.Addr().String(), addr == "n1:7070"
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := d.DialContext(ctx, "tcp", "elsewhere:7070"); !errors.Is(err, web.ErrNoHTTPAddr) {
		t.Fatalf("dialing an unknown node: %v, want ErrNoHTTPAddr", err)
	}
	conn, err := d.DialContext(ctx, "tcp", "n1:7070")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write([]byte("a\nb\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	var got []string
	for range 6 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, strings.Replace(strings.TrimSuffix(line, "\n"), " "+long, " LONG", 1))
	}
	want := []string{"a-1", "a-2 LONG", "a-3", "b-1", "b-2 LONG", "b-3"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
}
