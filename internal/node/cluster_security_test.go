package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/bus"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/pki"
)

// logLines is a slog handler that keeps every message, so that a test can
// wait for a node to say it refused something.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.lines = append(l.lines, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

func (l *logLines) saw(subs ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		for _, s := range subs {
			if strings.Contains(strings.ToLower(line), strings.ToLower(s)) {
				return nil
			}
		}
	}
	return fmt.Errorf("no log line with any of %q", subs)
}

// rogueServer is a stock nats-server with the cluster's name and no
// credentials, routed to seed; conn is a client of it.
func rogueServer(t *testing.T, service, seed string) (*server.Server, *nats.Conn) {
	t.Helper()
	opts := &server.Options{
		ServerName: "rogue",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoSigs:     true,
		NoLog:      true,
		Cluster: server.ClusterOpts{
			Name:           strings.NewReplacer(".", "_", " ", "_", "*", "_", ">", "_").Replace(service),
			Host:           "127.0.0.1",
			Port:           server.RANDOM_PORT,
			ConnectRetries: -1,
		},
		Routes: []*url.URL{{Scheme: "nats", Host: seed}},
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("rogue server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		s.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s, nc
}

// forged is an entry for id that outranks the real node's: a newer
// incarnation, though not so far ahead that a receiver refuses it for
// that alone, and the highest seq.
func forged(id, addr string) directory.Entry {
	return directory.Entry{Node: directory.Node{ID: id, Addr: addr, Status: directory.Up, Capacity: 1 << 30}, Incarnation: uint64(time.Now().UnixNano()), Seq: math.MaxUint64}
}

// publishEntries publishes entries from the rogue's client, each on the
// subject of the node it names, as a member of the cluster would.
func publishEntries(t *testing.T, nc *nats.Conn, n *node.Node, entries ...directory.Entry) {
	t.Helper()
	for _, e := range entries {
		data := fmt.Appendf(nil, `{"id":%q,"addr":%q,"status":%q,"users":0,"capacity":%d,"inc":%d,"seq":%d}`, e.ID, e.Addr, e.Status, e.Capacity, e.Incarnation, e.Seq)
		if err := nc.Publish(n.EntrySubject(e.ID), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// A clustered node refuses to start without a secret or certificate,
// unless told to run open.
func TestClusterNeedsCredentials(t *testing.T) {
	cfg := nodetest.Config("open.test", 0)
	cfg.ClusterSecret = ""
	if _, err := node.New(cfg); !errors.Is(err, bus.ErrInsecureCluster) {
		t.Fatalf("New without a secret: %v, want ErrInsecureCluster", err)
	}
	cfg.ClusterSecret = "short"
	if _, err := node.New(cfg); !errors.Is(err, bus.ErrWeakSecret) {
		t.Fatalf("New with a short secret: %v, want ErrWeakSecret", err)
	}
	cfg.ClusterSecret = ""
	cfg.ClusterSecretFile = filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(cfg.ClusterSecretFile, []byte("  0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := node.New(cfg); err != nil {
		t.Fatalf("New with a secret file: %v", err)
	}
	cfg.ClusterSecretFile = ""
	cfg.InsecureCluster = true
	if _, err := node.New(cfg); err != nil {
		t.Fatalf("New with InsecureCluster: %v", err)
	}
	// A one-node cluster needs nothing.
	cfg.InsecureCluster, cfg.Cluster = false, ""
	if _, err := node.New(cfg); err != nil {
		t.Fatalf("New without a cluster listener: %v", err)
	}
}

// A stock nats-server with the cluster's name but not its secret forms no
// route with a node, and what it publishes reaches no directory.
func TestRogueServerCannotJoin(t *testing.T) {
	logs := &logLines{}
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 0 {
			cfg.Logger = slog.New(logs)
		}
	}})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	r, nc := rogueServer(t, c.Config.Service, n1.ClusterAddr())
	nodetest.Eventually(t, settle, func() error { return logs.saw("authorization", "authentication") })
	// The rogue counts a route of its own while its refused CONNECT is in
	// flight, and keeps retrying: it must hold none once refused, and the
	// nodes must never register it.
	nodetest.Eventually(t, settle, func() error {
		if n := r.NumRoutes(); n != 0 {
			return fmt.Errorf("the rogue has %d routes", n)
		}
		return nil
	})
	for _, n := range c.Nodes {
		if peers := n.RoutePeers(); slices.Contains(peers, "rogue") {
			t.Errorf("%s routes to %q", n.ID(), peers)
		}
	}
	publishEntries(t, nc, n1, forged("n2", "203.0.113.9:7070"), forged("ghost", "203.0.113.9:7070"))
	// The rogue's subscription sees nothing of the cluster either.
	sub, err := nc.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	// Two heartbeats of each node later, nothing forged is listed.
	c.WaitAllUp(settle)
	for _, n := range c.Nodes {
		if e, ok := nodetest.Lookup(n, "n2"); !ok || e.Addr != n2.Addr() {
			t.Errorf("%s lists n2 as %+v, want at %s", n.ID(), e, n2.Addr())
		}
		if _, ok := nodetest.Lookup(n, "ghost"); ok {
			t.Errorf("%s lists the rogue's ghost", n.ID())
		}
	}
	if m, err := sub.NextMsg(0); err == nil && strings.HasPrefix(m.Subject, "switchboard.") {
		t.Errorf("the rogue read %s", m.Subject)
	}
}

// A node's own connections cannot publish another node's entry: the
// server refuses it, and no directory lists it.
func TestNodeCannotPublishAnotherNodesEntry(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	fake := forged("n2", "203.0.113.9:7070")
	for _, tt := range []struct {
		name    string
		dir     bool
		subject string
	}{
		{"directory connection, n2's subject", true, n1.EntrySubject("n2")},
		{"general connection, n2's subject", false, n1.EntrySubject("n2")},
		{"general connection, n1's own subject", false, n1.EntrySubject("n1")},
	} {
		err := n1.PublishEntry(tt.dir, tt.subject, fake)
		if err == nil || !strings.Contains(err.Error(), "Permissions Violation") {
			t.Errorf("%s: %v, want a permissions violation", tt.name, err)
		}
	}
	// On its own subject an entry naming another node is dropped by every
	// receiver, even when the server lets it through.
	if err := n1.PublishEntry(true, n1.EntrySubject("n1"), fake); err != nil {
		t.Fatalf("n1 publishing on its own subject: %v", err)
	}
	c.WaitAllUp(settle)
	for _, n := range c.Nodes {
		if e, ok := nodetest.Lookup(n, "n2"); !ok || e.Addr != n2.Addr() {
			t.Errorf("%s lists n2 as %+v, want at %s", n.ID(), e, n2.Addr())
		}
	}
}

// In a cluster run open (InsecureCluster), a member can still not take
// over a node's own entry in its own directory, and a flood of entries
// stops at the directory's bound: hello keeps answering within one line.
func TestEntryFloodIsBounded(t *testing.T) {
	logs := &logLines{}
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.ClusterSecret = ""
		cfg.InsecureCluster = true
		if i == 0 {
			cfg.Logger = slog.New(logs)
		}
	}})
	n1 := c.Nodes[0]
	r, nc := rogueServer(t, c.Config.Service, n1.ClusterAddr())
	nodetest.Eventually(t, settle, func() error {
		if r.NumRoutes() == 0 {
			return errors.New("the rogue has not joined the open cluster")
		}
		return nil
	})
	// A route is up before the nodes' subscriptions reach the rogue, which
	// drops what nobody it knows of wants: publish until it has arrived.
	nodetest.Eventually(t, settle, func() error {
		publishEntries(t, nc, n1, forged("n1", "203.0.113.9:7070"))
		return logs.saw("own ID from elsewhere")
	})
	if e, ok := nodetest.Lookup(n1, "n1"); !ok || e.Addr != n1.Addr() {
		t.Errorf("n1 lists itself as %+v, want at %s", e, n1.Addr())
	}

	flood := make([]directory.Entry, 3000)
	for i := range flood {
		flood[i] = forged(fmt.Sprintf("ghost-%04d.flood.example.com", i), fmt.Sprintf("ghost-%04d.flood.example.com:7070", i))
	}
	for _, n := range c.Nodes {
		nodetest.Eventually(t, settle, func() error {
			if got := refused(t, n); got == 0 {
				publishEntries(t, nc, n1, flood...)
				return fmt.Errorf("%s has refused no entry yet", n.ID())
			}
			return nil
		})
	}
	nodetest.Eventually(t, settle, func() error { return logs.saw("past the directory's limits") })
	for _, n := range c.Nodes {
		conn := dial(t, n.Addr())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		dir, err := conn.Hello(ctx, "test/1", "")
		cancel()
		if err != nil {
			t.Fatalf("hello at %s after the flood: %v", n.ID(), err)
		}
		if len(dir.Nodes) >= len(flood) || len(dir.Nodes) > directory.DefaultLimits().MaxEntries {
			t.Errorf("%s lists %d nodes", n.ID(), len(dir.Nodes))
		}
		// (Its peers took the forged n1: an open cluster trusts its members.)
		if e, ok := nodetest.Lookup(n, n.ID()); !ok || e.Addr != n.Addr() {
			t.Errorf("%s lists itself as %+v after the flood", n.ID(), e)
		}
	}
}

// refused counts the directory updates n has refused for its limits.
func refused(t *testing.T, n *node.Node) float64 {
	t.Helper()
	families, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "switchboard_directory_changes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelIs(m, "kind", "refused") {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// Nodes whose routes run TLS with certificates from one CA form a cluster
// without a secret.
func TestClusterOverTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, _, err := pki.NewCA("tls.test", now)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		chain, key, err := ca.Issue(pki.Request{Service: "tls.test", Hosts: []string{"127.0.0.1"}}, now)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ClusterSecret = ""
		cfg.ClusterCert = filepath.Join(dir, fmt.Sprintf("n%d.pem", i))
		cfg.ClusterKey = filepath.Join(dir, fmt.Sprintf("n%d.key", i))
		cfg.ClusterCA = caFile
		if err := os.WriteFile(cfg.ClusterCert, chain, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg.ClusterKey, key, 0o600); err != nil {
			t.Fatal(err)
		}
	}})
	nodetest.Eventually(t, settle, func() error {
		for _, n := range c.Nodes {
			if peers := n.RoutePeers(); len(peers) != 1 {
				return fmt.Errorf("%s routes to %q, want one peer", n.ID(), peers)
			}
		}
		return nil
	})
}
