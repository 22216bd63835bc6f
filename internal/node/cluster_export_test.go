package node

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// RoutePeers names the servers n's embedded NATS has routes to. For tests.
func (n *Node) RoutePeers() []string { return n.bus.RoutePeers() }

// EntrySubject is the subject node id's entry travels on. For tests.
func (n *Node) EntrySubject(id string) string { return n.entrySubject(id) }

// PublishEntry publishes e on subject over n's directory connection (dir)
// or its general one, waits for the server to have read it, and returns
// the server's verdict: nil, or the error it answered with. For tests.
func (n *Node) PublishEntry(dir bool, subject string, e directory.Entry) error {
	nc := n.bus.Conn
	if dir {
		nc = n.bus.Dir
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	before := nc.LastError()
	if err := nc.Publish(subject, data); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("flushing: %w", err)
	}
	if err := nc.LastError(); err != nil && err != before {
		return err
	}
	return nil
}

// MaxHTTPConns is maxHTTPConns. For tests.
const MaxHTTPConns = maxHTTPConns

// MaxHTTPConnsPerIP is maxHTTPConnsPerIP. For tests.
const MaxHTTPConnsPerIP = maxHTTPConnsPerIP

// HeartbeatWhileLeaving does what Shutdown does first (the node is
// leaving), then publishes the node's entry as a heartbeat of run's that
// read the status before would, saying up, and returns the entry sent.
// For tests.
func (n *Node) HeartbeatWhileLeaving() directory.Entry {
	n.leaving.Store(true)
	return n.publishSelf(time.Now(), directory.Up)
}

// SetLeaderlessFor shortens how long cfg's node lets its embedded
// JetStream know no metadata leader before it steps aside. For tests.
func SetLeaderlessFor(cfg *Config, d time.Duration) { cfg.leaderlessFor = d }
