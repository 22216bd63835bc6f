package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/bench"
)

// runBenchScenario parses a scenario's flags, runs it and prints its
// report (a table, or JSON), writing its charts when asked.
func runBenchScenario(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("bench "+name, "[flags]", benchAbout(name), stdout, stderr)
	fs := c.fs
	def := bench.DefaultPolicies(name)
	policies := fs.String("policies", strings.Join(def, ","), "policies to compare side by side: pick policies, dns-only, nats")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	svg := fs.String("svg", "", "write the report's SVG charts into this directory")
	service := fs.String("service", "", "use the running service at this common address (HOST:PORT, a comma list, or a service name with --resolver) instead of starting a cluster per policy")
	resolver := fs.String("resolver", "", "DNS server HOST:PORT asked for every name in --service (default: the system's)")
	nodes := fs.Int("nodes", 3, "nodes in each local cluster")
	clients := fs.Int("clients", 0, "sessions to open first (default 3000; memory 20000)")
	arrivals := fs.Int("arrivals", 1000, "sessions that arrive after the event (scaleout, drain)")
	concurrency := fs.Int("concurrency", 50, "dials in flight at once")
	common := fs.String("common", "dns", "how clients reach a local cluster: dns (the service name through the first node's DNS responder) or list (every node's address)")
	dropBase := fs.Duration("drop-base", 0, "bound of the random wait after a drop before a session picks again from the directory it holds (default: the client's, 20ms)")
	serialJoins := fs.Bool("serial-joins", false, "scale: start each joiner once the one before is up on every node (default: all at once, as their startups then share the nodes' cores)")
	settle := fs.Duration("settle", 0, "scale: how long to wait after the storm before the kill (default 0: at once, while the machine is still busy with the storm)")
	clientPing := fs.Duration("client-ping", 0, "the sessions' heartbeat: ping after this much silence, take the node for gone after three times it (default: the client's, 500ms; a lab holding thousands of sessions on few cores pays for all their pings, which in the world run on the clients' own machines)")
	tracker := fs.Bool("tracker", true, "sessions of the bench share one pick tracker that counts their picks the directory does not show yet")
	natsEntry := fs.String("nats-entry", "all", "the URLs each client of the nats baseline gets: all (every server's), first (the first server's alone) or each (client i: server i mod nodes alone)")
	natsServer := fs.String("nats-server", "", "a nats-server executable for the nats and nats-dns baselines (default: this binary's own, nats-server's main built in)")
	victim := fs.String("victim", "busiest", "failover: the node to kill: busiest (most sessions), dns (the first node, whose DNS responder clients ask first) or random")
	repeat := fs.Int("repeat", 1, "storm, scaleout, failover: run every policy this many times, interleaved, and report each policy's median run; ready: start and restart the cluster this many times")
	samples := fs.Int("samples", 500, "latency: attaches per path")
	background := fs.Int("background", 0, "latency: sessions kept attached (default policy) while measuring")
	kills := fs.Int("kills", 10, "detect: nodes to kill")
	busy := fs.Duration("busy", 10*time.Second, "detect: how long to watch a busy cluster for false downs")
	rooms := fs.Int("rooms", 10, "rtt: rooms")
	roomSize := fs.Int("room-size", 10, "rtt: users in a room, spread over the nodes")
	senders := fs.Int("senders", 0, "rtt: users of each room who type (default: all)")
	rate := fs.Float64("rate", 10, "rtt: characters a second each sender types, one chunk a character")
	duration := fs.Duration("duration", 10*time.Second, "rtt: how long they type")
	fault := fs.String("fault", "", "rtt-fault: kill-leader (default), kill, stop or stop-leader (kill -9 or SIGSTOP of the first room's stream leader, or of another node), or bus; failover: kill (default), stop (SIGSTOP for --pause), partition (cut off the network for --pause, in network namespaces: needs root) or bus (the nodes on an external NATS of 3 nats-server processes, all killed with kill -9 for --pause, then started again on the same storage)")
	devices := fs.Int("devices", 1, "rtt-fault: sessions each typist types from at once, each its own device on the next node with a script of its own (2: the user's chunks cross, and are moved)")
	pause := fs.Duration("pause", 3*time.Second, "rtt-fault, failover: how long stop keeps the node stopped, partition cut off, and bus the nats-servers dead")
	within := fs.Duration("within", 0, "roll, drain: the drain window of each node (default 10s)")
	fromBinary := fs.String("from-binary", "", "roll: the switchboard executable the nodes run first (an earlier release); each restarts on this binary, so the roll is an upgrade")
	transport := fs.String("transport", "tcp", "rtt: how the sessions reach the nodes: tcp, or ws (protocol v1 over each node's WebSocket, as browsers do)")
	withTLS := fs.Bool("tls", false, "latency, storm: measure every path three times side by side: plain TCP, and TLS on the client listener (nodes with certificates from a throwaway CA) for first-time clients (+tls, a full handshake) and for returning ones (+tls-resumed, each resuming its own earlier session); print TLS/plain")
	heartbeat := fs.Duration("heartbeat", 0, "the nodes' heartbeat (default: serve's)")
	nodeLogs := fs.Bool("node-logs", false, "show the nodes' logs on stderr")
	nodeArgs := fs.String("node-args", "", "more serve flags for every node, space-separated (for instance --pprof)")
	nodeEnv := fs.String("node-env", "", "more environment variables for every node, space-separated KEY=VALUE (for instance GOMAXPROCS=1: each node as a machine of one core)")
	regions := fs.String("regions", "", "scale: a supercluster, one NATS cluster of two servers per region (comma-separated, say eu,us) joined by gateways; node i in region i mod N, its group")
	busWatch := fs.Bool("bus-watch", true, "scale: give the nodes a user of the nats-servers' system account (serve --bus-system), so that a peer's closed connection is its death and heartbeats slow as the cluster grows")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write the bench process's CPU profile (its clients' side; the nodes' with --node-args --pprof) to this file")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	for _, kv := range strings.Fields(*nodeEnv) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return usagef("bench "+name, "bench: --node-env takes KEY=VALUE pairs, not %q", kv)
		}
	}
	binary, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: finding the switchboard binary: %w", err)
	}
	cfg := bench.Config{
		Binary: binary, Resolver: *resolver, Policies: splitList(*policies),
		Nodes: *nodes, Clients: *clients, Arrivals: *arrivals, Concurrency: *concurrency,
		Common: *common, DropBase: *dropBase, ClientPing: *clientPing, Settle: *settle, SerialJoins: *serialJoins, NoTracker: !*tracker, NATSEntry: *natsEntry, NATSServer: *natsServer, Victim: *victim,
		Repeat: *repeat, Samples: *samples, Background: *background, Kills: *kills, Busy: *busy, Heartbeat: *heartbeat,
		Rooms: *rooms, RoomSize: *roomSize, Senders: *senders, Rate: *rate, Duration: *duration,
		Fault: *fault, Pause: *pause, Devices: *devices, Within: *within, FromBinary: *fromBinary, NodeArgs: strings.Fields(*nodeArgs), NodeEnv: strings.Fields(*nodeEnv), TLS: *withTLS, Transport: *transport,
		Regions: splitList(*regions), NoBusWatch: !*busWatch,
	}
	if *service != "" {
		if cfg.Service, err = (&clientFlags{service: *service, resolver: *resolver}).resolvedTarget(ctx); err != nil {
			return fmt.Errorf("bench %s: %w", name, err)
		}
	}
	if !*quiet {
		cfg.Progress = stderr
		cfg.ProgressTerminal = isTerminal(stderr)
	}
	if *nodeLogs {
		cfg.Logs = stderr
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench %s: %w", name, err)
		}
		defer stop()
	}
	rep, err := bench.RunScenario(ctx, name, cfg)
	if err != nil {
		return err
	}
	if *svg != "" {
		if err := writeCharts(*svg, rep.Charts()); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.WriteTable(stdout)
	return nil
}

// writeCharts renders each chart into dir/NAME.svg.
func writeCharts(dir string, charts []bench.Chart) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range charts {
		path := filepath.Join(dir, c.Name+".svg")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		err = c.Render(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("bench: writing %s: %w", path, err)
		}
	}
	return nil
}

// benchAbout is the paragraph of a scenario's help.
func benchAbout(name string) string {
	for _, sc := range bench.Scenarios() {
		if sc[0] == name {
			return "Scenario " + name + ": " + sc[1] + ". See docs/benchmarks.md."
		}
	}
	return ""
}

// startCPUProfile profiles this process's CPU into path until the
// returned function is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
