// Package nodetest starts in-process Switchboard clusters for tests: N
// nodes on kernel-chosen loopback ports, joined by embedded NATS routes,
// each with its own JetStream directory under t.TempDir(), stopped by
// t.Cleanup.
//
// A cluster of one node runs without a cluster listener, so that its
// JetStream is standalone and ready at once (a clustered JetStream elects
// no leader before a second server joins); grow from two nodes to test
// joining. Nodes report up before their rooms are ready: tests of rooms
// call WaitRoomsReady, or rely on a join waiting up to its bound.
package nodetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
)

// Cluster is a set of running nodes of one service.
type Cluster struct {
	t     testing.TB
	alone bool // a cluster of one: no cluster listener
	Nodes []*node.Node
	// Config is the template each node was started from.
	Config node.Config
}

// Options shape a test cluster; zero values take the defaults.
type Options struct {
	// Configure edits node i's config before it starts.
	Configure func(i int, cfg *node.Config)
}

// Config returns a config for test node i: ports from the kernel, a fast
// heartbeat, the given service, and a cluster secret drawn for this test
// process (Start draws one per cluster).
func Config(service string, i int) node.Config {
	cfg := node.DefaultConfig()
	cfg.ClusterSecret = processSecret()
	cfg.Service = service
	cfg.ID = fmt.Sprintf("n%d", i+1)
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP = "127.0.0.1:0"
	cfg.Cluster = "127.0.0.1:0"
	// Fast enough that tests of detection end soon, slow enough that a
	// node of a loaded CI machine is not starved into a false down (a
	// peer is down after three missed heartbeats).
	cfg.Heartbeat = 100 * time.Millisecond
	cfg.PushDelay = 5 * time.Millisecond
	// To read a failing run's story: SBTEST_LOG=1 go test ..., with
	// SBTEST_LOG=debug for the debug lines too (nats-server's included).
	if v := os.Getenv("SBTEST_LOG"); v != "" {
		level := slog.LevelInfo
		if v == "debug" {
			level = slog.LevelDebug
		}
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", cfg.ID)
	}
	return cfg
}

// Start runs n nodes; every node after the first joins the first.
func Start(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Config: Config(serviceName(t.Name()), 0), alone: n == 1}
	c.Config.ClusterSecret = NewSecret(t)
	for i := range n {
		m := c.Add(opts.Configure)
		if i > 0 {
			// One newcomer at a time. Each joins the first only, so
			// nats-server expects a JetStream meta group of two (its
			// routes, at least 2) and elects on two votes: two
			// newcomers that had not yet heard from the leader could
			// elect a second meta leader in its term, and JetStream
			// then stayed unanswering for the test's whole minute
			// (TestHelloView, about one run in five beside a busy
			// loop). A node current with the leader refuses a
			// newcomer's vote: its log is longer.
			Eventually(t, 60*time.Second, func() error {
				if !m.JetStreamCurrent() {
					return fmt.Errorf("%s: JetStream not current with a meta leader", m.ID())
				}
				return nil
			})
		}
	}
	// Typically 5 to 10 s for 5 nodes beside two busy loops; once, with
	// the race detector and another package's cluster of processes
	// beside it, more than 30 s (JetStream's first elections).
	c.WaitAllUp(60 * time.Second)
	return c
}

// Add starts one more node, joined to the first, and returns it.
func (c *Cluster) Add(configure func(i int, cfg *node.Config)) *node.Node {
	c.t.Helper()
	i := len(c.Nodes)
	cfg := Config(c.Config.Service, i)
	cfg.ClusterSecret = c.Config.ClusterSecret
	cfg.DataDir = c.t.TempDir()
	switch {
	case i == 0 && c.alone:
		cfg.Cluster = ""
	case i > 0 && c.Nodes[0].ClusterAddr() != "":
		cfg.Join = []string{c.Nodes[0].ClusterAddr()}
	}
	if configure != nil {
		configure(i, &cfg)
	}
	if i > 0 && cfg.Bus == "" && len(cfg.Join) == 0 {
		c.t.Fatalf("nodetest: node %s has no cluster listener to join; start two nodes or more", c.Nodes[0].ID())
	}
	n, err := node.New(cfg)
	if err != nil {
		c.t.Fatalf("configuring node %d: %v", i, err)
	}
	if err := n.Start(context.Background()); err != nil {
		c.t.Fatalf("starting node %d: %v", i, err)
	}
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			c.t.Errorf("closing node %s: %v", n.ID(), err)
		}
	})
	c.Nodes = append(c.Nodes, n)
	return n
}

// WaitAllUp waits until every running node lists every running node as up.
func (c *Cluster) WaitAllUp(timeout time.Duration) {
	c.t.Helper()
	Eventually(c.t, timeout, func() error {
		for _, n := range c.Nodes {
			if n.Status() == directory.Down {
				continue
			}
			for _, m := range c.Nodes {
				if m.Status() == directory.Down {
					continue
				}
				if got := StatusOf(n, m.ID()); got != directory.Up {
					have, want := m.RoomReplicas()
					return fmt.Errorf("%s sees %s as %q (%s: rooms ready %v, replicas %d of %d)", n.ID(), m.ID(), got, m.ID(), m.RoomsReady(), have, want)
				}
			}
		}
		return nil
	})
}

// WaitRoomsReady waits until every running node's room engine is ready:
// JetStream has its leaders, the rooms' streams exist, and their replicas
// are what the node wants for the nodes it sees up. A cluster started
// together may create them with 2 replicas and raise them to 3 a second
// later (the nodes of a test cluster join only the first, so none expects
// a third); a test that stops a node before then may leave a room's
// stream without a quorum.
func (c *Cluster) WaitRoomsReady(timeout time.Duration) {
	c.t.Helper()
	Eventually(c.t, timeout, func() error {
		for _, n := range c.Nodes {
			if n.Status() == directory.Down {
				continue
			}
			if !n.RoomsReady() {
				return fmt.Errorf("rooms of %s not ready", n.ID())
			}
			if have, want := n.RoomReplicas(); have < want {
				return fmt.Errorf("rooms of %s have %d replicas, want %d", n.ID(), have, want)
			}
		}
		return nil
	})
}

// StatusOf is the status n's directory gives id, or "" if n does not list it.
func StatusOf(n *node.Node, id string) directory.Status {
	for _, e := range n.Nodes() {
		if e.ID == id {
			return e.Status
		}
	}
	return ""
}

// Lookup returns n's directory entry for id.
func Lookup(n *node.Node, id string) (directory.Node, bool) {
	for _, e := range n.Nodes() {
		if e.ID == id {
			return e, true
		}
	}
	return directory.Node{}, false
}

// Eventually polls check until it returns nil or timeout passes, then
// fails the test with check's last error. Polling is the wait: it returns
// as soon as the condition holds.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// NewSecret draws a random cluster secret.
func NewSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("nodetest: drawing a cluster secret: %v", err)
	}
	return hex.EncodeToString(b)
}

var processSecret = sync.OnceValue(func() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on the systems Go supports
	}
	return hex.EncodeToString(b)
})

// serviceName turns a test name into a valid service name.
func serviceName(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, name) + ".test"
}
