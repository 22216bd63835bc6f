// Package webui holds the pages a node serves to browsers: the room page
// at / (a real-time text client that picks a node and fails over by
// itself, over the WebSocket transport) and the cluster dashboard at
// /dashboard. They are plain ES modules and HTML, embedded in the binary:
// there is no build step.
//
// The JavaScript mirrors four Go packages: static/rtt.js the text model
// of package rtt, static/pick.js the policies of package pick,
// static/failover.js the failover order of package failover, and
// static/client.js the attach, joins, seqs, acks and resends of package
// client. testdata/rtt.json, testdata/pick.json and testdata/failover.json
// are checked against the Go packages by this package's tests and against
// the JavaScript in a headless browser, so the two stay one behaviour.
//
// Handler serves the files; package web mounts it on the node's HTTP
// listener.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Static is the embedded files, rooted at the static directory.
var Static = mustSub(files, "static")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic("webui: " + err.Error())
	}
	return sub
}

// Handler serves:
//
//	GET /            the room page (index.html)
//	GET /dashboard   the cluster dashboard (dashboard.html)
//	GET /static/...  the scripts and the style sheet
//
// and 404 for anything else. Pages may load scripts only from the node
// itself (Content-Security-Policy), and may connect to any node over
// HTTP and WebSocket, since the client picks one.
func Handler() http.Handler {
	mux := http.NewServeMux()
	static := http.StripPrefix("/static/", http.FileServerFS(Static))
	mux.Handle("GET /static/", static)
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			http.ServeFileFS(w, r, Static, name)
		}
	}
	mux.HandleFunc("GET /{$}", page("index.html"))
	mux.HandleFunc("GET /dashboard", page("dashboard.html"))
	return headers(mux)
}

// headers adds the security headers every answer carries.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' http: https: ws: wss:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}
