package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/internal/web"
)

// A DNS-rebinding page of http://rebind.example:7071 (a name of the
// attacker's that resolves to the node) reads the node's routes as
// Chromium sends its fetch("/v1/directory") over plain HTTP: no
// Sec-Fetch-* (browsers send them only to https, localhost and loopback
// URLs) and no Origin (a same-origin GET has none). Only the name tells
// it apart, so it gets 421; the same request by address gets 200.
func TestRebindingReadOverPlainHTTP(t *testing.T) {
	src := &fakeSource{}
	mon, stop := runMonitor(src)
	defer stop()
	h := web.NewHandler(src, prometheus.NewRegistry(), web.WithMonitor(mon))
	for _, tt := range []struct {
		host string
		want int
	}{
		{"rebind.example:7071", http.StatusMisdirectedRequest},
		{"10.0.0.1:7071", http.StatusOK},
	} {
		for _, path := range []string{"/v1/directory", "/v1/stats", "/metrics", "/readyz", "/v1/events"} {
			rctx, rcancel := context.WithCancel(context.Background())
			r := httptest.NewRequest("GET", "http://"+tt.host+path, nil).WithContext(rctx)
			r.RemoteAddr = "10.0.0.9:5000"
			r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36")
			r.Header.Set("Accept", "*/*")
			r.Header.Set("Accept-Language", "en-US,en;q=0.9")
			r.Header.Set("Accept-Encoding", "gzip, deflate")
			r.Header.Set("Referer", "http://"+tt.host+"/")
			if path == "/v1/events" {
				rcancel() // a stream that answers ends with the request
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			rcancel()
			if w.Code != tt.want {
				t.Errorf("GET %s under Host %s, as a browser sends it over http: %d %.120q, want %d", path, tt.host, w.Code, w.Body, tt.want)
			}
		}
	}
}

// WithOrigins patterns that name no domain ("*": any page may open a
// WebSocket) let no name in for the reads, the attacker's included: a
// rebinding page still gets 421. Another site's page may read the
// directory across origins, as its WebSocket's hello would tell it, but
// not the stats nor the event stream; a site a pattern names may.
func TestCatchAllOriginsOpenNoReads(t *testing.T) {
	src := &fakeSource{}
	mon, stop := runMonitor(src)
	defer stop()
	for _, patterns := range [][]string{{"*"}, {"*:*"}, {"*:7071", "*.example.org"}} {
		h := web.NewHandler(src, prometheus.NewRegistry(), web.WithMonitor(mon), web.WithOrigins(patterns))
		for _, tt := range []struct {
			host, path, origin string
			want               int
			cors               string // the Access-Control-Allow-Origin wanted
		}{
			{"rebind.example:7071", "/v1/directory", "", http.StatusMisdirectedRequest, ""},
			{"rebind.example:7071", "/v1/stats", "", http.StatusMisdirectedRequest, ""},
			{"rebind.example:7071", "/v1/events", "", http.StatusMisdirectedRequest, ""},
			{"rebind.example:7071", "/metrics", "", http.StatusMisdirectedRequest, ""},
			{"rebind.example:7071", "/readyz", "", http.StatusMisdirectedRequest, ""},
			{"10.0.0.1:7071", "/v1/directory", "https://evil.example:7071", http.StatusOK, "https://evil.example:7071"},
			{"10.0.0.1:7071", "/v1/stats", "https://evil.example:7071", http.StatusOK, ""},
			{"10.0.0.1:7071", "/v1/events", "https://evil.example:7071", http.StatusOK, ""},
			{"10.0.0.1:7071", "/v1/stats", "http://10.0.0.1:7071", http.StatusOK, "http://10.0.0.1:7071"},
		} {
			rctx, rcancel := context.WithCancel(context.Background())
			r := httptest.NewRequest("GET", "http://"+tt.host+tt.path, nil).WithContext(rctx)
			r.RemoteAddr = "10.0.0.9:5000"
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.path == "/v1/events" {
				rcancel() // a stream that answers ends with the request
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			rcancel()
			if got := w.Header().Get("Access-Control-Allow-Origin"); w.Code != tt.want || got != tt.cors {
				t.Errorf("--ws-origins %q: GET %s under Host %s from %q: %d, CORS %q; want %d, CORS %q", patterns, tt.path, tt.host, tt.origin, w.Code, got, tt.want, tt.cors)
			}
		}
	}
	// A site a pattern names may read the stats across origins.
	h := web.NewHandler(src, prometheus.NewRegistry(), web.WithOrigins([]string{"*", "*.example.org"}))
	r := httptest.NewRequest("GET", "http://10.0.0.1:7071/v1/stats", nil)
	r.Header.Set("Origin", "https://app.example.org")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got := w.Header().Get("Access-Control-Allow-Origin"); w.Code != http.StatusOK || got != "https://app.example.org" {
		t.Errorf("GET /v1/stats from a site a pattern names: %d, CORS %q; want 200 and the site", w.Code, got)
	}
}

// runMonitor runs a Monitor of src until stop, which the test defers:
// the monitor stops before the test's cleanups close its streams and
// servers.
func runMonitor(src web.Source) (mon *web.Monitor, stop func()) {
	mon = web.NewMonitor(src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mon.Run(ctx); close(done) }()
	return mon, func() { cancel(); <-done }
}
