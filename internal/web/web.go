// Package web is a node's HTTP face: the directory as JSON, health and
// readiness probes, Prometheus metrics, and the drain switch.
//
// NewHandler builds an http.Handler over a Source, which the node
// implements; the handler keeps no state of its own and is safe for
// concurrent use.
package web

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard/switchboard/directory"
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

// NewHandler serves:
//
//	GET  /v1/directory  the directory message as JSON
//	GET  /healthz       200 while the process serves
//	GET  /readyz        200 when the node is up (not starting, draining, full or down), else 503
//	GET  /metrics       Prometheus metrics from gatherer
//	POST /v1/drain      start draining; DELETE /v1/drain stops it
func NewHandler(src Source, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/directory", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, wire.DirectoryMessage(src.Directory()))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		status := src.Status()
		code := http.StatusOK
		if status != directory.Up {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]string{"status": string(status)})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /v1/drain", func(w http.ResponseWriter, r *http.Request) {
		src.SetDraining(true)
		writeJSON(w, http.StatusOK, map[string]string{"status": string(src.Status())})
	})
	mux.HandleFunc("DELETE /v1/drain", func(w http.ResponseWriter, r *http.Request) {
		src.SetDraining(false)
		writeJSON(w, http.StatusOK, map[string]string{"status": string(src.Status())})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
