package web_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/web"
	"github.com/switchboard/switchboard/wire"
)

type fakeSource struct{ draining atomic.Bool }

func (f *fakeSource) Directory() *wire.Directory { return &wire.Directory{Service: "s", Self: "n1"} }
func (f *fakeSource) Status() directory.Status {
	if f.draining.Load() {
		return directory.Draining
	}
	return directory.Up
}
func (f *fakeSource) SetDraining(on bool) { f.draining.Store(on) }

func TestAdminEndpoints(t *testing.T) {
	const secret = "0123456789abcdef-admin"
	tests := []struct {
		name      string
		opts      []web.Option
		method    string
		path      string
		remote    string
		auth      string
		origin    string // the page a browser names in Origin
		host      string // the request's Host, if not 10.0.0.1:7071 (the node by address)
		fetchSite string // Sec-Fetch-Site
		want      int
		draining  bool // after the request
	}{
		{name: "reads are open", method: "GET", path: "/v1/directory", remote: "10.0.0.9:5000", want: 200},
		{name: "readyz open", method: "GET", path: "/readyz", remote: "10.0.0.9:5000", want: 200},
		{name: "a rebinding page's read is refused", method: "GET", path: "/v1/directory", remote: "10.0.0.9:5000", host: "rebind.example:7071", fetchSite: "same-origin", want: 421},
		{name: "a rebinding page's read of the metrics is refused", method: "GET", path: "/metrics", remote: "10.0.0.9:5000", host: "rebind.example:7071", fetchSite: "same-origin", want: 421},
		{name: "a rebinding page's read of the stats is refused", method: "GET", path: "/v1/stats", remote: "10.0.0.9:5000", host: "rebind.example:7071", fetchSite: "same-origin", want: 421},
		{name: "a rebinding page's read of the readiness is refused", method: "GET", path: "/readyz", remote: "10.0.0.9:5000", host: "rebind.example:7071", fetchSite: "same-origin", want: 421},
		// A program's request under a name the service does not publish
		// looks like a rebinding page's over plain HTTP (no Sec-Fetch-Site,
		// no Origin), so it gets 421 too: a probe names the node by
		// address or by a published name, or the name goes in --ws-origins.
		{name: "a probe under a name not published is refused", method: "GET", path: "/readyz", remote: "10.0.0.9:5000", host: "rebind.example:7071", want: 421},
		{name: "a probe reads the readiness by address", method: "GET", path: "/readyz", remote: "10.0.0.9:5000", host: "10.0.0.1:7071", want: 200},
		{name: "a probe reads the readiness under the service's name", method: "GET", path: "/readyz", remote: "10.0.0.9:5000", host: "s:7071", want: 200},
		{name: "a probe reads the readiness under a name --ws-origins allows", opts: []web.Option{web.WithOrigins([]string{"*.corp.example:7071"})}, method: "GET", path: "/readyz", remote: "10.0.0.9:5000", host: "n1.corp.example:7071", want: 200},
		{name: "a scraper under a name not published is refused", method: "GET", path: "/metrics", remote: "10.0.0.9:5000", host: "rebind.example:7071", want: 421},
		{name: "healthz stays open to a page under any name", method: "GET", path: "/healthz", remote: "10.0.0.9:5000", host: "rebind.example:7071", fetchSite: "same-origin", want: 200},
		{name: "a page of the node reached by address reads", method: "GET", path: "/v1/directory", remote: "10.0.0.9:5000", host: "10.0.0.1:7071", fetchSite: "same-origin", want: 200},
		{name: "a page under the service's name reads", method: "GET", path: "/v1/directory", remote: "10.0.0.9:5000", host: "s:7071", fetchSite: "same-origin", want: 200},
		{name: "a URL the user typed under a name not published is refused", method: "GET", path: "/metrics", remote: "10.0.0.9:5000", host: "rebind.example:7071", fetchSite: "none", want: 421},
		{name: "another site's page under a name not published is refused", method: "GET", path: "/v1/directory", remote: "10.0.0.9:5000", host: "rebind.example:7071", origin: "https://elsewhere.example", fetchSite: "cross-site", want: 421},
		{name: "no token configured: loopback may drain", method: "POST", path: "/v1/drain", remote: "127.0.0.1:5000", want: 200, draining: true},
		{name: "no token configured: IPv6 loopback may drain", method: "POST", path: "/v1/drain", remote: "[::1]:5000", want: 200, draining: true},
		{name: "no token configured: a page's form from loopback is refused", method: "POST", path: "/v1/drain", remote: "127.0.0.1:5000", origin: "http://attacker.example", want: 403},
		{name: "no token configured: a rebinding page is refused", method: "POST", path: "/v1/drain", remote: "127.0.0.1:5000", origin: "http://rebind.example:7071", host: "rebind.example:7071", want: 403},
		{name: "no token configured: a page's request without Origin is refused", method: "DELETE", path: "/v1/drain", remote: "127.0.0.1:5000", fetchSite: "same-origin", want: 403},
		{name: "no token configured: a URL the user typed is not a page's", method: "POST", path: "/v1/drain", remote: "127.0.0.1:5000", fetchSite: "none", want: 200, draining: true},
		{name: "token: a page may send the token", opts: []web.Option{web.WithAdminToken([]byte(secret))}, method: "POST", path: "/v1/drain", remote: "10.0.0.9:5000", auth: "Bearer " + secret, origin: "http://ops.example", want: 200, draining: true},
		{name: "no token configured: others are refused", method: "POST", path: "/v1/drain", remote: "10.0.0.9:5000", want: 403},
		{name: "no token configured: a forwarding header does not help", method: "DELETE", path: "/v1/drain", remote: "10.0.0.9:5000", auth: "", want: 403},
		{name: "token: missing, even from loopback", opts: []web.Option{web.WithAdminToken([]byte(secret))}, method: "POST", path: "/v1/drain", remote: "127.0.0.1:5000", want: 401},
		{name: "token: wrong", opts: []web.Option{web.WithAdminToken([]byte(secret))}, method: "POST", path: "/v1/drain", remote: "10.0.0.9:5000", auth: "Bearer nope", want: 401},
		{name: "token: not bearer", opts: []web.Option{web.WithAdminToken([]byte(secret))}, method: "POST", path: "/v1/drain", remote: "10.0.0.9:5000", auth: "Basic " + secret, want: 401},
		{name: "token: right", opts: []web.Option{web.WithAdminToken([]byte(secret))}, method: "POST", path: "/v1/drain", remote: "10.0.0.9:5000", auth: "Bearer " + secret, want: 200, draining: true},
		{name: "token: right, undrain", opts: []web.Option{web.WithAdminToken([]byte(secret))}, method: "DELETE", path: "/v1/drain", remote: "10.0.0.9:5000", auth: "bearer " + secret, want: 200},
		{name: "token source with no secret: an empty bearer token does not pass", opts: []web.Option{web.WithAdminTokenSource(func() []byte { return nil })}, method: "POST", path: "/v1/drain", remote: "10.0.0.9:5000", auth: "Bearer ", want: 403},
		{name: "token source with no secret: loopback may drain", opts: []web.Option{web.WithAdminTokenSource(func() []byte { return []byte{} })}, method: "POST", path: "/v1/drain", remote: "127.0.0.1:5000", want: 200, draining: true},
		{name: "token: reads stay open", opts: []web.Option{web.WithAdminToken([]byte(secret))}, method: "GET", path: "/healthz", remote: "10.0.0.9:5000", want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{}
			h := web.NewHandler(src, prometheus.NewRegistry(), tt.opts...)
			r := httptest.NewRequest(tt.method, "http://10.0.0.1:7071"+tt.path, nil)
			r.RemoteAddr = tt.remote
			r.Header.Set("X-Forwarded-For", "127.0.0.1")
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.host != "" {
				r.Host = tt.host
			}
			if tt.fetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", tt.fetchSite)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, w.Code, w.Body, tt.want)
			}
			if src.draining.Load() != tt.draining {
				t.Errorf("draining %v, want %v", src.draining.Load(), tt.draining)
			}
			if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("a 401 without WWW-Authenticate")
			}
		})
	}
}

// degradedSource is a Source that stepped aside and says why.
type degradedSource struct{ fakeSource }

func (*degradedSource) Status() directory.Status { return directory.Degraded }
func (*degradedSource) StatusReason() string     { return "cannot store text" }

// /readyz gives the reason of a node that is not up when its Source has
// one (a Reasoner), and only the status otherwise.
func TestReadyzReason(t *testing.T) {
	for _, tt := range []struct {
		name     string
		src      web.Source
		wantCode int
		want     map[string]string
	}{
		{"up", &fakeSource{}, http.StatusOK, map[string]string{"status": "up"}},
		{"degraded, with its reason", &degradedSource{}, http.StatusServiceUnavailable, map[string]string{"status": "degraded", "reason": "cannot store text"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			web.NewHandler(tt.src, prometheus.NewRegistry()).ServeHTTP(rec, httptest.NewRequest("GET", "http://10.0.0.1:7071/readyz", nil))
			if rec.Code != tt.wantCode {
				t.Errorf("code %d, want %d", rec.Code, tt.wantCode)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("body %v, want %v", got, tt.want)
			}
		})
	}
}
