package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/leaktest"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/pick"
)

// binary is the switchboard executable built once for the process tests.
var binary string

func TestMain(m *testing.M) { localcluster.RunTests(leaktest.LeakChecked(m), &binary) }

func startCluster(t *testing.T, nodes int) *localcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: nodes, DNS: true, Service: "chat.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// dig asks a node's DNS responder with the real dig and returns the
// answer lines of +short.
func dig(t *testing.T, server string, args ...string) []string {
	t.Helper()
	host, port, _ := strings.Cut(server, ":")
	cmd := exec.Command("dig", append([]string{"@" + host, "-p", port, "+short", "+time=2", "+tries=1"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dig %v: %v (is dnsutils installed? .ci/run installs it)", args, err)
	}
	return strings.Fields(strings.TrimSpace(string(out)))
}

// settle bounds every wait for something that must happen. It is
// generous so that a loaded CI machine never fails a test that is only
// slow: how fast detection and failover are is measured by `switchboard
// bench`, not asserted here.
const settle = 20 * time.Second

func await(t *testing.T, timeout time.Duration, check func(context.Context) error) {
	t.Helper()
	if err := localcluster.Await(context.Background(), timeout, check); err != nil {
		t.Fatal(err)
	}
}

// Three processes on 127.0.0.1-3 with the same ports: each lists all
// three up; kill -9 one and the other two mark it down and drop it from
// their DNS answers; a client that knows only the service name and the
// resolver attaches, and reattaches elsewhere when its node dies.
func TestProcessCluster(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2 := c.Nodes[0], c.Nodes[1]

	// A peer stalled for three heartbeats on a loaded machine is down
	// for a moment: the reads below wait for the cluster as it settles.
	await(t, settle, func(context.Context) error {
		out, err := exec.Command(binary, "dir", "--via", n1.Addr).CombinedOutput()
		if err != nil {
			t.Fatalf("switchboard dir: %v\n%s", err, out)
		}
		if got := strings.Count(string(out), " up "); got != 3 {
			return fmt.Errorf("switchboard dir lists %d nodes up, want 3:\n%s", got, out)
		}
		return nil
	})
	await(t, settle, func(context.Context) error {
		ips := dig(t, n1.DNS, "chat.test", "A")
		slices.Sort(ips)
		if want := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}; !slices.Equal(ips, want) {
			return fmt.Errorf("dig A = %v, want %v", ips, want)
		}
		return nil
	})
	if srv := dig(t, n2.DNS, "_switchboard._tcp.chat.test", "SRV"); len(srv) != 12 {
		t.Errorf("dig SRV = %v, want 3 records", srv)
	}
	if out, _ := exec.Command("dig", "@127.0.0.1", "-p", strings.Split(n1.DNS, ":")[1], "example.com", "A").Output(); !strings.Contains(string(out), "REFUSED") {
		t.Errorf("a name outside the zone was not refused:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	// The client asks n1's DNS responder, so it must not be on n1: the
	// node killed below is the client's, and the resolver must survive it.
	notN1 := pick.Chain(pick.Default(nil), func(nodes []directory.Node, _ pick.Request) ([]directory.Node, string) {
		return slices.DeleteFunc(slices.Clone(nodes), func(n directory.Node) bool { return n.ID == n1.ID }), "not n1"
	})
	s, err := client.Dial(ctx, "dns://"+n1.DNS+"/chat.test", client.WithUser("alice"), client.WithDefaultPort(c.Port()), client.WithPolicy(notN1))
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
	dead := c.Nodes[victim]
	var survivors []*localcluster.Node
	for _, n := range c.Nodes {
		if n != dead {
			survivors = append(survivors, n)
		}
	}
	await(t, settle, func(ctx context.Context) error {
		for _, n := range survivors {
			st, err := n.Status(ctx, dead.ID)
			if err != nil {
				return err
			}
			if st != directory.Down {
				return fmt.Errorf("%s sees %s as %q", n.ID, dead.ID, st)
			}
			if ips := dig(t, n.DNS, "chat.test", "A"); slices.Contains(ips, dead.IP) || len(ips) != 2 {
				return fmt.Errorf("%s's DNS still answers %v", n.ID, ips)
			}
		}
		return nil
	})
	timeout := time.After(settle)
	for reattached := false; !reattached; {
		select {
		case e := <-s.Events():
			if e.Kind == client.Reattached {
				if e.Node.ID == dead.ID {
					t.Fatalf("reattached to the dead node %s", dead.ID)
				}
				reattached = true
			}
		case <-timeout:
			t.Fatalf("the client did not reattach within %v of its node's death", settle)
		}
	}
}

// A draining node leaves the DNS answers at once and refuses attaches.
func TestDrainingLeavesDNS(t *testing.T) {
	c := startCluster(t, 2)
	n1, n2 := c.Nodes[0], c.Nodes[1]
	resp, err := http.Post("http://"+n2.HTTP+"/v1/drain", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	await(t, settle, func(ctx context.Context) error {
		for _, n := range c.Nodes {
			if ips := dig(t, n.DNS, "chat.test", "A"); !slices.Equal(ips, []string{n1.IP}) {
				return fmt.Errorf("%s's DNS answers %v, want only %s", n.ID, ips, n1.IP)
			}
		}
		return nil
	})
}

// switchboard connect attaches through the common address and reports
// the node and why it was picked.
func TestConnectCommand(t *testing.T) {
	c := startCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "connect", "--service", strings.Join(c.Addrs(), ","), "--user", "bob")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "attached to n") || !strings.Contains(lines.Text(), "as bob") {
		t.Fatalf("first line %q, want 'attached to nN ... as bob'", lines.Text())
	}
	if !lines.Scan() || !strings.Contains(lines.Text(), "why:") {
		t.Errorf("second line %q, want the reason", lines.Text())
	}
	await(t, settle, func(ctx context.Context) error {
		users := 0
		for _, n := range c.Nodes {
			dir, err := n.Directory(ctx)
			if err != nil {
				return err
			}
			for _, e := range dir.Nodes {
				if e.ID == n.ID {
					users += e.Users
				}
			}
		}
		if users != 1 {
			return fmt.Errorf("cluster counts %d users, want 1", users)
		}
		return nil
	})
}
