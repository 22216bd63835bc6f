package web_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/internal/proxyproto"
	"github.com/switchboard/switchboard/internal/web"
)

// proxyHeaderBalancer is the address the tests' PROXY protocol balancer
// connects from: on the node's loopback, as a sidecar would be.
const proxyHeaderBalancer = "127.0.0.2"

// serveBehindBalancer serves h on loopback behind a PROXY protocol
// balancer at proxyHeaderBalancer, and returns the listener's address.
func serveBehindBalancer(t *testing.T, h http.Handler) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &proxyproto.HeaderListener{Listener: raw, From: func(a netip.Addr) bool { return a == netip.MustParseAddr(proxyHeaderBalancer) }}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return raw.Addr().String()
}

// viaBalancer sends header, then request, from the balancer to addr, and
// returns the response, its body left to the caller.
func viaBalancer(t *testing.T, addr, header, request string) *http.Response {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(proxyHeaderBalancer)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, header+request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Without an admin token only loopback may drain, and a PROXY protocol
// header naming 127.0.0.1 (a client on the balancer's own host, which is
// not the node's) is no loopback: 403, nor is a client the header relays
// without naming it. The balancer's own connection (a version 2 LOCAL
// header), from its real loopback address, may.
func TestProxyHeaderLoopbackMayNotDrain(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         int
	}{
		{"a header naming loopback", "PROXY TCP4 127.0.0.1 127.0.0.1 40000 7071\r\n", http.StatusForbidden},
		{"a header naming another host's loopback address", "PROXY TCP4 127.0.0.1 192.0.2.1 40000 7071\r\n", http.StatusForbidden},
		// A client relayed without being named may be anywhere: the
		// balancer's loopback address is not its.
		{"a client the header does not describe (version 1 UNKNOWN)", "PROXY UNKNOWN\r\n", http.StatusForbidden},
		{"a client the header does not describe (version 2 PROXY, UNSPEC)", "\r\n\r\n\x00\r\nQUIT\n\x21\x00\x00\x00", http.StatusForbidden},
		{"the balancer's own connection, from loopback", "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeSource{}
			addr := serveBehindBalancer(t, web.NewHandler(src, prometheus.NewRegistry()))
			resp := viaBalancer(t, addr, tc.header, "POST /v1/drain HTTP/1.1\r\nHost: "+addr+"\r\nContent-Length: 0\r\n\r\n")
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("POST /v1/drain: %d %s, want %d", resp.StatusCode, body, tc.want)
			}
			// Refused, it says why 127.0.0.1 in a header is no loopback.
			if says := "PROXY protocol header names (or relays unnamed) never counts as loopback"; tc.want == http.StatusForbidden && !strings.Contains(string(body), says) {
				t.Errorf("POST /v1/drain refused with %s; want it to say %q", body, says)
			}
			if want := tc.want == http.StatusOK; src.draining.Load() != want {
				t.Errorf("draining %v, want %v", src.draining.Load(), want)
			}
		})
	}
}

// A dashboard stream through a PROXY protocol balancer whose header names
// the same address as source and destination (127.0.0.1 to 127.0.0.1)
// counts under that address like any other client's: the node's own
// host is exempt only by the connection's own addresses.
func TestProxyHeaderStreamsCountPerSource(t *testing.T) {
	src := &fakeSource{}
	mon, stop := runMonitor(src)
	defer stop()
	addr := serveBehindBalancer(t, web.NewHandler(src, prometheus.NewRegistry(), web.WithMonitor(mon)))
	for i := range web.MaxStreamsPerSource + 1 {
		resp := viaBalancer(t, addr, "PROXY TCP4 127.0.0.1 127.0.0.1 40000 7071\r\n", "GET /v1/events HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
		t.Cleanup(func() { resp.Body.Close() })
		want := http.StatusOK
		if i == web.MaxStreamsPerSource {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("stream %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}
