package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/internal/node"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := node.DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Service, "service", cfg.Service, "common service name shared by every node")
	fs.StringVar(&cfg.ID, "id", "", "node ID (default: the advertised client address)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "client TCP listener HOST:PORT")
	fs.StringVar(&cfg.Advertise, "advertise", "", "client address to publish in the directory (default: the listener's)")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "HTTP listener HOST:PORT for the API, health and metrics (empty: off)")
	fs.StringVar(&cfg.DNS, "dns", "", "DNS responder HOST:PORT (UDP and TCP) for the service name (empty: off)")
	fs.DurationVar(&cfg.DNSTTL, "dns-ttl", cfg.DNSTTL, "TTL of DNS answers")
	fs.StringVar(&cfg.Cluster, "cluster", "", "embedded NATS route listener HOST:PORT (empty: a one-node cluster)")
	join := fs.String("join", "", "seed nodes' cluster addresses, HOST:PORT,...")
	fs.StringVar(&cfg.Bus, "bus", "", "external NATS URL (nats://...) instead of the embedded server")
	fs.StringVar(&cfg.Group, "group", "", "this node's REGION/ZONE")
	fs.IntVar(&cfg.Capacity, "capacity", cfg.Capacity, "most sessions this node admits")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", cfg.Heartbeat, "heartbeat interval; peers mark a node down after 3 missed")
	fs.StringVar(&cfg.DataDir, "data", "", "directory for the engine's stored state (default: under the temp dir)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	cfg.Join = splitList(*join)
	cfg.Version = version
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("serve: --log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "switchboard %s: node %s of %s on %s (http %s, cluster %s, dns %s)\n",
		version, n.ID(), n.Service(), n.Addr(), orNone(n.HTTPAddr()), orNone(n.ClusterAddr()), orNone(n.DNSAddr()))
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Close(shutdownCtx)
}

func orNone(s string) string {
	if s == "" {
		return "off"
	}
	return s
}
