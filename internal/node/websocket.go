package node

import (
	"slices"

	"github.com/switchboard/switchboard/internal/web"
)

// logWebSocket says at start what the WebSocket transport on the HTTP
// listener is open to.
func (n *Node) logWebSocket() {
	scheme := "ws"
	if n.cfg.HTTPTLS {
		scheme = "wss"
	}
	switch {
	case slices.Contains(n.cfg.WSOrigins, "*"):
		n.log.Warn("WebSocket clients are accepted from pages of any origin: any web page a user opens may connect to this node in that user's name",
			"path", web.WebSocketPath, "scheme", scheme, "subprotocol", web.Subprotocol)
	case len(n.cfg.WSOrigins) > 0:
		n.log.Info("WebSocket clients are accepted from the service's own pages and from the origins allowed",
			"path", web.WebSocketPath, "scheme", scheme, "subprotocol", web.Subprotocol, "origins", n.cfg.WSOrigins)
	default:
		n.log.Info("WebSocket clients are accepted from the service's own pages only (--ws-origins allows others)",
			"path", web.WebSocketPath, "scheme", scheme, "subprotocol", web.Subprotocol)
	}
}
