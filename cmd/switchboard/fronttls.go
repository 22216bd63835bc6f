package main

import (
	"bytes"
	"crypto/tls"
	"errors"

	"github.com/switchboard/switchboard/internal/node"
)

// errNotOwnNode: a front's bridge reached a node that did not present
// the certificate its own node serves.
var errNotOwnNode = errors.New("serve: the bridge's node did not present its own node's certificate")

// ownNodeTLS is the TLS config of a front's bridge, which dials its own
// node: it trusts exactly the certificate that node serves at the time of
// the handshake, which a reload (SIGHUP) renews. A pool read from
// --tls-cert at start trusted the old leaf (when the file holds no CA),
// or the old intermediate: after a renewal every call failed to attach
// while the node said it had reloaded its certificate. Go's own chain
// verification is off only because this check replaces it: the bridge
// takes nothing but its own node's current leaf, resumed sessions
// included (VerifyConnection runs for every connection).
func ownNodeTLS(n *node.Node) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // VerifyConnection below pins the node's own leaf
		VerifyConnection: func(cs tls.ConnectionState) error {
			want := n.ServedCertificate()
			if want == nil || len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want.Raw) {
				return errNotOwnNode
			}
			return nil
		},
	}
}
