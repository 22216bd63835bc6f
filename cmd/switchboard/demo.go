package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/internal/node"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("demo", "[flags]",
		"Runs a cluster in this process, node i on 127.0.0.i, with DNS, and prints what to\n"+
			"try. Its rooms live in a temporary directory removed when it stops.", stdout, stderr)
	fs := c.fs
	service := fs.String("service", "chat.local", "service name")
	port := fs.Int("port", 7070, "client port of every node (HTTP is port+1, cluster port+2)")
	dnsPort := fs.Int("dns-port", 5353, "DNS port of every node")
	nodes := fs.Int("nodes", 3, "how many nodes, on 127.0.0.1, 127.0.0.2, ...")
	capacity := fs.Int("capacity", 10000, "capacity of each node")
	var lf logFlags
	lf.register(c, "warn")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	if *nodes < 1 || *nodes > 9 {
		return usagef(c.name, "demo: --nodes %d is outside 1..9", *nodes)
	}
	logger, err := lf.logger(c.name, stderr)
	if err != nil {
		return err
	}
	data, err := os.MkdirTemp("", "switchboard-demo-")
	if err != nil {
		return fmt.Errorf("demo: making a data directory: %w", err)
	}
	defer os.RemoveAll(data)
	addr := func(i, p int) string { return net.JoinHostPort("127.0.0."+strconv.Itoa(i+1), strconv.Itoa(p)) }

	var started []*node.Node
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, n := range started {
			_ = n.Shutdown(sctx)
		}
	}()
	for i := range *nodes {
		cfg := node.DefaultConfig()
		cfg.Service = *service
		cfg.ID = "n" + strconv.Itoa(i+1)
		cfg.Listen = addr(i, *port)
		cfg.HTTP = addr(i, *port+1)
		cfg.Cluster = addr(i, *port+2)
		cfg.DNS = addr(i, *dnsPort)
		cfg.Capacity = *capacity
		cfg.Group = "demo/z" + strconv.Itoa(i+1)
		cfg.Version = readBuildInfo().Short()
		cfg.DataDir = filepath.Join(data, cfg.ID)
		cfg.Logger = logger
		if i > 0 {
			cfg.Join = []string{addr(0, *port+2)}
		}
		n, err := node.New(cfg)
		if err != nil {
			return err
		}
		if err := n.Start(ctx); err != nil {
			return fmt.Errorf("demo: starting %s: %w", cfg.ID, err)
		}
		started = append(started, n)
		fmt.Fprintf(stdout, "node %s: clients %s, http %s, cluster %s, dns %s\n", n.ID(), n.Addr(), n.HTTPAddr(), n.ClusterAddr(), n.DNSAddr())
	}
	dns := addr(0, *dnsPort)
	host, p, _ := net.SplitHostPort(dns)
	fmt.Fprintf(stdout, `
Service %[1]s is up on %[2]d nodes. Try, in another terminal:

  dig @%[3]s -p %[4]s %[1]s A +short                       # round robin over the nodes
  dig @%[3]s -p %[4]s _switchboard._tcp.%[1]s SRV +short   # one record a node, weighted by spare room
  switchboard dir --via %[5]s                               # the directory a node answers with
  switchboard dir --via %[1]s --resolver %[6]s            # the same, found through DNS
  switchboard connect --service %[1]s --resolver %[6]s --user alice
  switchboard bench connect --service %[1]s --resolver %[6]s --clients 3000

Press Ctrl-C to stop.
`, *service, *nodes, host, p, addr(0, *port), dns)
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping")
	return nil
}
