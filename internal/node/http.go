package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/dnsserver"
	"github.com/switchboard/switchboard/internal/web"
	"github.com/switchboard/switchboard/internal/webui"
)

func (n *Node) httpHandler() http.Handler {
	mon := web.NewMonitor(n)
	n.wg.Go(func() { mon.Run(n.ctx) })
	h := web.NewHandler(n, n.metrics.registry,
		n.adminOption(),
		web.WithConnServer(n.ServeConn),
		web.WithOrigins(n.cfg.WSOrigins),
		web.WithTrustedProxies(n.cfg.TrustedProxies),
		web.WithMonitor(mon),
		web.WithUI(webui.Handler()))
	h = n.drainHandler(h)
	n.httpMux.Handle("/", h)
	n.httpMux.Handle("POST /v1/forget", n.forgetHandler())
	h = n.httpMux
	n.logWebSocket()
	if !n.cfg.Pprof {
		return httpGuard(h)
	}
	n.log.Warn("serving Go profiles on the HTTP listener without authentication", "path", "/debug/pprof/")
	mux := http.NewServeMux()
	// Not for a DNS-rebinding page either (the profiles, the command
	// line included, are the node's own).
	published := func(next http.HandlerFunc) http.HandlerFunc {
		return web.PublishedHost(n, next, web.WithOrigins(n.cfg.WSOrigins))
	}
	mux.HandleFunc("/debug/pprof/", published(pprof.Index))
	mux.HandleFunc("/debug/pprof/cmdline", published(pprof.Cmdline))
	mux.HandleFunc("/debug/pprof/profile", published(pprof.Profile))
	mux.HandleFunc("/debug/pprof/symbol", published(pprof.Symbol))
	mux.HandleFunc("/debug/pprof/trace", published(pprof.Trace))
	mux.Handle("/", h)
	return httpGuard(mux)
}

// httpBodyTimeout bounds how long the HTTP listener waits for the body of
// a request that has one, from the moment its handler starts: the
// server's ReadHeaderTimeout covers the header only. Without it a request
// that announced a body and sent it a byte a minute, or never, held its
// connection for good (net/http reads up to 256 KiB of an unread body
// before it answers), and maxHTTPConns of them shut everyone out of the
// listener: health checks, metrics and the drain. Bodies here are small
// (a WebRTC offer); a variable for tests.
var httpBodyTimeout = 10 * time.Second

// httpWriteTimeout bounds how long the HTTP listener takes to send a
// response, from the moment its handler starts. Without it a client that
// asked for a response larger than the sockets' buffers (the metrics)
// and read none of it held its connection for good, busy, so that the
// listener could not close it to make room; maxHTTPConns of them, from a
// few addresses, shut everyone out. The dashboard's stream sets a
// deadline of its own for each update; a variable for tests.
var httpWriteTimeout = 30 * time.Second

// httpGuard sets the read deadline of each request that has a body
// (declared with a length or chunked). Requests without one, the
// WebSocket upgrade and the event stream among them, keep no read
// deadline: one on those would end them. The server sets its own read
// deadlines again at the next request on the connection.
//
// It sets the write deadline of each request to httpWriteTimeout from
// now, except for the Go profiles (--pprof), which write only after
// profiling for as long as they were asked to. A WebSocket upgrade keeps
// none: the server clears a connection's deadlines when it hands it
// over, and the session sets its own.
//
// It tells the HTTP listener that the request's connection is serving
// a request, so that it is not closed to make room for another (see
// httpLimitListener), but for the time its handler waits for the body
// (idleWhileReading), and hands the listener's slot back when a request
// takes its connection over (a WebSocket upgrade): see releaseOnHijack.
func httpGuard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer servingConn(r)()
		rc := http.NewResponseController(w)
		if r.ContentLength != 0 {
			_ = rc.SetReadDeadline(time.Now().Add(httpBodyTimeout))
			if c := limitConnOf(r); c != nil {
				r.Body = idleWhileReading{ReadCloser: r.Body, c: c}
			}
		}
		if strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			_ = rc.SetWriteDeadline(time.Time{})
		} else {
			_ = rc.SetWriteDeadline(time.Now().Add(httpWriteTimeout))
		}
		if r.Header.Get("Upgrade") != "" {
			if hj, ok := w.(http.Hijacker); ok {
				w = releaseOnHijack{ResponseWriter: w, hj: hj}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// releaseOnHijack frees the connection's slot of the HTTP listener
// (maxHTTPConns) when its handler takes the connection over. The slots
// bound what the HTTP server holds: requests, and idle keep-alive
// connections. A WebSocket lives on as a client connection, counted by
// the node's own limits (MaxConns, MaxConnsPerIP) through ServeConn; had
// it kept its slot, maxHTTPConns browser users would have shut health
// checks, metrics and the drain out of the listener.
type releaseOnHijack struct {
	http.ResponseWriter
	hj http.Hijacker
}

func (w releaseOnHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := w.hj.Hijack()
	if err != nil {
		return c, brw, err
	}
	var under net.Conn = c
	if tc, ok := c.(*tls.Conn); ok { // --http-tls: TLS over the limited listener
		under = tc.NetConn()
	}
	if lc, ok := under.(*httpLimitConn); ok {
		lc.release() // its Close then frees nothing more
	}
	return c, brw, nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w releaseOnHijack) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes on to the server's writer.
func (w releaseOnHijack) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// HandleHTTP serves handler for pattern (http.ServeMux's patterns) on the
// node's HTTP listener, ahead of the node's own routes: a front such as
// serve --rtc's signalling adds its endpoint this way. It may be called
// before or after Start, from any goroutine; like ServeMux.Handle it
// panics when pattern is malformed or already taken.
func (n *Node) HandleHTTP(pattern string, handler http.Handler) {
	n.httpMux.Handle(pattern, handler)
}

// startDNS starts the DNS responder for the service name over this node's
// directory snapshot.
func (n *Node) startDNS(ctx context.Context) error {
	cfg := n.cfg.dnsConfig(n.availableNodes)
	cfg.Logger = n.log // the DNS server names its own component
	// Starting or degraded, the node's directory may be empty or stale:
	// SERVFAIL then sends resolvers to another node's responder.
	cfg.Serving = func() bool {
		st := n.Status()
		return st != directory.Starting && st != directory.Degraded
	}
	srv, err := dnsserver.New(cfg)
	if err != nil {
		return fmt.Errorf("node: configuring DNS: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("node: starting DNS on %s: %w", n.cfg.DNS, err)
	}
	n.dns = srv
	n.dnsAddr = srv.Addr()
	return nil
}

// dnsConfig is the DNS responder's configuration, answering with nodes.
func (c *Config) dnsConfig(nodes func() []directory.Node) dnsserver.Config {
	cfg := dnsserver.DefaultConfig(c.Service, nodes)
	cfg.Addr = c.DNS
	cfg.TTL = c.DNSTTL
	cfg.RateLimit = c.DNSRateLimit
	cfg.MaxTCPConns = c.DNSMaxTCP
	return cfg
}

// maxDrainWindow bounds the window POST /v1/drain?within= accepts.
const maxDrainWindow = 24 * time.Hour

// drainHandler adds the drain to empty to web's handler h:
//
//	POST /v1/drain?within=30s  drain to empty within the window (admin)
//	GET  /v1/drain             where the drain stands (DrainStatus), open like the directory
//
// POST without within and DELETE stay h's: draining on and off. A POST
// with within passes the admin check before its window is read (a
// stranger learns nothing from a 400), then goes through h, and the
// drain starts only when h accepted it.
func (n *Node) drainHandler(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	drainWithin := n.drainWithinHandler(h)
	mux.HandleFunc("GET /v1/drain", web.PublishedHost(n, func(w http.ResponseWriter, r *http.Request) {
		web.WriteJSON(w, http.StatusOK, n.DrainStatus())
	}, web.WithOrigins(n.cfg.WSOrigins)))
	mux.HandleFunc("POST /v1/drain", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("within") == "" {
			h.ServeHTTP(w, r)
			return
		}
		drainWithin(w, r)
	})
	return mux
}

// drainWithinHandler serves POST /v1/drain?within= after the admin check;
// h is web's handler, which turns draining on.
func (n *Node) drainWithinHandler(h http.Handler) http.HandlerFunc {
	return web.RequireAdmin(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("within")
		within, err := time.ParseDuration(q)
		if err != nil || within < 0 || within > maxDrainWindow {
			web.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("within=%q: want a duration from 0s to %v, such as 30s", q, maxDrainWindow)})
			return
		}
		var rec responseBuffer
		h.ServeHTTP(&rec, r)
		if rec.code != http.StatusOK {
			rec.copyTo(w)
			return
		}
		n.Drain(within)
		web.WriteJSON(w, http.StatusOK, n.DrainStatus())
	}, n.adminOption())
}

// responseBuffer holds a response so that it can be passed on or replaced.
type responseBuffer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *responseBuffer) Header() http.Header {
	if b.header == nil {
		b.header = http.Header{}
	}
	return b.header
}

func (b *responseBuffer) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *responseBuffer) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// copyTo writes the held response to w.
func (b *responseBuffer) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.code)
	_, _ = w.Write(b.body.Bytes())
}
