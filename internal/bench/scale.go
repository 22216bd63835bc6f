package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/promtext"
	"github.com/switchboard/switchboard/stats"
	"github.com/switchboard/switchboard/wire"
)

// ScaleReport is the scale scenario: Nodes node processes on an external
// NATS cluster of three nats-server processes with JetStream (serve
// --bus), idle, then a storm of Clients sessions, then Killed nodes
// killed at once, then Joined nodes started at once.
type ScaleReport struct {
	Scenario string `json:"scenario"`
	Nodes    int    `json:"nodes"`
	Clients  int    `json:"clients"`
	NATS     int    `json:"nats_servers"`
	// ClientPingMS is the sessions' heartbeat interval (--client-ping),
	// 0 for the client's default.
	ClientPingMS float64 `json:"client_ping_ms,omitempty"`
	// SettleMS is how long the bench waited after the storm before the
	// kill (--settle); 0: at once.
	SettleMS float64 `json:"settle_ms,omitempty"`
	// SerialJoins says the joiners started one at a time (--serial-joins).
	SerialJoins bool `json:"serial_joins,omitempty"`
	// Idle is the quiet cluster, measured over IdleSeconds.
	IdleSeconds float64 `json:"idle_s"`
	// CPUPercent is each node's CPU time over the idle period as a
	// percentage of one core: median, p99 (nearest rank) and max.
	CPUPercent Percentiles `json:"idle_cpu_percent"`
	// RecvPerSec is each node's directory updates received a second
	// while idle (switchboard_directory_updates_received_total).
	RecvPerSec Percentiles `json:"idle_updates_received_per_s"`
	// RSSMiB is each node's resident memory after the idle period, and
	// RSSAfterMiB after the storm.
	RSSMiB      Percentiles `json:"idle_rss_mib"`
	RSSAfterMiB Percentiles `json:"storm_rss_mib"`
	// HelloBytes is the directory line a hello gets at a node: asking
	// for client.ViewSize nodes, and asking for no bound (as a v1 client).
	HelloBytes   int `json:"hello_bytes_view"`
	HelloBytesV1 int `json:"hello_bytes_v1"`
	// HelloNodes and HelloNodesV1 are how many nodes those two lines
	// listed.
	HelloNodes   int `json:"hello_nodes_view"`
	HelloNodesV1 int `json:"hello_nodes_v1"`
	// Storm: where the sessions went, and how long they took.
	StormMaxMean   float64     `json:"storm_max_mean"`
	StormElapsedMS float64     `json:"storm_elapsed_ms"`
	StormConnectMS Percentiles `json:"storm_connect_ms"`
	StormFailed    int         `json:"storm_failed"`
	// Kill: the sessions the killed nodes held, their reattachments, and
	// how long until each live node's pushed directory showed each killed
	// node down (over every pair), in ms from the kill.
	Killed       []string    `json:"killed"`
	Held         int         `json:"held"`
	Reattach     Reattach    `json:"reattach"`
	DownMS       Percentiles `json:"down_everywhere_ms"`
	DownMissing  int         `json:"down_missing"`
	AfterMaxMean float64     `json:"after_kill_max_mean"`
	// NodeDownMS is the same by the nodes' own logs (peerLog): when each
	// live node's directory, the one its hellos read, showed each killed
	// node down, in ms from the kill; NodeJoinMS when each showed each
	// joiner up, after the first did. The targets are judged on these:
	// the observers' figures add the wait of a session in the bench's
	// own, busy process.
	NodeDownMS      Percentiles `json:"node_down_ms"`
	NodeDownMissing int         `json:"node_down_missing"`
	// NodeDownSpreadMS is, by the same logs, how long after the first
	// node showed a killed node down each other node did: the spread
	// once the cluster knew.
	NodeDownSpreadMS Percentiles `json:"node_down_spread_ms"`
	// NodeDownFirstMS is, for each killed node, when the first live node
	// showed it down, in ms from the kill: how long the death took to be
	// known at all (the process to die and its connection to close, the
	// event to come).
	NodeDownFirstMS Percentiles `json:"node_down_first_ms"`
	NodeJoinMS      Percentiles `json:"node_join_spread_ms"`
	NodeJoinMissing int         `json:"node_join_missing"`
	// Join: how long after the first node showed a joined node up every
	// other node showed it (over every pair), and from its process start
	// to shown up everywhere.
	Joined      int         `json:"joined"`
	JoinMS      Percentiles `json:"join_spread_ms"`
	JoinStartMS Percentiles `json:"join_from_start_ms"`
	JoinMissing int         `json:"join_missing"`
	Load        [3]float64  `json:"loadavg"`
	Targets     []Target    `json:"targets"`
	// BusWatch says the nodes watched the nats-servers' disconnect events
	// (serve --bus-system); Disconnects is how many (live node, killed
	// node) pairs learned the death that way (of len(Killed) times the
	// live nodes), from the nodes' switchboard_directory_disconnects_total.
	BusWatch    bool `json:"bus_watch"`
	Disconnects int  `json:"disconnects"`
	// Regions are the regions (the nodes' groups, one NATS cluster each,
	// joined by gateways); empty for one cluster.
	Regions []string `json:"regions,omitempty"`
	// CrossListed is how many (node, node of another region) pairs were
	// listed up when every node was up (all of them, or the run stops).
	CrossListed int `json:"cross_listed,omitempty"`
	// CrossAttach is, for each region, a session of that group dialled
	// through a node of another region, and where it attached.
	CrossAttach []CrossAttach `json:"cross_attach,omitempty"`
	// RoomAcross is a room with a member in each of the first two
	// regions: the text one typed reached the other.
	RoomAcross *RoomAcross `json:"room_across,omitempty"`
}

// CrossAttach is a session of group Want dialled at node Via (of another
// region) that attached to Landed, of group LandedGroup.
type CrossAttach struct {
	Want        string `json:"group"`
	Via         string `json:"via"`
	Landed      string `json:"landed"`
	LandedGroup string `json:"landed_group"`
}

// RoomAcross is one room with a member on a node of each of two regions.
type RoomAcross struct {
	From, To  string  // the members' nodes
	Delivered bool    // To's member received From's text
	MS        float64 // from the send to the receipt
	Err       string  `json:",omitempty"`
}

// scaleNATS is the external NATS of the scale scenario: one cluster, or
// with regions one cluster per region joined by gateways (a
// supercluster).
type scaleNATS struct {
	procs []*exec.Cmd
	done  []chan struct{}
	urls  []string
	dir   string
	// regions are the clusters' names ("scale" alone without regions);
	// regionURLs[r] the client URLs of region r's servers and
	// systemURLs[r] the same with the system account's user.
	regions    []string
	regionURLs [][]string
	systemURLs [][]string
}

// scaleNATSIP is the address of nats-server i: 127.0.1.x, apart from the
// nodes' 127.0.0.x.
func scaleNATSIP(i int) string { return "127.0.1." + strconv.Itoa(i+1) }

// scaleSystemUser is the user of the nats-servers' system account that
// the nodes watch disconnect events with (serve --bus-system).
const scaleSystemUser = "sys"

// scaleNATSConf is nats-server i's configuration file: two accounts, the
// system account SYS (a user for the nodes' --bus-system) and APP with
// JetStream, which takes every connection without credentials
// (no_auth_user); its cluster's routes; and with more than one region a
// gateway to every region's cluster.
func scaleNATSConf(name, ip string, port int, cluster string, routes []string, gateways [][2]string, storeDir, sysPassword, appPassword string) string {
	var b strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&b, "server_name: %s\nlisten: %s\nhttp: %s\n", q(name), q(net.JoinHostPort(ip, strconv.Itoa(port))), q(net.JoinHostPort(ip, strconv.Itoa(port+2))))
	fmt.Fprintf(&b, "jetstream { store_dir: %s }\n", q(storeDir))
	fmt.Fprintf(&b, "cluster { name: %s, listen: %s, routes: [", q(cluster), q(net.JoinHostPort(ip, strconv.Itoa(port+1))))
	for i, r := range routes {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q(r))
	}
	b.WriteString("] }\n")
	if len(gateways) > 0 {
		fmt.Fprintf(&b, "gateway { name: %s, listen: %s, gateways: [", q(cluster), q(net.JoinHostPort(ip, strconv.Itoa(port+3))))
		for i, g := range gateways {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "{ name: %s, urls: [%s] }", q(g[0]), g[1])
		}
		b.WriteString("] }\n")
	}
	fmt.Fprintf(&b, "accounts {\n  SYS { users: [ { user: %s, password: %s } ] }\n  APP { jetstream: enabled, users: [ { user: app, password: %s } ] }\n}\n",
		q(scaleSystemUser), q(sysPassword), q(appPassword))
	b.WriteString("system_account: SYS\nno_auth_user: app\n")
	return b.String()
}

// startScaleNATS starts perRegion nats-server processes for each of
// regions (one cluster "scale" when there are none), routed to each
// other within a region and joined by gateways between regions, each
// with JetStream, and waits until JetStream answers in every region.
func (e *env) startScaleNATS(ctx context.Context, regions []string, perRegion int) (*scaleNATS, error) {
	clusters := regions
	if len(clusters) == 0 {
		clusters = []string{"scale"}
	}
	n := len(clusters) * perRegion
	ips := make([]string, n)
	for i := range ips {
		ips[i] = scaleNATSIP(i)
	}
	port, err := localcluster.FreePort(ips, 4)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "switchboard-scale-nats-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	logs := e.cfg.Logs
	if logs == nil {
		logs = io.Discard
	}
	sysPassword, err := randomHex()
	if err != nil {
		return nil, err
	}
	appPassword, err := randomHex()
	if err != nil {
		return nil, err
	}
	s := &scaleNATS{dir: dir, regions: clusters}
	exe := e.natsCommand()
	route := func(i int) string { return "nats://" + net.JoinHostPort(ips[i], strconv.Itoa(port+1)) }
	var gateways [][2]string
	if len(regions) > 1 {
		for r, name := range clusters {
			var urls []string
			for j := range perRegion {
				urls = append(urls, strconv.Quote("nats://"+net.JoinHostPort(ips[r*perRegion+j], strconv.Itoa(port+3))))
			}
			gateways = append(gateways, [2]string{name, strings.Join(urls, ", ")})
		}
	}
	for r, cluster := range clusters {
		var urls, sys []string
		for j := range perRegion {
			i := r*perRegion + j
			var routes []string
			for k := range perRegion {
				if k != j {
					routes = append(routes, route(r*perRegion+k))
				}
			}
			name := "s" + strconv.Itoa(i+1)
			conf := filepath.Join(dir, name+".conf")
			text := scaleNATSConf(name, ips[i], port, cluster, routes, gateways, filepath.Join(dir, name), sysPassword, appPassword)
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				s.stop()
				return nil, fmt.Errorf("bench: %w", err)
			}
			cmd := exec.Command(exe[0], append(slices.Clone(exe[1:]), "--config", conf)...)
			cmd.Stdout, cmd.Stderr = logs, logs
			if err := cmd.Start(); err != nil {
				s.stop()
				return nil, fmt.Errorf("bench: starting nats-server %d: %w", i+1, err)
			}
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			s.procs, s.done = append(s.procs, cmd), append(s.done, done)
			addr := net.JoinHostPort(ips[i], strconv.Itoa(port))
			urls = append(urls, "nats://"+addr)
			sys = append(sys, "nats://"+scaleSystemUser+":"+sysPassword+"@"+addr)
		}
		s.urls = append(s.urls, urls...)
		s.regionURLs = append(s.regionURLs, urls)
		s.systemURLs = append(s.systemURLs, sys)
	}
	for r := range clusters {
		err = localcluster.Await(ctx, 60*time.Second, jetStreamAnswers(strings.Join(s.regionURLs[r], ",")))
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("bench: waiting for JetStream on the nats-servers of %s: %w", clusters[r], err)
		}
	}
	return s, nil
}

// randomHex is 16 random bytes in hex, for a password of a run.
func randomHex() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("bench: drawing a password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (s *scaleNATS) stop() {
	for _, p := range s.procs {
		_ = p.Process.Kill()
	}
	for _, d := range s.done {
		<-d
	}
	_ = os.RemoveAll(s.dir)
}

// observer is one session attached to one node that records, from the
// directories the node pushes, when it first showed each node with each
// status.
type observer struct {
	node string
	conn *client.Conn
	mu   sync.Mutex
	seen map[string]map[directory.Status]time.Time
}

func (e *env) observe(ctx context.Context, n *localcluster.Node) (*observer, error) {
	conn, err := client.DialConn(ctx, nil, n.Addr)
	if err != nil {
		return nil, err
	}
	o := &observer{node: n.ID, conn: conn, seen: map[string]map[directory.Status]time.Time{}}
	// The whole directory, then pushes of what changed only: an observer
	// notes statuses as they come and holds no directory, and decoding a
	// whole directory of every node at every push would take the bench's
	// CPU from the nodes it measures.
	dir, err := conn.HelloWith(ctx, wire.Message{Op: wire.OpHello, V: wire.Version, Client: "switchboard-bench/scale", Deltas: true})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bench: hello at %s: %w", n.ID, err)
	}
	o.note(dir, time.Now())
	if err := conn.Send(wire.Message{Op: wire.OpAttach, User: "observer-" + n.ID}); err != nil {
		conn.Close()
		return nil, err
	}
	go func() {
		for {
			m, err := conn.Recv(context.Background())
			if err != nil {
				return
			}
			if d := m.Directory(); d != nil {
				o.note(d, time.Now())
			}
		}
	}()
	return o, nil
}

func (o *observer) note(d *wire.Directory, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range d.Nodes {
		by := o.seen[n.ID]
		if by == nil {
			by = map[directory.Status]time.Time{}
			o.seen[n.ID] = by
		}
		if _, ok := by[n.Status]; !ok {
			by[n.Status] = at
		}
	}
}

// first is when o first saw id with status, after not.
func (o *observer) first(id string, status directory.Status) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.seen[id][status]
	return t, ok
}

// appendSpread appends how long after the first of times each came, in
// ms.
func appendSpread(spread []float64, times []time.Time) []float64 {
	if len(times) == 0 {
		return spread
	}
	first := slices.MinFunc(times, time.Time.Compare)
	for _, t := range times {
		spread = append(spread, float64(t.Sub(first).Microseconds())/1000)
	}
	return spread
}

// scrape reads one counter of a node's /metrics.
func scrape(ctx context.Context, hc *http.Client, n *localcluster.Node, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTP+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench: metrics of %s: %w", n.ID, err)
	}
	defer resp.Body.Close()
	values, err := promtext.Values(resp.Body, name)
	if err != nil {
		return 0, fmt.Errorf("bench: metrics of %s: %w", n.ID, err)
	}
	v, ok := values[name]
	if !ok {
		return 0, fmt.Errorf("bench: %s has no %s", n.ID, name)
	}
	return v, nil
}

// eachNode runs f for every node, a few at a time.
func eachNode(nodes []*localcluster.Node, f func(i int, n *localcluster.Node) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	sem := make(chan struct{}, 8)
	for i, n := range nodes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f(i, n)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// awaitAllUp waits until every node's directory lists want nodes up.
func awaitAllUp(ctx context.Context, nodes []*localcluster.Node, want int, timeout time.Duration) error {
	return localcluster.Await(ctx, timeout, func(ctx context.Context) error {
		return eachNode(nodes, func(_ int, n *localcluster.Node) error {
			d, err := n.Directory(ctx)
			if err != nil {
				return err
			}
			up := 0
			for _, e := range d.Nodes {
				if e.Status == directory.Up {
					up++
				}
			}
			if up < want {
				return fmt.Errorf("%s lists %d nodes up, want %d", n.ID, up, want)
			}
			return nil
		})
	})
}

func percentilesOf(v []float64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return Percentiles{P50: stats.Quantile(s, 0.5), P99: stats.Quantile(s, 0.99), Max: s[len(s)-1]}
}

func loadavg() [3]float64 {
	var l [3]float64
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(data))
	for i := range min(3, len(f)) {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

func runScale(ctx context.Context, e *env) (Report, error) {
	perRegion := 3
	if len(e.cfg.Regions) > 1 {
		perRegion = 2 // per region: a supercluster of two clusters of two
	}
	regions := e.cfg.Regions
	if len(regions) == 1 {
		regions = nil
	}
	natsServers := perRegion * max(1, len(regions))
	rep := &ScaleReport{Scenario: "scale", Nodes: e.cfg.Nodes, Clients: e.cfg.Clients, NATS: natsServers, ClientPingMS: ms(e.cfg.ClientPing), SettleMS: ms(e.cfg.Settle), SerialJoins: e.cfg.SerialJoins, BusWatch: !e.cfg.NoBusWatch, Regions: regions}
	e.logf("[scale] starting %d nats-server processes with JetStream", natsServers)
	ns, err := e.startScaleNATS(ctx, regions, perRegion)
	if err != nil {
		return nil, err
	}
	defer ns.stop()
	e.logf("[scale] starting %d nodes on --bus %s", e.cfg.Nodes, strings.Join(ns.urls, ","))
	joins := max(1, e.cfg.Nodes/5)
	// The nodes start scaleBatch at a time, each batch up on the first
	// node before the next starts: a hundred processes setting up their
	// JetStream streams at once overwhelm two cores. Node i is in region
	// i mod len(regions), on that region's servers.
	const scaleBatch = 10
	region := func(i int) int { return i % len(ns.regions) }
	var groups []string
	if len(regions) > 0 {
		groups = regions
	}
	plog := newPeerLog(e.cfg.Logs)
	lc, err := localcluster.Start(ctx, localcluster.Config{
		Binary: e.cfg.Binary, Nodes: min(scaleBatch, e.cfg.Nodes), Heartbeat: e.cfg.Heartbeat, NoWait: true,
		Capacity: max(10000, 2*e.cfg.Clients), OutputFor: func(int) io.Writer { return plog.node() }, Args: e.cfg.NodeArgs, Env: e.cfg.NodeEnv,
		Bus: strings.Join(ns.regionURLs[0], ","), Groups: groups,
		ArgsFor: func(i int) []string {
			var args []string
			if len(regions) > 0 {
				args = append(args, "--bus", strings.Join(ns.regionURLs[region(i)], ","))
			}
			if !e.cfg.NoBusWatch {
				args = append(args, "--bus-system", strings.Join(ns.systemURLs[region(i)], ","))
			}
			return args
		},
	})
	if err != nil {
		return nil, err
	}
	defer lc.Stop()
	for {
		if err := awaitAllUp(ctx, lc.Nodes[:1], len(lc.Nodes), 3*time.Minute); err != nil {
			return nil, fmt.Errorf("bench: %d nodes did not come up: %w", len(lc.Nodes), err)
		}
		if len(lc.Nodes) == e.cfg.Nodes {
			break
		}
		e.logf("[scale] %d up", len(lc.Nodes))
		for range min(scaleBatch, e.cfg.Nodes-len(lc.Nodes)) {
			if _, err := lc.Launch(); err != nil {
				return nil, err
			}
		}
	}
	if err := awaitAllUp(ctx, lc.Nodes, e.cfg.Nodes, 3*time.Minute); err != nil {
		return nil, fmt.Errorf("bench: the nodes did not all come up: %w", err)
	}
	if len(regions) > 0 {
		if err := e.checkRegions(ctx, rep, lc); err != nil {
			return nil, err
		}
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()

	// Idle: CPU and updates received per node.
	e.logf("[scale] all %d up; idle for %v", e.cfg.Nodes, e.cfg.Duration)
	idle := e.cfg.Duration
	cpu0, recv0 := make([]time.Duration, len(lc.Nodes)), make([]float64, len(lc.Nodes))
	read := func(cpu []time.Duration, recv []float64) error {
		return eachNode(lc.Nodes, func(i int, n *localcluster.Node) error {
			var err error
			if cpu[i], err = n.CPU(); err != nil {
				return err
			}
			recv[i], err = scrape(ctx, hc, n, "switchboard_directory_updates_received_total")
			return err
		})
	}
	if err := read(cpu0, recv0); err != nil {
		return nil, err
	}
	start := time.Now()
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cpu1, recv1 := make([]time.Duration, len(lc.Nodes)), make([]float64, len(lc.Nodes))
	if err := read(cpu1, recv1); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	rep.IdleSeconds = elapsed.Seconds()
	var cpus, rates, rss []float64
	for i := range lc.Nodes {
		cpus = append(cpus, 100*float64(cpu1[i]-cpu0[i])/float64(elapsed))
		rates = append(rates, (recv1[i]-recv0[i])/elapsed.Seconds())
	}
	rssOf := func() ([]float64, error) {
		var out []float64
		for _, n := range lc.Nodes {
			if !n.Alive() {
				continue
			}
			b, err := n.RSS()
			if err != nil {
				return nil, err
			}
			out = append(out, float64(b)/(1<<20))
		}
		return out, nil
	}
	if rss, err = rssOf(); err != nil {
		return nil, err
	}
	rep.CPUPercent, rep.RecvPerSec, rep.RSSMiB = percentilesOf(cpus), percentilesOf(rates), percentilesOf(rss)
	e.logf("[scale] idle: CPU per node p50 %.2f%% p99 %.2f%%, %.0f updates/s, RSS p50 %.0f MiB", rep.CPUPercent.P50, rep.CPUPercent.P99, rep.RecvPerSec.P50, rep.RSSMiB.P50)

	// Hello bytes.
	for _, max := range []int{client.ViewSize, 0} {
		conn, err := client.DialConn(ctx, nil, lc.Nodes[0].Addr)
		if err != nil {
			return nil, err
		}
		d, err := conn.HelloView(ctx, "switchboard-bench/scale", "", max)
		conn.Close()
		if err != nil {
			return nil, err
		}
		line, err := wire.Encode(wire.DirectoryMessage(d))
		if err != nil {
			return nil, err
		}
		if max > 0 {
			rep.HelloBytes, rep.HelloNodes = len(line), len(d.Nodes)
		} else {
			rep.HelloBytesV1, rep.HelloNodesV1 = len(line), len(d.Nodes)
		}
	}

	// Observers: one session on every node, to see its pushes.
	observers := make([]*observer, len(lc.Nodes))
	if err := eachNode(lc.Nodes, func(i int, n *localcluster.Node) error {
		var err error
		observers[i], err = e.observe(ctx, n)
		return err
	}); err != nil {
		return nil, err
	}
	defer func() {
		for _, o := range observers {
			if o != nil {
				o.conn.Close()
			}
		}
	}()

	// Storm.
	run, err := e.open(ctx, &cluster{target: strings.Join(lc.Addrs(), ","), http: hc}, "default", e.cfg.Clients, "u")
	if err != nil {
		return nil, err
	}
	defer run.Close()
	res := run.Snapshot()
	rep.StormMaxMean, rep.StormElapsedMS, rep.StormConnectMS, rep.StormFailed = res.MaxMean, res.ElapsedMS, res.ConnectMS, res.Failed
	if rss, err = rssOf(); err != nil {
		return nil, err
	}
	rep.RSSAfterMiB = percentilesOf(rss)
	e.logf("[scale] storm: %d attached in %.0f ms, max/mean %.3f", res.Attached, res.ElapsedMS, res.MaxMean)

	if e.cfg.Settle > 0 {
		e.logf("[scale] settling for %v before the kill", e.cfg.Settle)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(e.cfg.Settle):
		}
	}
	// Kill: the last Kills nodes, at once (never the first, whose
	// address the bench's observers and hellos use).
	kills := min(e.cfg.Kills, e.cfg.Nodes/3)
	victims := make([]int, 0, kills)
	for i := e.cfg.Nodes - 1; len(victims) < kills; i-- {
		victims = append(victims, i)
	}
	// What the victims hold now, not after the storm: on a loaded machine
	// a session may have moved since.
	now := run.Snapshot()
	for _, i := range victims {
		rep.Killed = append(rep.Killed, lc.Nodes[i].ID)
		rep.Held += now.PerNode[lc.Nodes[i].ID]
	}
	e.logf("[scale] kill -9 %s (%d sessions)", strings.Join(rep.Killed, " "), rep.Held)
	killed := time.Now()
	_ = lc.KillAll(victims)
	e.logf("[scale] the kills took %v", time.Since(killed).Round(time.Millisecond))
	delays, pending := awaitReattach(ctx, rep.Held, 60*time.Second, func() ([]time.Duration, int) { return run.ReattachDelays(killed) })
	if first, last, ok := run.DropSpan(killed); ok {
		e.logf("[scale] the sessions saw their drops %v to %v after the kill", first.Round(time.Millisecond), last.Round(time.Millisecond))
	}
	rep.Reattach = SummarizeReattach(delays, pending)
	var live []*observer
	for i, o := range observers {
		if !slices.Contains(victims, i) {
			live = append(live, o)
		}
	}
	downAll := func() (ms []float64, missing int) {
		for _, o := range live {
			for _, id := range rep.Killed {
				t, ok := o.first(id, directory.Down)
				if !ok || t.Before(killed) {
					missing++
					continue
				}
				ms = append(ms, float64(t.Sub(killed).Microseconds())/1000)
			}
		}
		return ms, missing
	}
	var liveNodes []*localcluster.Node
	for i, n := range lc.Nodes {
		if !slices.Contains(victims, i) {
			liveNodes = append(liveNodes, n)
		}
	}
	nodeDownAll := func() (ms, spread, first []float64, missing int) {
		for _, id := range rep.Killed {
			var times []time.Time
			for _, n := range liveNodes {
				t, ok := plog.first(n.ID, id, directory.Down, killed)
				if !ok {
					missing++
					continue
				}
				ms = append(ms, float64(t.Sub(killed).Microseconds())/1000)
				times = append(times, t)
			}
			spread = appendSpread(spread, times)
			if len(times) > 0 {
				first = append(first, float64(slices.MinFunc(times, time.Time.Compare).Sub(killed).Microseconds())/1000)
			}
		}
		return ms, spread, first, missing
	}
	_ = localcluster.Await(ctx, 30*time.Second, func(context.Context) error {
		_, missing := downAll()
		_, _, _, nodeMissing := nodeDownAll()
		if missing+nodeMissing > 0 {
			return fmt.Errorf("%d (observer, killed) and %d (node, killed) pairs not down yet", missing, nodeMissing)
		}
		return nil
	})
	down, missing := downAll()
	rep.DownMS, rep.DownMissing = percentilesOf(down), missing
	nodeDown, nodeDownSpread, nodeDownFirst, nodeMissing := nodeDownAll()
	rep.NodeDownMS, rep.NodeDownSpreadMS, rep.NodeDownMissing = percentilesOf(nodeDown), percentilesOf(nodeDownSpread), nodeMissing
	rep.NodeDownFirstMS = percentilesOf(nodeDownFirst)
	// A node too busy to answer within the client's timeout is left out
	// of the count (and said so), not the end of the run.
	disconnects := make([]float64, len(liveNodes))
	_ = eachNode(liveNodes, func(i int, n *localcluster.Node) error {
		var err error
		if disconnects[i], err = scrape(ctx, hc, n, "switchboard_directory_disconnects_total"); err != nil {
			e.logf("[scale] %v", err)
		}
		return nil
	})
	for _, d := range disconnects {
		rep.Disconnects += int(d)
	}
	after := run.Snapshot()
	rep.AfterMaxMean = MaxMeanOf(after.PerNode, func(id string) bool { return !slices.Contains(rep.Killed, id) })
	e.logf("[scale] down everywhere p99 %.0f ms; reattach p99 %.0f ms", rep.DownMS.P99, rep.Reattach.MS.P99)

	// Join.
	rep.Joined = joins
	var joined []*localcluster.Node
	for range joins {
		n, err := lc.Launch()
		if err != nil {
			return nil, err
		}
		joined = append(joined, n)
		if !e.cfg.SerialJoins {
			continue
		}
		err = localcluster.Await(ctx, time.Minute, func(context.Context) error {
			missing := 0
			for _, o := range liveNodes {
				if _, ok := plog.first(o.ID, n.ID, directory.Up, n.Started); !ok {
					missing++
				}
			}
			if missing > 0 {
				return fmt.Errorf("%s not up on %d nodes yet", n.ID, missing)
			}
			return nil
		})
		if err != nil {
			e.logf("[scale] %v; starting the next joiner", err)
		}
	}
	joinAll := func() (spread, fromStart []float64, missing int) {
		for _, n := range joined {
			var times []time.Time
			for _, o := range live {
				t, ok := o.first(n.ID, directory.Up)
				if !ok {
					missing++
					continue
				}
				times = append(times, t)
			}
			if len(times) == 0 {
				continue
			}
			spread = appendSpread(spread, times)
			last := slices.MaxFunc(times, time.Time.Compare)
			fromStart = append(fromStart, float64(last.Sub(n.Started).Microseconds())/1000)
		}
		return spread, fromStart, missing
	}
	// The nodes' own view: when each live node's log said each joiner
	// was up, after the first did.
	nodeJoinAll := func() (spread []float64, missing int) {
		for _, j := range joined {
			var times []time.Time
			for _, n := range liveNodes {
				t, ok := plog.first(n.ID, j.ID, directory.Up, j.Started)
				if !ok {
					missing++
					continue
				}
				times = append(times, t)
			}
			spread = appendSpread(spread, times)
		}
		return spread, missing
	}
	_ = localcluster.Await(ctx, 2*time.Minute, func(context.Context) error {
		_, _, missing := joinAll()
		_, nodeMissing := nodeJoinAll()
		if missing+nodeMissing > 0 {
			return fmt.Errorf("%d (observer, joined) and %d (node, joined) pairs not up yet", missing, nodeMissing)
		}
		return nil
	})
	spread, fromStart, jmissing := joinAll()
	rep.JoinMS, rep.JoinStartMS, rep.JoinMissing = percentilesOf(spread), percentilesOf(fromStart), jmissing
	nodeSpread, nodeJMissing := nodeJoinAll()
	rep.NodeJoinMS, rep.NodeJoinMissing = percentilesOf(nodeSpread), nodeJMissing
	rep.Load = loadavg()
	e.logf("[scale] join spread p99 %.0f ms (nodes' logs: %.0f ms)", rep.JoinMS.P99, rep.NodeJoinMS.P99)

	rep.Targets = []Target{
		{What: fmt.Sprintf("storm of %d over %d nodes: max/mean", e.cfg.Clients, e.cfg.Nodes), Want: "<= 1.10", Got: f3(rep.StormMaxMean), Met: rep.StormMaxMean <= 1.10},
		{What: "a killed node down on every peer (nodes' logs): p99", Want: "<= 1000 ms", Got: fmt.Sprintf("%.0f ms", rep.NodeDownMS.P99), Met: rep.NodeDownMissing == 0 && rep.NodeDownMS.P99 <= 1000},
		{What: "a joined node up on every peer after the first (nodes' logs): p99", Want: "<= 100 ms", Got: fmt.Sprintf("%.0f ms", rep.NodeJoinMS.P99), Met: rep.NodeJoinMissing == 0 && rep.NodeJoinMS.P99 <= 100},
		{What: "an idle node's CPU: p50 of the nodes", Want: "<= 1% of a core", Got: fmt.Sprintf("%.2f%%", rep.CPUPercent.P50), Met: rep.CPUPercent.P50 <= 1},
		{What: "hello asking for a view", Want: "<= 16 KiB", Got: fmt.Sprintf("%d bytes", rep.HelloBytes), Met: rep.HelloBytes <= 16<<10},
	}
	if len(regions) > 0 {
		landed := 0
		for _, c := range rep.CrossAttach {
			if c.LandedGroup == c.Want {
				landed++
			}
		}
		rep.Targets = append(rep.Targets,
			Target{What: "a session dialled through another region lands in its own", Want: fmt.Sprintf("%d of %d", len(rep.CrossAttach), len(rep.CrossAttach)), Got: fmt.Sprintf("%d of %d", landed, len(rep.CrossAttach)), Met: landed == len(rep.CrossAttach)},
			Target{What: "a room across regions carries text", Want: "delivered", Got: fmt.Sprint(rep.RoomAcross != nil && rep.RoomAcross.Delivered), Met: rep.RoomAcross != nil && rep.RoomAcross.Delivered})
	}
	return rep, nil
}

// WriteTable prints the scale figures and the targets.
func (r *ScaleReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "scale: %d nodes on --bus (%d nats-server processes with JetStream), storm of %d, kill %d, %d join; load average %.2f %.2f %.2f\n\n",
		r.Nodes, r.NATS, r.Clients, len(r.Killed), r.Joined, r.Load[0], r.Load[1], r.Load[2])
	if r.SettleMS > 0 {
		fmt.Fprintf(w, "the kill came %.0f ms after the storm (--settle), not at once\n\n", r.SettleMS)
	}
	if r.SerialJoins {
		fmt.Fprintf(w, "the joiners started one at a time, each once the one before was up on every node (--serial-joins)\n\n")
	}
	if r.ClientPingMS > 0 {
		fmt.Fprintf(w, "the sessions ping after %.0f ms of silence (--client-ping), not the client's default\n\n", r.ClientPingMS)
	}
	if len(r.Regions) > 0 {
		fmt.Fprintf(w, "supercluster: regions %s, one NATS cluster each, joined by gateways; node i in region i mod %d\n\n", strings.Join(r.Regions, ","), len(r.Regions))
	}
	p := func(x Percentiles, format string) []string {
		return []string{fmt.Sprintf(format, x.P50), fmt.Sprintf(format, x.P99), fmt.Sprintf(format, x.Max)}
	}
	rows := [][]string{
		append([]string{fmt.Sprintf("idle CPU per node, %% of a core (%.0f s)", r.IdleSeconds)}, p(r.CPUPercent, "%.2f")...),
		append([]string{"idle directory updates received per node, /s"}, p(r.RecvPerSec, "%.0f")...),
		append([]string{"RSS per node idle, MiB"}, p(r.RSSMiB, "%.1f")...),
		append([]string{"RSS per node after the storm, MiB"}, p(r.RSSAfterMiB, "%.1f")...),
		append([]string{"storm connect, ms"}, p(r.StormConnectMS, "%.1f")...),
		append([]string{fmt.Sprintf("reattach after the kill, ms (%d held, %d pending)", r.Held, r.Reattach.Pending)}, p(r.Reattach.MS, "%.0f")...),
		append([]string{fmt.Sprintf("killed down on every node, by its log, ms from the kill (%d missing)", r.NodeDownMissing)}, p(r.NodeDownMS, "%.0f")...),
		append([]string{"killed down on the first node, by its log, ms from the kill"}, p(r.NodeDownFirstMS, "%.0f")...),
		append([]string{"killed down on every node, by its log, ms after the first node"}, p(r.NodeDownSpreadMS, "%.0f")...),
		append([]string{fmt.Sprintf("killed shown down to an observer on every node, ms from the kill (%d missing)", r.DownMissing)}, p(r.DownMS, "%.0f")...),
		append([]string{fmt.Sprintf("joined up on every node, by its log, ms after the first (%d missing)", r.NodeJoinMissing)}, p(r.NodeJoinMS, "%.0f")...),
		append([]string{fmt.Sprintf("joined shown up to an observer everywhere, ms after the first node (%d missing)", r.JoinMissing)}, p(r.JoinMS, "%.0f")...),
		append([]string{"joined shown up everywhere, ms from its process start"}, p(r.JoinStartMS, "%.0f")...),
	}
	table(w, []string{"figure", "p50", "p99", "max"}, rows)
	fmt.Fprintf(w, "\nstorm: max/mean %.3f, all attached in %.0f ms, %d failed; after the kill max/mean %.3f over the live nodes\n",
		r.StormMaxMean, r.StormElapsedMS, r.StormFailed, r.AfterMaxMean)
	fmt.Fprintf(w, "hello: %d bytes asking for %d nodes, %d bytes asking for no bound (a v1 client)\n", r.HelloBytes, client.ViewSize, r.HelloBytesV1)
	if r.BusWatch {
		fmt.Fprintf(w, "bus watch (serve --bus-system): %d of %d (live node, killed node) pairs learned the death from a disconnect event\n", r.Disconnects, len(r.Killed)*(r.Nodes-len(r.Killed)))
	} else {
		fmt.Fprintf(w, "bus watch: off (peers found dead by their heartbeats alone)\n")
	}
	if len(r.Regions) > 0 {
		fmt.Fprintf(w, "regions %s: %d (node, node of another region) pairs listed up\n", strings.Join(r.Regions, ","), r.CrossListed)
		for _, c := range r.CrossAttach {
			fmt.Fprintf(w, "  a session of group %s dialled at %s attached to %s (%s)\n", c.Want, c.Via, c.Landed, c.LandedGroup)
		}
		if ra := r.RoomAcross; ra != nil {
			if ra.Delivered {
				fmt.Fprintf(w, "  a room across regions: text from %s reached %s in %.1f ms\n", ra.From, ra.To, ra.MS)
			} else {
				fmt.Fprintf(w, "  a room across regions: %s to %s failed: %s\n", ra.From, ra.To, ra.Err)
			}
		}
	}
	writeTargets(w, r.Targets)
}

// Charts: the scale scenario draws none.
func (r *ScaleReport) Charts() []Chart { return nil }
