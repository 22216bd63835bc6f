package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/bus"
	"github.com/switchboard/switchboard/internal/web"
)

// forgetTimeout bounds how long POST /v1/forget waits for JetStream's
// metadata group to agree on the removal.
const forgetTimeout = 10 * time.Second

// forgetSelf is the refusal of a node asked to forget itself.
const forgetSelf = "a node cannot forget itself: ask another node"

// ForgetResult is the answer to POST /v1/forget.
type ForgetResult struct {
	// Node is the ID of the node forgotten.
	Node string `json:"node"`
	// Error says why it was not, when it was not.
	Error string `json:"error,omitempty"`
}

// forgetHandler serves POST /v1/forget?node=ID (admin): the rooms'
// storage (the embedded cluster's JetStream) forgets a node that is gone
// for good, so that it no longer counts towards the majority the storage
// needs, and its copies of the rooms go to the nodes left or to the next
// one that joins. The storage knows each node by its NATS server name,
// the ID with every character but letters, digits, '-' and '_' written
// '-' (sanitize); ID may be either. It refuses a node the directory lists
// as anything but down (409), this node itself (409), a node the storage
// does not know (404), while another such change is under way (409, try
// again), without a storage majority to agree (503), and on an external
// bus, whose own servers the operator removes with NATS's tools (400).
func (n *Node) forgetHandler() http.HandlerFunc {
	return web.RequireAdmin(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("node")
		answer := func(code int, msg string) {
			web.WriteJSON(w, code, ForgetResult{Node: id, Error: msg})
		}
		if id == "" {
			answer(http.StatusBadRequest, "node=ID: name the ID of the node to forget")
			return
		}
		name := sanitize(id)
		if name == sanitize(n.cfg.ID) {
			answer(http.StatusConflict, forgetSelf)
			return
		}
		if e, ok := n.directoryEntry(name); ok && e.Status != directory.Down {
			answer(http.StatusConflict, fmt.Sprintf("node %s is %s in this node's directory: forget only a node that is gone for good, once the directory shows it down", e.ID, e.Status))
			return
		}
		if n.bus == nil {
			answer(http.StatusBadRequest, "this node has no storage cluster")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), forgetTimeout)
		defer cancel()
		err := n.bus.ForgetPeer(ctx, name)
		switch {
		case err == nil:
			n.log.Warn("the rooms' storage forgot a node: it no longer counts it, and gives its copies to the nodes left (start no node under its ID again: give a replacement a new --id)", "node", id, "from", r.RemoteAddr)
			web.WriteJSON(w, http.StatusOK, ForgetResult{Node: id})
		case errors.Is(err, bus.ErrNoJetStream):
			answer(http.StatusBadRequest, "this node's storage is not an embedded cluster: on an external NATS, remove a departed server with NATS's own tools (nats server raft peer-remove)")
		case errors.Is(err, bus.ErrForgetSelf):
			answer(http.StatusConflict, forgetSelf)
		case errors.Is(err, bus.ErrNotPeer):
			answer(http.StatusNotFound, err.Error())
		case errors.Is(err, bus.ErrPeerChangeInFlight):
			answer(http.StatusConflict, err.Error()+"; try again in a moment")
		case errors.Is(err, bus.ErrNoMetaLeader):
			answer(http.StatusServiceUnavailable, err.Error()+"; the removal may still be committed: if asking again answers 404, the node was forgotten")
		default:
			n.log.Error("forgetting a node", "node", id, "err", err)
			answer(http.StatusInternalServerError, err.Error())
		}
	}, n.adminOption())
}

// directoryEntry is the entry of this node's directory whose ID has the
// NATS server name name (sanitize), and whether there is one.
func (n *Node) directoryEntry(name string) (directory.Node, bool) {
	for _, e := range n.Nodes() {
		if sanitize(e.ID) == name {
			return e, true
		}
	}
	return directory.Node{}, false
}
