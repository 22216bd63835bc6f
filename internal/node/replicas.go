package node

import (
	"errors"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The replicas the rooms' storage is created with.
//
// A fresh embedded cluster elects its JetStream metadata leader as soon as
// two servers meet, often before the third has joined. Created then with
// min(3, nodes up in the directory), the streams and the bucket got 2
// replicas, or 1 when the directory had not heard the second node yet,
// raised to 3 a second later; a node that died in between left every
// stream with a copy on it without a quorum (2 replicas survive no loss,
// like 1, at twice the cost). So while this node has reason to expect a
// third node (its configuration names three or more, or it already sees
// three), it creates with 3 replicas only, retrying while JetStream cannot
// yet place them (the third server has not joined its metadata group),
// for at most fullReplicasWait; then, or when nothing says a third node
// is coming, it creates with min(3, nodes seen), and run raises the
// replicas as more come up.

// fullReplicasWait bounds how long a node that expects three nodes or
// more waits, from the moment JetStream first answers, for JetStream to
// place the third replica before it creates the rooms' storage with
// fewer. The nodes of a new cluster are started together: the metadata
// group elects 0.1 to 0.8 s after the first two servers meet, a server
// whose seed was not listening yet retries its route after 1 s
// (nats-server's DEFAULT_ROUTE_CONNECT), and the third joins the
// metadata group within a second of its route, on a loaded machine a
// little more. 5 s covers a third node started a few seconds after the
// others, and costs a cluster that really has only two nodes (or whose
// third is down) 5 s once, at its very first start.
const fullReplicasWait = 5 * time.Second

// replicaStart is what decides the replicas of the rooms' storage at its
// creation: a pure core, without a clock or a server.
type replicaStart struct {
	// fixed is Config.Replicas: when above 0 it is the answer.
	fixed int
	// embedded is an embedded NATS cluster (Cluster set, no Bus): the
	// only case that waits for a third node.
	embedded bool
	// configured is how many nodes the configuration names: this node
	// and the distinct other cluster addresses of Join.
	configured int
}

// want returns the replicas to create the storage with when up nodes are
// up (not down) in the directory, seen nodes are known by any means (the
// directory, the embedded server's routes, including this one), and
// waited has passed since JetStream first answered. full reports that
// want is the full count for a cluster expected to have three nodes or
// more, awaited: JetStream refusing to place that many means "not yet",
// not "never". Otherwise it is min(3, the nodes seen): the routes count
// too, since JetStream may answer before the directory has heard the
// peer it elected its leader with (which made a single replica).
func (s replicaStart) want(up, seen int, waited time.Duration) (want int, full bool) {
	if s.fixed > 0 {
		return s.fixed, false
	}
	if !s.embedded {
		return min(3, max(up, 1)), false
	}
	if max(s.configured, seen, up) >= 3 && waited < fullReplicasWait {
		return 3, true
	}
	return min(3, max(up, seen, 1)), false
}

// configuredNodes counts the nodes cfg names for the cluster: this node
// and each distinct other address in Join (addresses equal to this node's
// own cluster address, as configured or as bound, are this node). A join
// list naming every node of the cluster thus says its size.
func configuredNodes(cfg Config, bound string) int {
	if cfg.Cluster == "" || cfg.Bus != "" {
		return 1
	}
	self := []string{normalAddr(cfg.Cluster), normalAddr(bound)}
	var others []string
	for _, a := range cfg.Join {
		a = normalAddr(a)
		if a == "" || slices.Contains(self, a) || slices.Contains(others, a) {
			continue
		}
		others = append(others, a)
	}
	return 1 + len(others)
}

// normalAddr spells a HOST:PORT address one way (the host lower-cased, an
// IP in its canonical form), "" for a blank one.
func normalAddr(a string) string {
	a = strings.TrimSpace(a)
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return strings.ToLower(a)
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}

// startReplicas is the replicas run creates the rooms' storage with, waited
// after JetStream first answered, and whether that is the awaited full
// count (replicaStart.want).
func (e *roomEngine) startReplicas(waited time.Duration) (int, bool) {
	cfg := e.n.cfg
	s := replicaStart{fixed: cfg.Replicas, embedded: cfg.Bus == "" && cfg.Cluster != ""}
	up := e.desiredReplicas()
	if s.fixed > 0 || !s.embedded {
		return s.want(up, up, waited)
	}
	s.configured = configuredNodes(cfg, e.n.ClusterAddr())
	// up counts the directory's nodes not down, capped at 3, which is all
	// want looks at; the routes may know more.
	seen := max(up, 1+len(e.n.bus.RoutePeers()))
	return s.want(up, seen, waited)
}

// noPlacement reports whether err is JetStream saying it has not enough
// servers to place a stream's replicas (JSClusterNoPeersErrF, 10005, or
// JSInsufficientResourcesErr, 10023).
func noPlacement(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case 10005, // JSClusterNoPeersErrF
		10023: // JSInsufficientResourcesErr
		return true
	}
	return false
}
