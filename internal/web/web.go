// Package web is a node's HTTP face: the directory as JSON, health and
// readiness probes, Prometheus metrics, the drain switch, the
// dashboard's event stream (Monitor, History: monitor.go), and the
// WebSocket transport of the client protocol, both ends of it (WSConn
// for the node, Dialer for the Go client: dial.go).
//
// NewHandler builds an http.Handler over a Source, which the node
// implements, and is safe for concurrent use. The handler keeps no state
// of its own but a Monitor given WithMonitor, which guards its own.
//
// Reads are open to any client that names the node by an address or by
// a name the service publishes; browsers let only the service's own
// pages, and the origins WithOrigins allows, read the directory, the
// stats and the event stream across origins. Under any other name (what
// a DNS-rebinding page uses) the directory, the stats, the event stream,
// the metrics and /readyz answer 421, to programs too (publishedHost;
// PublishedHost for a caller's own routes). A WithOrigins pattern that
// names no domain, such as "*" (origin.CatchAll), lets any page open a
// WebSocket and read the directory, which the WebSocket's hello gives it
// anyway; it adds no name to those the reads answer under, and lets no
// other page read the stats or the event stream. Requests that change state
// (POST and DELETE /v1/drain) need the admin credential: with an admin
// token configured (WithAdminToken), "Authorization: Bearer TOKEN" from
// anyone, loopback included; without one, they are admitted from
// loopback addresses only and refused with 403 from anywhere else.
//
// The WebSocket transport (WithConnServer) serves protocol v1 at
// /v1/ws under the subprotocol "switchboard.v1": WSConn turns the
// WebSocket into a net.Conn of protocol lines, one line per text frame,
// and the node serves it as it serves a TCP connection, with the same
// limits, timeouts and errors. Browsers may open it only from pages of
// the service itself unless WithOrigins allows others.
package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/origin"
	"github.com/switchboard/switchboard/wire"
)

// Source is what the handler reads and controls. Its methods must not
// block for long; they are called from HTTP handler goroutines.
type Source interface {
	// Directory is the directory message a hello would get.
	Directory() *wire.Directory
	// Status is the node's own status.
	Status() directory.Status
	// SetDraining turns draining on or off.
	SetDraining(on bool)
}

// Reasoner is an optional part of a Source: why a node that is not up
// stepped aside, for /readyz's reason.
type Reasoner interface {
	// StatusReason says why the node has its status, or "" when there is
	// nothing to add to it.
	StatusReason() string
}

// Option configures NewHandler.
type Option func(*handler)

// WithAdminToken sets the secret that requests changing state must
// present as a bearer token. Empty leaves them to loopback clients.
func WithAdminToken(secret []byte) Option {
	return func(h *handler) {
		if len(secret) > 0 {
			sum := sha256.Sum256(secret)
			h.admin = func() []byte { return sum[:] }
		}
	}
}

// WithAdminTokenSource is WithAdminToken for a secret that may change
// (reloaded from its file): current returns the secret to check each
// request against. A nil current, or one that returns an empty secret,
// leaves state changes to loopback clients, as an empty secret does.
func WithAdminTokenSource(current func() []byte) Option {
	return func(h *handler) {
		if current != nil {
			h.admin = func() []byte {
				secret := current()
				if len(secret) == 0 {
					return nil
				}
				sum := sha256.Sum256(secret)
				return sum[:]
			}
		}
	}
}

type handler struct {
	admin     func() []byte     // the SHA-256 of the admin secret now, nil for none; nil: loopback only
	serveConn ConnServer        // serves WebSockets; nil: no WebSocket transport
	origins   []string          // WithOrigins patterns
	proxies   forwarded.Proxies // WithTrustedProxies
	monitor   *Monitor          // the dashboard's stream; nil: none
	ui        http.Handler      // the browser pages; nil: none
}

// WithUI serves ui for every GET that no other route takes: the browser
// pages (package webui).
func WithUI(ui http.Handler) Option {
	return func(h *handler) { h.ui = ui }
}

// NewHandler serves:
//
//	GET  /v1/directory  the directory message as JSON
//	GET  /healthz       200 while the process serves
//	GET  /readyz        200 when the node is up (not starting, degraded, draining, full or down), else 503;
//	                    {"status": ..., "reason": ...}, the reason when the Source is a Reasoner with one
//	GET  /metrics       Prometheus metrics from gatherer
//	POST /v1/drain      start draining; DELETE /v1/drain stops it (admin)
//	GET  /v1/stats      this node's rooms, deliveries and records, as JSON counters
//	GET  /v1/ws         protocol v1 over WebSocket (with WithConnServer)
//	GET  /v1/events     the dashboard's stream, Server-Sent Events (with WithMonitor)
//	GET  /, /dashboard  the browser pages (with WithUI)
func NewHandler(src Source, gatherer prometheus.Gatherer, opts ...Option) http.Handler {
	var h handler
	for _, o := range opts {
		o(&h)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/directory", h.publishedHost(src, func(w http.ResponseWriter, r *http.Request) {
		// The browser client reads it from every node it knows, on any
		// page that may open a WebSocket, whose hello tells it the same.
		h.allowOrigin(w, r, src, h.originAllowed)
		WriteJSON(w, http.StatusOK, wire.DirectoryMessage(src.Directory()))
	}))
	mux.HandleFunc("GET /v1/stats", h.publishedHost(src, func(w http.ResponseWriter, r *http.Request) {
		h.allowOrigin(w, r, src, h.readAllowed) // the dashboard reads it from every node
		WriteJSON(w, http.StatusOK, stats(gatherer))
	}))
	if h.monitor != nil {
		mux.HandleFunc("GET /v1/events", h.publishedHost(src, func(w http.ResponseWriter, r *http.Request) {
			h.allowOrigin(w, r, src, h.readAllowed) // the dashboard follows another node when its own goes
			h.monitor.serveEvents(w, r, h.streamSource(r))
		}))
	}
	if h.ui != nil {
		mux.Handle("GET /", h.ui)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// /healthz says nothing of the node; /readyz says why it is not up,
	// so it gets the check the other reads get. A probe passes when it
	// names the node by address or by a published name.
	mux.HandleFunc("GET /readyz", h.publishedHost(src, func(w http.ResponseWriter, r *http.Request) {
		status := src.Status()
		code := http.StatusOK
		if status != directory.Up {
			code = http.StatusServiceUnavailable
		}
		body := map[string]string{"status": string(status)}
		if r, ok := src.(Reasoner); ok && status != directory.Up {
			if why := r.StatusReason(); why != "" {
				body["reason"] = why
			}
		}
		WriteJSON(w, code, body)
	}))
	mux.HandleFunc("GET /metrics", h.publishedHost(src, promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}).ServeHTTP))
	mux.HandleFunc("POST /v1/drain", h.requireAdmin(func(w http.ResponseWriter, r *http.Request) {
		src.SetDraining(true)
		WriteJSON(w, http.StatusOK, map[string]string{"status": string(src.Status())})
	}))
	if h.serveConn != nil {
		mux.HandleFunc("GET "+WebSocketPath, h.serveWebSocket(src))
	}
	mux.HandleFunc("DELETE /v1/drain", h.requireAdmin(func(w http.ResponseWriter, r *http.Request) {
		src.SetDraining(false)
		WriteJSON(w, http.StatusOK, map[string]string{"status": string(src.Status())})
	}))
	return mux
}

// publishedHost wraps next, a read a page may make of its own origin,
// with origin.HostAllowed: a request whose Host is a name the service
// does not publish (not its common name, not a node's HTTP address in
// the directory, not matched by WithOrigins; an address, localhost or
// no Host passes) gets 421 and nothing of the node's, whatever its other
// headers say. That name is what a DNS-rebinding page uses, and over
// plain HTTP its read sends neither Origin nor Sec-Fetch-Site, like a
// program's: so a program under such a name gets 421 too, and should
// use an address or a published name, or have the name allowed by
// WithOrigins (--ws-origins), by a pattern that names a domain: "*",
// which lets any page open a WebSocket, lets no name in here
// (origin.HostAllowed). It wraps the directory, the
// stats, the event stream, the metrics and /readyz; not /healthz nor
// the pages (WithUI), which tell nothing of the node, nor the routes the
// node adds beside this handler (GET /v1/drain, --pprof's /debug/pprof/),
// which wrap themselves with PublishedHost.
func (h *handler) publishedHost(src Source, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !origin.HostAllowed(r, src.Directory(), h.origins) {
			http.Error(w, fmt.Sprintf("this node does not answer under the name %q: name it by address or by a name the service publishes, or add the name to --ws-origins", r.Host), http.StatusMisdirectedRequest)
			return
		}
		next(w, r)
	}
}

// allowOrigin lets the page named in the request's Origin read the
// answer (CORS) when allowed says it may: originAllowed for the
// directory, which any page that may open a WebSocket here gets from its
// hello anyway; readAllowed for the stats and the event stream, which
// only the service's own pages (the dashboard reads every node's) and
// those WithOrigins names by a domain may read. Any other page gets no
// Access-Control-Allow-Origin, and the browser keeps the answer from it:
// a page on the web that a user of the node's network opens learns
// nothing through that user's browser about nodes only that network
// reaches, beyond what a WebSocket it may open would tell it.
func (h *handler) allowOrigin(w http.ResponseWriter, r *http.Request, src Source, allowed func(*http.Request, *wire.Directory) bool) {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin != "" && allowed(r, src.Directory()) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
	}
}

// PublishedHost wraps next, a read a page may make of its own origin,
// with the check NewHandler applies under the same options (WithOrigins)
// to its reads: a request under a name the service does not publish
// gets 421, whoever sends it (publishedHost). For routes a caller adds
// beside NewHandler's.
func PublishedHost(src Source, next http.HandlerFunc, opts ...Option) http.HandlerFunc {
	var h handler
	for _, o := range opts {
		o(&h)
	}
	return h.publishedHost(src, next)
}

// RequireAdmin wraps next, a handler that changes state, with the admin
// check NewHandler applies under the same options (WithAdminToken): for
// routes a caller adds beside NewHandler's, so that a stranger gets 401
// or 403 before anything else is said about the request.
func RequireAdmin(next http.HandlerFunc, opts ...Option) http.HandlerFunc {
	var h handler
	for _, o := range opts {
		o(&h)
	}
	return h.requireAdmin(next)
}

// requireAdmin wraps a handler that changes state with the admin check.
func (h *handler) requireAdmin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var want []byte
		if h.admin != nil {
			want = h.admin()
		}
		if want == nil {
			if !fromLoopback(r) {
				msg := "forbidden: this node has no admin token (--admin-token), so only loopback clients may change its state"
				if viaProxyHeader(r) {
					msg += "; a client a PROXY protocol header names (or relays unnamed) never counts as loopback, whatever address the header gives"
				}
				WriteJSON(w, http.StatusForbidden, map[string]string{"error": msg})
				return
			}
			if fromBrowserPage(r) {
				WriteJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden: this node has no admin token (--admin-token), so web pages may not change its state"})
				return
			}
			next(w, r)
			return
		}
		scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard admin"`)
			WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized: send the admin token as Authorization: Bearer TOKEN"})
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
		if subtle.ConstantTimeCompare(sum[:], want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard admin", error="invalid_token"`)
			WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized: wrong admin token"})
			return
		}
		next(w, r)
	}
}

// fromBrowserPage reports whether a browser sent r on a web page's behalf:
// it names the page in Origin, or says where the request came from in
// Sec-Fetch-Site other than "none" (typed by the user). Without an admin
// token the loopback rule alone would let any page the machine's user
// visits drain a node on 127.0.0.1 with a form, or by DNS rebinding;
// programs such as curl and deploy/roll.sh send neither header.
func fromBrowserPage(r *http.Request) bool {
	if r.Header.Get("Origin") != "" {
		return true
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return site != "" && site != "none"
}

// fromLoopback reports whether the request's peer is a loopback address.
// Forwarding headers are ignored: they are the client's to forge. The
// client a PROXY protocol header names is never loopback either, whatever
// the header says: 127.0.0.1 there is a client on the balancer's host,
// not on the node's; nor is one it relays without naming (version 1
// UNKNOWN), which may be anywhere, whatever the balancer's own address.
func fromLoopback(r *http.Request) bool {
	if viaProxyHeader(r) {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// WriteJSON answers with code and v as indented JSON, the form of every
// JSON answer of a node's HTTP API.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Stats are the counters the dashboard reads from each node.
type Stats struct {
	// Connections counts the client connections open now.
	Connections float64 `json:"connections"`
	// RoomsOpen counts the rooms this node holds a copy of.
	RoomsOpen float64 `json:"rooms_open"`
	// Deliveries counts the messages delivered to local sessions since
	// the node started.
	Deliveries float64 `json:"deliveries_total"`
	// Records counts the room records this node stored.
	Records float64 `json:"records_stored_total"`
}

// stats sums the metrics the dashboard shows; missing ones stay zero.
func stats(g prometheus.Gatherer) Stats {
	var s Stats
	fams, err := g.Gather()
	if err != nil && len(fams) == 0 {
		return s
	}
	want := map[string]*float64{
		"switchboard_connections":               &s.Connections,
		"switchboard_rooms_open":                &s.RoomsOpen,
		"switchboard_room_deliveries_total":     &s.Deliveries,
		"switchboard_room_records_stored_total": &s.Records,
	}
	for _, f := range fams {
		dst := want[f.GetName()]
		if dst == nil {
			continue
		}
		for _, m := range f.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				*dst += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				*dst += m.GetGauge().GetValue()
			}
		}
	}
	return s
}
