package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// askDNS asks the node's responder for the service name's A records over
// UDP.
func askDNS(t *testing.T, n *node.Node, service string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(service), dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, n.DNSAddr())
	if err != nil {
		t.Fatalf("asking %s's responder for %s: %v", n.ID(), service, err)
	}
	return r
}

// TestDNSServfailWhileStarting: a node that is still starting (the first
// of a cluster, alone: its JetStream has no quorum, so it stays starting)
// answers the service name SERVFAIL, which resolvers do not cache as the
// zone's answer and take as the cue to ask another node's responder, not
// an authoritative empty answer; a node that is up answers with the
// nodes.
func TestDNSServfailWhileStarting(t *testing.T) {
	cfg := nodetest.Config("dns-starting-test", 0)
	cfg.ClusterSecret = nodetest.NewSecret(t)
	cfg.DataDir = t.TempDir()
	cfg.DNS = "127.0.0.1:0"
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("closing %s: %v", n.ID(), err)
		}
	})
	r := askDNS(t, n, cfg.Service)
	if st := n.Status(); st != directory.Starting {
		t.Fatalf("the first node of a cluster, alone, is %q, want starting", st)
	}
	if r.Rcode != dns.RcodeServerFailure || len(r.Answer)+len(r.Ns) > 0 {
		t.Errorf("a starting node's responder: %s, %d answers, %d authority; want SERVFAIL, no records", dns.RcodeToString[r.Rcode], len(r.Answer), len(r.Ns))
	}

	// Up (nodetest.Start waits for it), the responder answers.
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.DNS = "127.0.0.1:0" }})
	up := c.Nodes[0]
	r = askDNS(t, up, c.Config.Service)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("an up node's responder: %s, %d answers; want NOERROR and its address", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
}
