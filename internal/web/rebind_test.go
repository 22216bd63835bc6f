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
	mon := web.NewMonitor(src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mon.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
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
