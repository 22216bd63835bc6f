package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/pki"
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
	plain := fs.Bool("plain", false, "serve clients over plain TCP instead of TLS with a throwaway dev CA")
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
	// Every node listens on --port, its HTTP on port+1 and its cluster on
	// port+2: all three must be ports.
	if *port < 1 || *port > 65535-2 {
		return usagef(c.name, "demo: --port %d is outside 1..65533 (the nodes use it, port+1 for HTTP and port+2 for the cluster)", *port)
	}
	if *dnsPort < 1 || *dnsPort > 65535 {
		return usagef(c.name, "demo: --dns-port %d is outside 1..65535", *dnsPort)
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
	certs := filepath.Join(data, "certs")
	var ca *pki.CA
	if !*plain {
		if ca, _, err = pki.LoadOrCreateCA(certs, *service, time.Now()); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	// The demo's nodes share a secret drawn for this run: nothing else on
	// the host can join their cluster.
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("demo: drawing a cluster secret: %w", err)
	}

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
		if *nodes > 1 {
			// A node alone runs no cluster: a clustered JetStream
			// with no peer would wait for routes forever.
			cfg.Cluster = addr(i, *port+2)
			cfg.ClusterSecret = hex.EncodeToString(secret)
		}
		cfg.DNS = addr(i, *dnsPort)
		cfg.Capacity = *capacity
		demoLimits(&cfg)
		cfg.Group = "demo/z" + strconv.Itoa(i+1)
		cfg.Version = readBuildInfo().Short()
		cfg.DataDir = filepath.Join(data, cfg.ID)
		if ca != nil {
			chain, key, err := ca.Issue(pki.Request{Service: *service, Hosts: []string{"127.0.0." + strconv.Itoa(i+1), "localhost"}}, time.Now())
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			cfg.TLSCert, cfg.TLSKey = filepath.Join(certs, cfg.ID+".pem"), filepath.Join(certs, cfg.ID+".key")
			if err := pki.WriteNew(cfg.TLSKey, key, 0o600); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			if err := pki.WriteNew(cfg.TLSCert, chain, 0o644); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
		}
		cfg.Logger = logger
		// Every node names the others, as docs/operations.md tells
		// operators to: a node then knows the cluster will have them all,
		// and creates the rooms' storage with 3 replicas from the start.
		for j := range *nodes {
			if j != i {
				cfg.Join = append(cfg.Join, addr(j, *port+2))
			}
		}
		n, err := node.New(cfg)
		if err != nil {
			return err
		}
		if err := n.Start(ctx); err != nil {
			if ctx.Err() != nil {
				logger.Info("demo stopped while starting, as asked", "node", cfg.ID, "err", err)
				return nil // a stop asked for (SIGINT, SIGTERM), not a failure
			}
			return fmt.Errorf("demo: starting %s: %w", cfg.ID, err)
		}
		started = append(started, n)
		fmt.Fprintf(stdout, "node %s: clients %s, http %s, cluster %s, dns %s\n", n.ID(), n.Addr(), n.HTTPAddr(), orNone(n.ClusterAddr()), n.DNSAddr())
	}
	dns := addr(0, *dnsPort)
	host, p, _ := net.SplitHostPort(dns)
	// With TLS the clients trust the demo's CA and verify the service
	// name; dir, given an address, is told the name.
	tlsArgs, dirTLSArgs := "", ""
	if ca != nil {
		tlsArgs = " --ca " + filepath.Join(certs, pki.CAFile)
		dirTLSArgs = tlsArgs + " --tls-name " + *service
		fmt.Fprintf(stdout, "\nClients speak TLS; the nodes' certificates, from a dev CA made for this run, name %s.\n", *service)
	}
	fmt.Fprintf(stdout, `
Service %[1]s is up on %[2]d nodes. Try, in another terminal:

  dig @%[3]s -p %[4]s %[1]s A +short                       # round robin over the nodes
  dig @%[3]s -p %[4]s _switchboard._tcp.%[1]s SRV +short   # one record a node, weighted by spare room
  switchboard dir --via %[5]s%[8]s   # the directory a node answers with
  switchboard dir --via %[1]s --resolver %[6]s%[7]s   # the same, found through DNS
  switchboard connect --service %[1]s --resolver %[6]s --user alice%[7]s
  switchboard chat --service %[1]s --resolver %[6]s --user bob%[7]s lobby
  switchboard bench connect --service %[1]s --resolver %[6]s --clients 3000%[7]s

Press Ctrl-C to stop.
`, *service, *nodes, host, p, addr(0, *port), dns, tlsArgs, dirTLSArgs)
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping")
	return nil
}

// demoLimits lets every client of the demo come from this host. A node
// does not count a connection per address when it comes from the very
// address it came to, so node 1, on 127.0.0.1, admits the bench the demo
// prints; the others, on 127.0.0.2 and up, would hold its 127.0.0.1 to
// --max-conns-per-ip (256) and turn the rest away.
func demoLimits(cfg *node.Config) {
	cfg.MaxConnsPerIP = max(cfg.MaxConnsPerIP, cfg.MaxConns)
}
