package node

import (
	"context"
	"fmt"
	"net/http"

	"github.com/switchboard/switchboard/internal/dnsserver"
	"github.com/switchboard/switchboard/internal/web"
)

func (n *Node) httpHandler() http.Handler { return web.NewHandler(n, n.metrics.registry) }

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
