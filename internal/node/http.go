package node

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"

	"github.com/switchboard/switchboard/internal/dnsserver"
	"github.com/switchboard/switchboard/internal/web"
	"github.com/switchboard/switchboard/internal/webui"
)

func (n *Node) httpHandler() http.Handler {
	mon := web.NewMonitor(n)
	n.wg.Go(func() { mon.Run(n.ctx) })
	h := web.NewHandler(n, n.metrics.registry,
		web.WithAdminToken(n.sec.admin),
		web.WithConnServer(n.ServeConn),
		web.WithOrigins(n.cfg.WSOrigins),
		web.WithMonitor(mon),
		web.WithUI(webui.Handler()))
	n.logWebSocket()
	if !n.cfg.Pprof {
		return h
	}
	n.log.Warn("serving Go profiles on the HTTP listener without authentication", "path", "/debug/pprof/")
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

// startDNS starts the DNS responder for the service name over this node's
// directory snapshot.
func (n *Node) startDNS(ctx context.Context) error {
	cfg := dnsserver.DefaultConfig(n.cfg.Service, n.availableNodes)
	cfg.Addr = n.cfg.DNS
	cfg.TTL = n.cfg.DNSTTL
	cfg.Logger = n.log // the DNS server names its own component
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
