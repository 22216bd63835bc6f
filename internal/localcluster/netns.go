package localcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Net is a private network for a cluster whose nodes run in network
// namespaces of their own, so that a test can cut one off from the others
// (a partition) and heal it: node i runs in namespace NS(i), reaching the
// others through a veth pair into a bridge in this process's namespace,
// which also holds the gateway address so that this process reaches every
// node. The addresses are in 10.211.X.0/24, X drawn at random among the
// /24s no interface of the host has an address in.
//
// Making a Net needs root (CAP_NET_ADMIN) and iproute2's ip; NewNet says
// which is missing with ErrNoNetns. Close removes everything it made.
type Net struct {
	tag    string // random, in every name
	subnet string // "10.211.X."
	nodes  int
	made   []func() error // undo steps, last first
}

// ErrNoNetns means network namespaces cannot be made here: not root, no
// ip command, or the kernel refused.
var ErrNoNetns = errors.New("localcluster: cannot make network namespaces")

// freeSubnet draws a /24 of 10.211.0.0/16 that no interface of this host
// has an address in: a net left behind by a killed test, or another
// test's net, must not answer for this one's nodes.
func freeSubnet() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("localcluster: listing the host's addresses: %w", err)
	}
	used := map[int]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip4 := ipn.IP.To4(); ip4 != nil && ip4[0] == 10 && ip4[1] == 211 {
				used[int(ip4[2])] = true
			}
		}
	}
	for range 1000 {
		b := make([]byte, 1)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		if third := 1 + int(b[0])%250; !used[third] {
			return "10.211." + strconv.Itoa(third) + ".", nil
		}
	}
	return "", errors.New("localcluster: no free /24 left in 10.211.0.0/16")
}

// NewNet makes the namespaces, veth pairs and bridge for nodes nodes.
func NewNet(ctx context.Context, nodes int) (*Net, error) {
	if nodes < 1 || nodes > 200 {
		return nil, fmt.Errorf("localcluster: a net of %d nodes, want 1..200", nodes)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: not root (network namespaces need CAP_NET_ADMIN)", ErrNoNetns)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("%w: no ip command (iproute2): %v", ErrNoNetns, err)
	}
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	n := &Net{tag: hex.EncodeToString(b), subnet: subnet, nodes: nodes}
	br := n.bridge()
	steps := [][]string{
		{"link", "add", br, "type", "bridge"},
		{"addr", "add", n.subnet + "254/24", "dev", br},
		{"link", "set", br, "up"},
	}
	if err := n.run(ctx, steps[0]...); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoNetns, err)
	}
	n.made = append(n.made, func() error { return n.run(context.Background(), "link", "del", br) })
	for _, s := range steps[1:] {
		if err := n.run(ctx, s...); err != nil {
			n.Close()
			return nil, err
		}
	}
	for i := range nodes {
		if err := n.addNode(ctx, i); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

func (n *Net) bridge() string        { return "sbbr" + n.tag }
func (n *Net) hostVeth(i int) string { return fmt.Sprintf("sbv%s-%d", n.tag, i+1) }
func (n *Net) nodeVeth(i int) string { return fmt.Sprintf("sbp%s-%d", n.tag, i+1) }

// NS is the name of node i's network namespace.
func (n *Net) NS(i int) string { return fmt.Sprintf("sb%s-%d", n.tag, i+1) }

// IP is node i's address.
func (n *Net) IP(i int) string { return n.subnet + strconv.Itoa(i+1) }

func (n *Net) addNode(ctx context.Context, i int) error {
	ns, hv, nv := n.NS(i), n.hostVeth(i), n.nodeVeth(i)
	if err := n.run(ctx, "netns", "add", ns); err != nil {
		return err
	}
	n.made = append(n.made, func() error { return n.run(context.Background(), "netns", "del", ns) })
	if err := n.run(ctx, "link", "add", hv, "type", "veth", "peer", "name", nv); err != nil {
		return err
	}
	n.made = append(n.made, func() error { return n.run(context.Background(), "link", "del", hv) })
	for _, s := range [][]string{
		{"link", "set", nv, "netns", ns},
		{"link", "set", hv, "master", n.bridge(), "up"},
		{"-n", ns, "addr", "add", n.IP(i) + "/24", "dev", nv},
		{"-n", ns, "link", "set", nv, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := n.run(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

// Cut takes node i off the net (its veth's bridge side goes down): it
// reaches neither the other nodes nor this process, and they not it,
// while its process runs on.
func (n *Net) Cut(ctx context.Context, i int) error {
	return n.run(ctx, "link", "set", n.hostVeth(i), "down")
}

// Heal puts node i back on the net after Cut.
func (n *Net) Heal(ctx context.Context, i int) error {
	return n.run(ctx, "link", "set", n.hostVeth(i), "up")
}

// CutFrom drops every packet node i sends to addr (a blackhole route in
// its namespace), as a broken link between two hosts would: node i's
// connections to addr stall with no reset, new ones time out, and
// everything else it reaches as before. HealFrom removes the route.
func (n *Net) CutFrom(ctx context.Context, i int, addr string) error {
	return n.run(ctx, "-n", n.NS(i), "route", "add", "blackhole", addr+"/32")
}

// HealFrom undoes CutFrom.
func (n *Net) HealFrom(ctx context.Context, i int, addr string) error {
	return n.run(ctx, "-n", n.NS(i), "route", "del", "blackhole", addr+"/32")
}

// Command returns the command line that runs argv in node i's namespace.
func (n *Net) Command(i int, argv ...string) []string {
	return append([]string{"ip", "netns", "exec", n.NS(i)}, argv...)
}

// Close removes the namespaces, veth pairs and bridge. Processes still
// running in a namespace keep it alive until they exit.
func (n *Net) Close() error {
	var errs []error
	for i := len(n.made) - 1; i >= 0; i-- {
		if err := n.made[i](); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	n.made = nil
	return errors.Join(errs...)
}

func (n *Net) run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("localcluster: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
