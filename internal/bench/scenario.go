package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/resolve"
	"github.com/switchboard/switchboard/wire"
)

// Config configures a scenario run. The zero value of a field means its
// default.
type Config struct {
	// Binary is the switchboard executable that local clusters run as
	// child processes (required unless Service is set, for the scenarios
	// that can use a running service).
	Binary string
	// Service is the common address of a running service (a client.Dial
	// target); empty means every policy gets a fresh local cluster.
	Service string
	// Resolver is the DNS server for a dns: Service.
	Resolver string
	// Policies are compared side by side, in order: pick.ByName names,
	// pick.DNSOnly and NATS (default: the scenario's own list).
	Policies []string
	// Nodes is the size of the local cluster (default 3).
	Nodes int
	// Clients is how many sessions a scenario opens first (default 3,000;
	// memory: 20,000).
	Clients int
	// Arrivals is how many sessions arrive after the event in scaleout and
	// drain (default 1,000).
	Arrivals int
	// Concurrency is how many dials run at once (default 50).
	Concurrency int
	// Common is how clients reach a local cluster's common address: "dns"
	// (the service name, asked of every node's DNS responder in turn, the
	// first node's first) or "list" (the comma list of every node's
	// address, tried in random order). Default "dns".
	Common string
	// DropBase bounds the random wait after a drop (default the client's,
	// client.DefaultDropBase).
	DropBase time.Duration
	// ClientPing is the sessions' heartbeat interval (see Load.Ping;
	// default the client's).
	ClientPing time.Duration
	// Settle is how long scale waits after its storm before it kills
	// (default 0: at once, with the machine still busy from the storm).
	Settle time.Duration
	// SerialJoins has scale start each joiner once the one before is up
	// on every live node (default: all at once): each join is then timed
	// on a cluster that is not also starting the other joiners on the
	// same cores.
	SerialJoins bool
	// NoTracker makes each session pick on its own (see Load.NoTracker).
	NoTracker bool
	// NATSEntry says which URLs each client of the nats baseline is
	// given: "all" (every server's, default), "first" (the first
	// server's alone) or "each" (client i server i mod N's alone).
	NATSEntry string
	// NATSServer is a nats-server executable for the NATS baselines
	// (default: Binary's `bench nats-server`, nats-server's main built
	// into switchboard; see ServeNATS).
	NATSServer string
	// Victim says which node failover kills: "busiest" (the node holding
	// the most sessions, default), "dns" (the first node, whose DNS
	// responder the clients ask first) or "random".
	Victim string
	// Repeat runs every policy of storm, scaleout and failover this many
	// times, interleaved; each row is then the run with the median key
	// figure (time to attach all, max/mean, reattach p99), and the row
	// lists every run's key figure (default 1).
	Repeat int
	// Samples is how many connects latency measures per row (default 500).
	Samples int
	// Background is how many sessions latency keeps attached while it
	// measures (default none).
	Background int
	// Kills is how many nodes detect kills (default 10).
	Kills int
	// Busy is how long detect watches a busy cluster for false downs
	// (default 10 s).
	Busy time.Duration
	// Rooms, RoomSize, Senders, Rate and Duration shape rtt: Rooms rooms
	// (default 10) of RoomSize users (default 10) spread over the nodes,
	// Senders of each room (default all) typing Rate characters a second
	// (default 10) for Duration (default 10 s).
	Rooms, RoomSize, Senders int
	Rate                     float64
	Duration                 time.Duration
	// Fault is what rtt-fault does to a node: FaultKillLeader (default),
	// FaultKill, FaultStop or FaultStopLeader; and what failover does to
	// its victim: FailoverKill (default), FailoverStop or
	// FailoverPartition.
	Fault string
	// Pause is how long rtt-fault's and failover's stop faults keep the
	// node stopped, and failover's partition keeps it cut off (default
	// 3 s).
	Pause time.Duration
	// Devices is how many sessions each typist of rtt-fault types from
	// at once (default 1): with 2, each typist has a second device on the
	// next node, typing a script of its own under the same user, so that
	// their chunks cross (docs/rooms.md, "Two devices, one seq").
	Devices int
	// FromBinary, for roll, is the switchboard executable the nodes run
	// before the roll (an earlier release): each node restarts on Binary,
	// so the roll is an upgrade, with the typists (this binary's client)
	// on both versions meanwhile. Empty: every node restarts on Binary.
	FromBinary string
	// Within is the drain window of roll and drain (default 10 s).
	Within time.Duration
	// Heartbeat is the nodes' heartbeat (default: the binary's).
	Heartbeat time.Duration
	// Transport is how rtt's sessions reach the nodes: TransportTCP
	// (default) or TransportWS, protocol v1 over each node's WebSocket
	// (/v1/ws), as browsers reach them.
	Transport string
	// TLS runs latency and storm twice side by side, interleaved: over
	// plain TCP and with TLS on the client listener (a local cluster whose
	// nodes hold certificates from a throwaway CA, clients that trust it
	// and verify the service name), and reports the TLS rows next to the
	// plain ones with their ratio.
	TLS bool
	// Regions makes scale run a supercluster: one NATS cluster per
	// region (two nats-server processes each) joined by gateways, node i
	// in region i mod len(Regions) (its group) on that region's servers.
	// None or one: a single cluster of three.
	Regions []string
	// NoBusWatch runs scale's nodes without serve --bus-system: they
	// learn of a peer's death from its heartbeats alone, which then keep
	// their base interval.
	NoBusWatch bool
	// NodeArgs are more serve flags for every node of a local cluster
	// (for instance --pprof, to profile the nodes while a scenario runs).
	NodeArgs []string
	// NodeEnv are more environment variables (KEY=VALUE) for every node
	// of a local cluster: GOMAXPROCS=1 stands each node for a machine of
	// one core, where a lab of a hundred nodes shares two.
	NodeEnv []string
	// Progress receives progress lines while a scenario runs (nil: none).
	Progress io.Writer
	// ProgressTerminal says Progress is a terminal: counters then rewrite
	// one line with a carriage return, ten times a second. Otherwise (a
	// file, a pipe) each count is a line of its own, at most once a second.
	ProgressTerminal bool
	// Logs receives the nodes' output (nil: discarded).
	Logs io.Writer
}

// A Report is what a scenario measured. It marshals to JSON.
type Report interface {
	// WriteTable prints the figures as aligned tables, with the targets.
	WriteTable(w io.Writer)
	// Charts returns the report's SVG charts.
	Charts() []Chart
}

// Chart is one SVG chart of a report; Name is its file name without
// extension.
type Chart struct {
	Name   string
	Render func(w io.Writer) error
}

// Target is one figure an issue asks for, and whether this run met it.
type Target struct {
	What string `json:"what"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

type scenario struct {
	name, doc string
	policies  []string // default Policies; nil: the scenario takes none
	service   bool     // can use a running service
	tls       bool     // takes Config.TLS
	run       func(ctx context.Context, e *env) (Report, error)
}

var allPolicies = append(append(pick.Names(), pick.DNSOnly), NATS, NATSDNS)

func scenarios() []scenario {
	return []scenario{
		{"storm", "sessions arrive through the common address of 3 nodes", allPolicies, true, true, runStorm},
		{"scaleout", "a 4th node joins 3 loaded nodes, then more sessions arrive", allPolicies, false, false, runScaleout},
		{"failover", "kill -9 a loaded node; time the reattachments", allPolicies, false, false, runFailover},
		{"drain", "drain a loaded node to empty under typists, next to nats-server's lame duck mode", []string{"default", NATS}, false, false, runDrain},
		{"latency", "connect through the common address against a direct attach", []string{"default", pick.DNSOnly}, true, true, runLatency},
		{"detect", "time from kill -9 to down on every peer; no false down when busy", nil, false, false, runDetect},
		{"memory", "memory per idle attached session on one node", nil, false, false, runMemory},
		{"rtt", "typing latency in rooms spread over the nodes", nil, true, false, runRTT},
		{"rtt-fault", "typing in rooms while a node is killed or stopped: nothing acked lost, nothing shown twice", nil, false, false, runRTTFault},
		{"roll", "a rolling upgrade under typists: every node drained, stopped, restarted in turn", nil, false, false, runRoll},
		{"rebalance", "a node joins 3 loaded nodes and no session arrives: the surplus moves to it (--rebalance-threshold)", []string{"default"}, false, false, runRebalance},
		{"ready", "how soon a fresh cluster, and a full restart with its data, serve rooms", nil, false, false, runReady},
		{"scale", "--nodes processes on an external NATS cluster (3 nats-server, JetStream): idle cost, storm, kill, join, hello bytes", nil, false, false, runScale},
	}
}

// Scenarios lists the scenario names with a line on each.
func Scenarios() [][2]string {
	var out [][2]string
	for _, s := range scenarios() {
		out = append(out, [2]string{s.name, s.doc})
	}
	return out
}

// DefaultPolicies returns the policies a scenario compares by default
// (nil for scenarios that take none).
func DefaultPolicies(name string) []string {
	for _, s := range scenarios() {
		if s.name == name {
			return slices.Clone(s.policies)
		}
	}
	return nil
}

// RunScenario runs the named scenario.
func RunScenario(ctx context.Context, name string, cfg Config) (Report, error) {
	i := slices.IndexFunc(scenarios(), func(s scenario) bool { return s.name == name })
	if i < 0 {
		var names []string
		for _, s := range scenarios() {
			names = append(names, s.name)
		}
		return nil, fmt.Errorf("bench: unknown scenario %q (known: %s)", name, strings.Join(names, ", "))
	}
	sc := scenarios()[i]
	e, err := newEnv(sc, cfg)
	if err != nil {
		return nil, err
	}
	return sc.run(ctx, e)
}

// awaitFor polls check until it returns nil or timeout passes.
var awaitFor = localcluster.Await

// env is one scenario run: its configuration with defaults filled in, and
// the progress output.
type env struct {
	cfg  Config
	name string
	pmu  sync.Mutex
	// net, when set, is the network the next local cluster's nodes run
	// in, each in a namespace of its own (failover --fault partition).
	net *localcluster.Net
	// bus, when set, is the external NATS (nats:// URLs) the next local
	// cluster's nodes use (serve --bus; the bus fault).
	bus string
}

func newEnv(sc scenario, cfg Config) (*env, error) {
	if cfg.Service != "" && !sc.service {
		return nil, fmt.Errorf("bench: %s starts and hurts its own cluster; it cannot use --service", sc.name)
	}
	if cfg.TLS && !sc.tls {
		return nil, fmt.Errorf("bench: %s has no TLS rows; --tls is for latency and storm", sc.name)
	}
	switch cfg.Transport {
	case "", TransportTCP:
	case TransportWS:
		if sc.name != "rtt" {
			return nil, fmt.Errorf("bench: --transport ws is for rtt, not %s", sc.name)
		}
	default:
		return nil, fmt.Errorf("bench: unknown transport %q (want %s or %s)", cfg.Transport, TransportTCP, TransportWS)
	}
	if cfg.TLS && cfg.Service != "" {
		return nil, errors.New("bench: --tls compares a plain and a TLS local cluster side by side; it cannot use --service")
	}
	if cfg.Service == "" && cfg.Binary == "" {
		return nil, errors.New("bench: no switchboard binary to start nodes from")
	}
	if len(cfg.Policies) == 0 {
		cfg.Policies = slices.Clone(sc.policies)
	}
	for _, p := range cfg.Policies {
		if isNATS(p) {
			if cfg.Service != "" {
				return nil, errors.New("bench: the nats baseline starts its own servers; leave it out with --service")
			}
			continue
		}
		if _, err := pick.ByName(p, nil); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Nodes, 3)
	if sc.name == "memory" {
		def(&cfg.Clients, 20000)
	}
	def(&cfg.Clients, 3000)
	def(&cfg.Arrivals, 1000)
	def(&cfg.Concurrency, 50)
	def(&cfg.Samples, 500)
	def(&cfg.Repeat, 1)
	def(&cfg.Kills, 10)
	def(&cfg.Rooms, 10)
	def(&cfg.RoomSize, 10)
	def(&cfg.Senders, cfg.RoomSize)
	if cfg.Rate <= 0 {
		cfg.Rate = 10
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Busy <= 0 {
		cfg.Busy = 10 * time.Second
	}
	if cfg.DropBase <= 0 {
		cfg.DropBase = client.DefaultDropBase
	}
	switch cfg.Common {
	case "":
		cfg.Common = "dns"
	case "dns", "list":
	default:
		return nil, fmt.Errorf("bench: common address %q: want dns or list", cfg.Common)
	}
	switch cfg.NATSEntry {
	case "":
		cfg.NATSEntry = "all"
	case "all", "first", "each":
	default:
		return nil, fmt.Errorf("bench: nats entry %q: want all, first or each", cfg.NATSEntry)
	}
	switch cfg.Victim {
	case "":
		cfg.Victim = "busiest"
	case "busiest", "dns", "random":
	default:
		return nil, fmt.Errorf("bench: victim %q: want busiest, dns or random", cfg.Victim)
	}
	return &env{cfg: cfg, name: sc.name}, nil
}

// logf prints a progress line.
func (e *env) logf(format string, args ...any) {
	if e.cfg.Progress == nil {
		return
	}
	e.pmu.Lock()
	defer e.pmu.Unlock()
	fmt.Fprintf(e.cfg.Progress, "%s %s: %s\n", time.Now().Format("15:04:05.000"), e.name, fmt.Sprintf(format, args...))
}

// counter returns a progress callback that prints "label done/total" (on
// a terminal at most ten times a second, rewriting its line; elsewhere at
// most once a second, a line each), and a func that ends the line.
func (e *env) counter(label string, total int) (progress func(done int), end func()) {
	if e.cfg.Progress == nil {
		return func(int) {}, func() {}
	}
	every, format := time.Second, "%s %s: %s %d/%d\n"
	if e.cfg.ProgressTerminal {
		every, format = 100*time.Millisecond, "\r%s %s: %s %d/%d"
	}
	var mu sync.Mutex
	var last time.Time
	printed := false
	progress = func(done int) {
		mu.Lock()
		defer mu.Unlock()
		if done < total && time.Since(last) < every {
			return
		}
		last = time.Now()
		printed = true
		e.pmu.Lock()
		fmt.Fprintf(e.cfg.Progress, format, last.Format("15:04:05.000"), e.name, label, done, total)
		e.pmu.Unlock()
	}
	end = func() {
		mu.Lock()
		defer mu.Unlock()
		if printed && e.cfg.ProgressTerminal {
			e.pmu.Lock()
			fmt.Fprintln(e.cfg.Progress)
			e.pmu.Unlock()
		}
	}
	return progress, end
}

// open attaches n sessions to c with policy, showing progress. The
// dns-only baseline's sessions look the service name up as plain A
// records (client.WithPlainDNS), and the group policy's sessions are
// spread over the groups of the cluster's nodes.
func (e *env) open(ctx context.Context, c *cluster, policy string, n int, prefix string) (*Run, error) {
	progress, end := e.counter(fmt.Sprintf("[%s] attached", policy), n)
	load := Load{
		Target: c.target, Resolver: c.resolver, Clients: n, Concurrency: e.cfg.Concurrency,
		Policy: policy, UserPrefix: prefix, DropBase: e.cfg.DropBase, NoTracker: e.cfg.NoTracker,
		Ping: e.cfg.ClientPing, TLS: c.tls, ReturningTLS: c.returning,
	}
	if c.returning {
		// The nodes count the untimed visitors gone before the timed
		// dials, so that the picks start from the same empty directory
		// as a first-time storm's.
		load.Primed = func(ctx context.Context) error {
			err := c.awaitUsers(ctx, 0)
			c.primedCPU = c.cpu()
			return err
		}
	}
	if policy == pick.DNSOnly && c.plainTarget != "" {
		load.Target, load.PlainDNS = c.plainTarget, true
	}
	if policy == "group" && c.local != nil {
		for _, n := range c.local.Nodes {
			load.Groups = append(load.Groups, n.Group)
		}
	}
	run, err := Open(ctx, load, progress)
	end()
	return run, err
}

// benchGroups are the groups of a local cluster's nodes, node i in
// benchGroups[i mod len]: one zone each, two regions.
var benchGroups = []string{"eu/a", "eu/b", "us/a", "us/b"}

// cluster is the service a policy runs against: a local cluster of child
// processes, or the running service of Config.Service.
type cluster struct {
	local    *localcluster.Cluster // nil for a running service
	target   string
	resolver string
	// plainTarget is the service name with the nodes' port, for the
	// dns-only baseline's plain A lookups ("" unless Common is dns).
	plainTarget string
	base        int // users on a running service before the run
	http        *http.Client
	// tls is the clients' TLS configuration (the cluster's CA, the service
	// name) when the nodes serve TLS; nil: plain TCP.
	tls *tls.Config
	// returning makes open's sessions returning TLS clients
	// (Load.ReturningTLS): each resumes the session of an untimed earlier
	// visit of its own; primedCPU is the nodes' CPU time when those
	// visits were over (c.cpu).
	returning bool
	primedCPU time.Duration
}

// start gives a policy its cluster: a fresh local one of nodes nodes, or
// the running service.
func (e *env) start(ctx context.Context, nodes int) (*cluster, error) {
	return e.startTLS(ctx, nodes, false)
}

// startTLS is start; withTLS gives the local cluster's nodes certificates
// and TLS on their client listener, and the cluster's clients a TLS
// configuration that trusts them.
func (e *env) startTLS(ctx context.Context, nodes int, withTLS bool) (*cluster, error) {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	if e.cfg.Service != "" {
		c := &cluster{target: e.cfg.Service, resolver: e.cfg.Resolver, http: hc}
		users, err := c.users(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			c.base += u
		}
		return c, nil
	}
	if withTLS {
		e.logf("starting %d nodes with TLS", nodes)
	} else {
		e.logf("starting %d nodes", nodes)
	}
	lc, err := localcluster.Start(ctx, localcluster.Config{
		Binary: e.cfg.Binary, Nodes: nodes, DNS: true, Heartbeat: e.cfg.Heartbeat,
		Capacity: max(10000, 2*(e.cfg.Clients+e.cfg.Arrivals)), Output: e.cfg.Logs,
		Args: e.cfg.NodeArgs, Env: e.cfg.NodeEnv, TLS: withTLS, Groups: benchGroups, Net: e.net, Bus: e.bus,
	})
	if err != nil {
		return nil, err
	}
	c := &cluster{local: lc, http: hc}
	if withTLS {
		c.tls = &tls.Config{RootCAs: lc.CAPool(), ServerName: lc.Service()}
	}
	if e.cfg.Common == "dns" {
		// Every node's responder, in turn: a dead first node leaves
		// the service name answered by the others.
		c.target = "dns:" + lc.Service()
		var resolvers []string
		for _, n := range lc.Nodes {
			resolvers = append(resolvers, n.DNS)
		}
		c.resolver = strings.Join(resolvers, ",")
		c.plainTarget = net.JoinHostPort(lc.Service(), strconv.Itoa(lc.Port()))
	} else {
		c.target = strings.Join(lc.Addrs(), ",")
	}
	return c, nil
}

// stop ends a local cluster; on a running service it waits until the
// users the run added are gone again.
func (c *cluster) stop(ctx context.Context) {
	defer c.http.CloseIdleConnections()
	if c.local != nil {
		c.local.Stop()
		return
	}
	_ = localcluster.Await(ctx, 15*time.Second, func(ctx context.Context) error {
		users, err := c.users(ctx)
		if err != nil {
			return err
		}
		total := 0
		for _, u := range users {
			total += u
		}
		if total > c.base {
			return fmt.Errorf("%d users, waiting for %d", total, c.base)
		}
		return nil
	})
}

// directory fetches the directory from a live node.
func (c *cluster) directory(ctx context.Context) (*wire.Directory, error) {
	if c.local != nil {
		var errs []error
		for _, n := range c.local.Nodes {
			if !n.Alive() {
				continue
			}
			d, err := fetchHTTP(ctx, c.http, n.HTTP)
			if err == nil {
				return d, nil
			}
			errs = append(errs, err)
		}
		return nil, fmt.Errorf("bench: no node answered: %w", errors.Join(errs...))
	}
	addrs, err := c.addrs(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		d, err := client.FetchDirectory(ctx, nil, a)
		if err == nil {
			return d, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("bench: no address of %s answered: %w", c.target, errors.Join(errs...))
}

// addrs resolves a running service's target into addresses.
func (c *cluster) addrs(ctx context.Context) ([]string, error) {
	t := c.target
	var service, resolver string
	switch {
	case strings.HasPrefix(t, "dns://"):
		resolver, service, _ = strings.Cut(strings.TrimPrefix(t, "dns://"), "/")
	case strings.HasPrefix(t, "dns:"):
		service, resolver = strings.TrimPrefix(t, "dns:"), c.resolver
	default:
		return strings.Split(t, ","), nil
	}
	return resolve.Lookup(ctx, resolve.Config{Resolver: resolver, DefaultPort: 7070}, service)
}

// users reads the users of every node listed up, draining or full.
func (c *cluster) users(ctx context.Context) (map[string]int, error) {
	d, err := c.directory(ctx)
	if err != nil {
		return nil, err
	}
	return usersOf(d.Nodes), nil
}

// usersOf maps the nodes listed up, draining or full to their users.
func usersOf(nodes []directory.Node) map[string]int {
	out := map[string]int{}
	for _, n := range nodes {
		if n.Status != directory.Down && n.Status != directory.Starting {
			out[n.ID] = n.Users
		}
	}
	return out
}

// fetchHTTP reads a node's directory from its HTTP API.
func fetchHTTP(ctx context.Context, hc *http.Client, addr string) (*wire.Directory, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/directory", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m, err := decodeDirectory(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("bench: %s's directory: %w", addr, err)
	}
	return m, nil
}

// repeat runs one of the policies Config.Repeat times, the policies
// interleaved (every policy once, then every policy again...) so that a
// change in the machine's load falls on all of them alike, and returns
// each policy's runs.
func repeat[R any](e *env, each func(policy string) (R, error)) (map[string][]R, error) {
	return repeatKeys(e, e.cfg.Policies, each)
}

// repeatKeys is repeat over keys instead of the policies (a policy and
// its TLS variant, for instance).
func repeatKeys[R any](e *env, keys []string, each func(key string) (R, error)) (map[string][]R, error) {
	runs := map[string][]R{}
	for round := range e.cfg.Repeat {
		if e.cfg.Repeat > 1 {
			e.logf("round %d of %d", round+1, e.cfg.Repeat)
		}
		for _, p := range keys {
			r, err := each(p)
			if err != nil {
				return nil, fmt.Errorf("bench: %s, %s: %w", e.name, p, err)
			}
			runs[p] = append(runs[p], r)
		}
	}
	return runs, nil
}
