package node

import (
	"slices"

	"github.com/switchboard/switchboard/internal/origin"
	"github.com/switchboard/switchboard/internal/web"
)

// logWebSocket says at start what the WebSocket transport on the HTTP
// listener is open to. A pattern that names no domain (origin.CatchAll:
// "*", "*:*") opens the WebSocket, and the directory its hello tells, to
// pages of any origin, and nothing else: the reads still answer only
// under the node's addresses and published names, and only to the
// service's own pages and the sites a pattern names across origins.
func (n *Node) logWebSocket() {
	scheme := "ws"
	if n.cfg.HTTPTLS {
		scheme = "wss"
	}
	switch {
	case slices.ContainsFunc(n.cfg.WSOrigins, origin.CatchAll):
		n.log.Warn("WebSocket clients are accepted from pages of any origin: any web page a user opens may connect to this node in that user's name, and read its directory; "+
			"not its stats, event stream or metrics, and no name is added to those the reads answer under (name sites and hosts in --ws-origins by their domain for that)",
			"path", web.WebSocketPath, "scheme", scheme, "subprotocol", web.Subprotocol, "origins", n.cfg.WSOrigins)
	case len(n.cfg.WSOrigins) > 0:
		n.log.Info("WebSocket clients are accepted from the service's own pages and from the origins allowed",
			"path", web.WebSocketPath, "scheme", scheme, "subprotocol", web.Subprotocol, "origins", n.cfg.WSOrigins)
	default:
		n.log.Info("WebSocket clients are accepted from the service's own pages only (--ws-origins allows others)",
			"path", web.WebSocketPath, "scheme", scheme, "subprotocol", web.Subprotocol)
	}
}
