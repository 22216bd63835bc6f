package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/resolve"
)

// dnsmasqIP is the private loopback address the caching resolver of the
// tests listens on, apart from the nodes' 127.0.0.1..N.
const dnsmasqIP = "127.0.0.77"

// startDNSMasq runs dnsmasq (Debian's dnsmasq-base; .ci/run installs it)
// as a caching resolver on dnsmasqIP that forwards the zone of c's service
// to every node's DNS responder and knows nothing else, and returns its
// HOST:PORT once it answers for the service.
func startDNSMasq(t *testing.T, c *localcluster.Cluster) string {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Fatalf("dnsmasq not found (.ci/run installs dnsmasq-base): %v", err)
	}
	port, err := localcluster.FreePort([]string{dnsmasqIP}, 1)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file",
		"--listen-address=" + dnsmasqIP, "--bind-interfaces", "--port=" + strconv.Itoa(port), "--log-facility=-"}
	for _, n := range c.Nodes {
		host, dnsPort, err := net.SplitHostPort(n.DNS)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "--server=/"+c.Service()+"/"+host+"#"+dnsPort)
	}
	cmd := exec.Command(bin, args...)
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr // its log of queries
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dnsmasq: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort(dnsmasqIP, strconv.Itoa(port))
	await(t, settle, func(ctx context.Context) error {
		_, err := resolve.Lookup(ctx, resolve.Config{Resolver: addr}, c.Service())
		return err
	})
	return addr
}

// Behind a real caching resolver (dnsmasq forwarding the service's zone
// to the nodes' responders): every name resolves through it, SRV targets
// included, whether the answer comes forwarded or from its cache; a
// client attaches through it, reattaches through it when its node is
// killed, and switchboard connect attaches through it.
func TestBehindCachingResolver(t *testing.T) {
	c := startCluster(t, 3)
	dnsmasq := startDNSMasq(t, c)

	for i := range 2 { // forwarded, then from the cache
		addrs, err := resolve.Lookup(context.Background(), resolve.Config{Resolver: dnsmasq}, c.Service())
		if err != nil {
			t.Fatalf("lookup %d through dnsmasq: %v", i+1, err)
		}
		for _, a := range addrs {
			if host, _, _ := net.SplitHostPort(a); net.ParseIP(host) == nil {
				t.Errorf("lookup %d through dnsmasq gave %q, a name left for the system resolver", i+1, a)
			}
		}
		if len(addrs) != 3 {
			t.Errorf("lookup %d through dnsmasq: %v, want the 3 nodes", i+1, addrs)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	s, err := client.Dial(ctx, "dns:"+c.Service(), client.WithUser("erin"), client.WithResolver(dnsmasq))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	victim := slices.IndexFunc(c.Nodes, func(n *localcluster.Node) bool { return n.ID == s.Node().ID })
	if victim < 0 {
		t.Fatalf("attached to unknown node %q", s.Node().ID)
	}
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	back := awaitEventTB(t, s, client.Reattached)
	if back.Node.ID == c.Nodes[victim].ID {
		t.Errorf("reattached to the killed node %s", back.Node.ID)
	}

	lines := connectLines(t, "--service", c.Service(), "--resolver", dnsmasq, "--user", "frank")
	awaitLine(t, lines, regexp.MustCompile(`^attached to n\d `))
}
