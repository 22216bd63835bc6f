package node

import (
	"context"
	"net/http"

	"github.com/switchboard/switchboard/internal/web"
)

func (n *Node) httpHandler() http.Handler { return web.NewHandler(n, n.metrics.registry) }

// startDNS is replaced when the DNS responder lands.
func (n *Node) startDNS(ctx context.Context) error { return nil }
