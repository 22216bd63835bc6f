// Package localcluster runs a Switchboard cluster as child processes of
// the `switchboard` binary, node i on 127.0.0.(i+1) with the same ports on
// every node, as an operator would run them on separate hosts. Tests and
// `switchboard bench` use it to start, hurt (kill -9) and grow clusters.
//
// Start blocks until every node lists every node as up (and the rooms are
// fully replicated); Stop ends them.
// A Cluster is not safe for concurrent use.
package localcluster

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/bus"
	"github.com/switchboard/switchboard/internal/pki"
	"github.com/switchboard/switchboard/wire"
)

// Config describes the cluster to start.
type Config struct {
	// Binary is the switchboard executable.
	Binary string
	// Service is the service name (default "bench.local").
	Service string
	// Nodes is how many nodes to start (1..250).
	Nodes int
	// Port is the client port of every node; HTTP is Port+1, the cluster
	// routes Port+2 and DNS Port+3. Zero picks a port free on every IP.
	Port int
	// Capacity of each node (default 10,000).
	Capacity int
	// Heartbeat of each node (default: the binary's).
	Heartbeat time.Duration
	// DNS starts each node's DNS responder.
	DNS bool
	// Args are more flags for every node.
	Args []string
	// Env are more environment variables (KEY=VALUE) for every node,
	// after the parent's: GOMAXPROCS=1, say, for nodes that stand for
	// machines of one core each.
	Env []string
	// ArgsFor, when set, gives more flags for node i, after Args: a flag
	// given again there wins (serve takes a flag's last value), so that a
	// node can get a --bus of its own region.
	ArgsFor func(i int) []string
	// DataDir holds each node's stored state (default: a temp dir).
	DataDir string
	// Output receives the nodes' logs (default: discarded).
	Output io.Writer
	// OutputFor, when set, gives node i's logs a writer of its own
	// instead of Output, so that the reader can cut them into lines: a
	// pipe's reader may get part of a line when the pipe holds more
	// than it reads at once.
	OutputFor func(i int) io.Writer
	// TLS serves every node's client listener with TLS: Start makes a
	// throwaway CA (internal/pki) in the data directory and gives each
	// node a certificate naming the service and the node's IP. Clients
	// trust Cluster.CAPool and verify the name Cluster.Service.
	TLS bool
	// Standalone starts a single node without cluster routes: its
	// JetStream runs alone and its rooms are ready at once. A node given
	// a cluster address waits for peers before JetStream (and so the
	// node) is up. Only with Nodes 1; Add cannot join such a node.
	Standalone bool
	// NoWait makes Start return once every process is launched, without
	// waiting for the nodes to be up (WaitConverged does that).
	NoWait bool
	// Groups are the nodes' groups (serve --group): node i, added later
	// too, gets Groups[i mod len(Groups)]. None: no group.
	Groups []string
	// Bus is an external NATS for every node (serve --bus: nats:// URLs,
	// comma-separated): the nodes then embed no NATS and have no routes.
	Bus string
	// Seeds, when above 0, gives every node a --join naming the cluster
	// addresses of the first Seeds nodes other than itself, as
	// docs/operations.md advises operators to start a cluster: a node
	// then knows from its configuration that the cluster has at least
	// Seeds nodes. Seeds may pass Nodes, for nodes that Add starts later
	// (at most Nodes+4). Zero: every node after the first joins the
	// first alone.
	Seeds int
	// ServeLimits leaves serve's connection limits (--max-conns,
	// --max-conns-per-ip) at their defaults, which follow the node's
	// descriptor limit. Without it they are lifted above Capacity, since
	// every client of a local cluster comes from this host.
	ServeLimits bool
	// Net, when set, runs node i in Net's namespace NS(i) at Net.IP(i)
	// (Port defaults to 7070 there), so that a test can partition it
	// (Net.Cut). The cluster does not close it.
	Net *Net
}

// Node is one child process.
type Node struct {
	ID      string
	IP      string
	Group   string // serve --group, "" for none
	Addr    string // client address
	HTTP    string
	Cluster string
	DNS     string
	// Started is when the node's process was last launched: taken just
	// before it was started, so anything it did comes after.
	Started time.Time
	cmd     *exec.Cmd
	exited  chan struct{}
	secret  string // the cluster secret, for NATSURL
	// dial connects from where the node runs (its namespace, on a Net);
	// nil: from this process.
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	binary string // the executable it runs, when not Config.Binary
}

// Cluster is a running set of nodes.
type Cluster struct {
	cfg   Config
	Nodes []*Node
	tmp   string
	// secret is the cluster secret every node reads from secretFile.
	secret, secretFile string
	// ca issues the nodes' certificates when cfg.TLS is set.
	ca *pki.CA
}

// Start starts cfg.Nodes nodes and waits until each lists all as up and,
// for an embedded cluster, until the rooms' streams have min(3, nodes)
// copies.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Binary == "" {
		return nil, errors.New("localcluster: no binary")
	}
	if cfg.Nodes < 1 || cfg.Nodes > 250 {
		return nil, fmt.Errorf("localcluster: %d nodes, want 1..250", cfg.Nodes)
	}
	if cfg.Seeds < 0 || cfg.Seeds > cfg.Nodes+4 {
		return nil, fmt.Errorf("localcluster: %d seeds for %d nodes, want 0..nodes+4", cfg.Seeds, cfg.Nodes)
	}
	if cfg.Standalone && cfg.Nodes != 1 {
		return nil, fmt.Errorf("localcluster: a standalone cluster has one node, not %d", cfg.Nodes)
	}
	if cfg.Service == "" {
		cfg.Service = "bench.local"
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = 10000
	}
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	c := &Cluster{cfg: cfg}
	if cfg.DataDir == "" {
		tmp, err := os.MkdirTemp("", "switchboard-cluster-")
		if err != nil {
			return nil, fmt.Errorf("localcluster: %w", err)
		}
		c.tmp = tmp
		c.cfg.DataDir = tmp
	}
	if err := c.writeSecret(); err != nil {
		c.Stop()
		return nil, err
	}
	if cfg.TLS {
		ca, _, err := pki.NewCA(cfg.Service, time.Now())
		if err != nil {
			c.Stop()
			return nil, fmt.Errorf("localcluster: %w", err)
		}
		c.ca = ca
	}
	if cfg.Net != nil {
		if cfg.Nodes > cfg.Net.nodes {
			c.Stop()
			return nil, fmt.Errorf("localcluster: %d nodes on a net made for %d", cfg.Nodes, cfg.Net.nodes)
		}
		if c.cfg.Port == 0 {
			c.cfg.Port = 7070 // the namespaces are the cluster's own
		}
	}
	if c.cfg.Port == 0 {
		ips := make([]string, 0, cfg.Nodes+4)
		for i := range cfg.Nodes + 4 { // room to add a few nodes later
			ips = append(ips, ip(i))
		}
		port, err := FreePort(ips, 4)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.cfg.Port = port
	}
	for range cfg.Nodes {
		if _, err := c.start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if cfg.NoWait {
		return c, nil
	}
	if err := c.WaitConverged(ctx, 60*time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	if want := c.fullReplicas(); want > 1 {
		if err := c.WaitReplicas(ctx, want, 60*time.Second); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// writeSecret draws the cluster's secret and writes it, readable by this
// user only, where every node reads it.
func (c *Cluster) writeSecret() error {
	b := make([]byte, 24)
	if _, err := crand.Read(b); err != nil {
		return fmt.Errorf("localcluster: drawing a cluster secret: %w", err)
	}
	c.secret = hex.EncodeToString(b)
	if err := os.MkdirAll(c.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("localcluster: %w", err)
	}
	c.secretFile = filepath.Join(c.cfg.DataDir, "cluster.secret")
	if err := os.WriteFile(c.secretFile, []byte(c.secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("localcluster: writing the cluster secret: %w", err)
	}
	return nil
}

func ip(i int) string { return "127.0.0." + strconv.Itoa(i+1) }

// Port is the client port shared by every node.
func (c *Cluster) Port() int { return c.cfg.Port }

// Service is the service name.
func (c *Cluster) Service() string { return c.cfg.Service }

// Addrs lists the nodes' client addresses, in order.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// start launches one more node, joined to the first or to the seeds
// (Config.Seeds).
func (c *Cluster) start() (*Node, error) {
	i := len(c.Nodes)
	nodeIP := ip(i)
	if c.cfg.Net != nil {
		if i >= c.cfg.Net.nodes {
			return nil, fmt.Errorf("localcluster: no room for node %d on the net", i+1)
		}
		nodeIP = c.cfg.Net.IP(i)
	}
	at := func(p int) string { return net.JoinHostPort(nodeIP, strconv.Itoa(p)) }
	n := &Node{ID: "n" + strconv.Itoa(i+1), IP: nodeIP, Addr: at(c.cfg.Port), HTTP: at(c.cfg.Port + 1), Cluster: at(c.cfg.Port + 2), secret: c.secret}
	if len(c.cfg.Groups) > 0 {
		n.Group = c.cfg.Groups[i%len(c.cfg.Groups)]
	}
	if nw := c.cfg.Net; nw != nil {
		n.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nw.DialContext(ctx, i, network, addr)
		}
	}
	if c.cfg.Standalone || c.cfg.Bus != "" {
		n.Cluster = ""
	}
	if c.cfg.DNS {
		n.DNS = at(c.cfg.Port + 3)
	}
	if c.ca != nil {
		if err := c.issue(n); err != nil {
			return nil, err
		}
	}
	if err := c.launch(i, n); err != nil {
		return nil, err
	}
	c.Nodes = append(c.Nodes, n)
	return n, nil
}

// Restart launches node i again, with the same ID, addresses and data, after
// it exited (Kill, Terminate).
func (c *Cluster) Restart(i int) error {
	n := c.Nodes[i]
	if n.Alive() {
		return fmt.Errorf("localcluster: restarting %s: it is still running", n.ID)
	}
	return c.launch(i, n)
}

// RestartWith is Restart on another executable: node i runs binary from
// now on (a rolling upgrade).
func (c *Cluster) RestartWith(i int, binary string) error {
	n := c.Nodes[i]
	if n.Alive() {
		return fmt.Errorf("localcluster: restarting %s: it is still running", n.ID)
	}
	n.binary = binary
	return c.launch(i, n)
}

// launch starts node n, the i-th, as a process.
func (c *Cluster) launch(i int, n *Node) error {
	args := []string{"serve",
		"--service", c.cfg.Service, "--id", n.ID,
		"--listen", n.Addr, "--http", n.HTTP,
		"--capacity", strconv.Itoa(c.cfg.Capacity),
		"--data", fmt.Sprintf("%s/%s", c.cfg.DataDir, n.ID),
		"--cluster-secret-file", c.secretFile,
	}
	if !c.cfg.ServeLimits {
		// Every client of a local cluster comes from this host: the
		// connection limits may not stand between them and Capacity.
		args = append(args,
			"--max-conns-per-ip", strconv.Itoa(c.cfg.Capacity+100),
			"--max-conns", strconv.Itoa(c.cfg.Capacity+100))
	}
	if n.Cluster != "" {
		args = append(args, "--cluster", n.Cluster)
	}
	switch {
	case n.Cluster == "":
	case c.cfg.Seeds > 0:
		args = append(args, "--join", strings.Join(c.seeds(i), ","))
	case i > 0:
		args = append(args, "--join", c.Nodes[0].Cluster)
	}
	if c.cfg.Bus != "" {
		args = append(args, "--bus", c.cfg.Bus)
	}
	if c.cfg.Heartbeat > 0 {
		args = append(args, "--heartbeat", c.cfg.Heartbeat.String())
	}
	if n.Group != "" {
		args = append(args, "--group", n.Group)
	}
	if n.DNS != "" {
		args = append(args, "--dns", n.DNS)
	}
	if c.ca != nil {
		args = append(args, c.tlsArgs(n)...)
	}
	args = append(args, c.cfg.Args...)
	if c.cfg.ArgsFor != nil {
		args = append(args, c.cfg.ArgsFor(i)...)
	}
	binary := c.cfg.Binary
	if n.binary != "" {
		binary = n.binary
	}
	argv := append([]string{binary}, args...)
	if c.cfg.Net != nil {
		argv = c.cfg.Net.Command(i, argv...) // ip netns exec: the same process, in the namespace
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = c.cfg.Output
	if c.cfg.OutputFor != nil {
		cmd.Stdout = c.cfg.OutputFor(i)
	}
	cmd.Stderr = cmd.Stdout
	cmd.Env = append(cleanEnv(), c.cfg.Env...)
	// Taken before the fork: on a loaded machine Start may return after
	// the new process has already logged, even come up.
	launched := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localcluster: starting %s: %w", n.ID, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited, n.Started = cmd, exited, launched
	go func() { _ = cmd.Wait(); close(exited) }()
	return nil
}

// seeds lists the cluster addresses of the first Seeds nodes but node
// self, with the addresses start gives them (Config.Seeds).
func (c *Cluster) seeds(self int) []string {
	var out []string
	for i := range c.cfg.Seeds {
		if i == self {
			continue
		}
		host := ip(i)
		if c.cfg.Net != nil {
			host = c.cfg.Net.IP(i)
		}
		out = append(out, net.JoinHostPort(host, strconv.Itoa(c.cfg.Port+2)))
	}
	return out
}

// issue writes node n's certificate and key, signed by the cluster's CA,
// into the data directory (certFiles).
func (c *Cluster) issue(n *Node) error {
	chain, key, err := c.ca.Issue(pki.Request{Service: c.cfg.Service, Hosts: []string{n.IP}}, time.Now())
	if err != nil {
		return fmt.Errorf("localcluster: certificate for %s: %w", n.ID, err)
	}
	certFile, keyFile := c.certFiles(n)
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		return fmt.Errorf("localcluster: %w", err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return fmt.Errorf("localcluster: %w", err)
	}
	return nil
}

// certFiles are where issue writes node n's certificate and key.
func (c *Cluster) certFiles(n *Node) (cert, key string) {
	return filepath.Join(c.cfg.DataDir, n.ID+".pem"), filepath.Join(c.cfg.DataDir, n.ID+".key")
}

// tlsArgs are the serve flags that use node n's certificate and key.
func (c *Cluster) tlsArgs(n *Node) []string {
	cert, key := c.certFiles(n)
	return []string{"--tls-cert", cert, "--tls-key", key}
}

// CAPool returns a pool holding the CA that signed the nodes'
// certificates, for a client's tls.Config.RootCAs; nil without
// Config.TLS.
func (c *Cluster) CAPool() *x509.CertPool {
	if c.ca == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.ca.Cert)
	return pool
}

// cleanEnv drops SWITCHBOARD_* variables so that the parent's settings do
// not leak into the nodes.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if len(kv) >= 12 && kv[:12] == "SWITCHBOARD_" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Add starts one more node and waits until every live node lists it up.
func (c *Cluster) Add(ctx context.Context) (*Node, error) {
	n, err := c.start()
	if err != nil {
		return nil, err
	}
	return n, c.WaitConverged(ctx, 60*time.Second)
}

// Kill sends SIGKILL to node i (kill -9) and waits for it to exit.
func (c *Cluster) Kill(i int) error {
	n := c.Nodes[i]
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("localcluster: killing %s: %w", n.ID, err)
	}
	<-n.exited
	return nil
}

// KillAll sends SIGKILL to each node of idx before it waits for any to
// exit: on a loaded machine a killed process may wait seconds for its
// turn to die, and killing one at a time would spread the deaths over
// all those waits.
func (c *Cluster) KillAll(idx []int) error {
	var errs []error
	for _, i := range idx {
		n := c.Nodes[i]
		if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("localcluster: killing %s: %w", n.ID, err))
		}
	}
	for _, i := range idx {
		<-c.Nodes[i].exited
	}
	return errors.Join(errs...)
}

// Alive reports whether node i's process is running.
func (n *Node) Alive() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// ExitCode is the exit status of node n's process once it has exited:
// -1 while it runs, or when a signal ended it.
func (n *Node) ExitCode() int {
	if n.Alive() {
		return -1
	}
	return n.cmd.ProcessState.ExitCode()
}

// Stop ends every node (SIGTERM, then SIGKILL after 5 s) and removes the
// temporary data.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		if n.Alive() {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range c.Nodes {
		select {
		case <-n.exited:
		case <-time.After(5 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
	if c.tmp != "" {
		_ = os.RemoveAll(c.tmp)
	}
}

// Directory asks node n's HTTP API for its directory.
func (n *Node) Directory(ctx context.Context) (*wire.Directory, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTP+"/v1/directory", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("localcluster: asking %s: %w", n.ID, err)
	}
	defer resp.Body.Close()
	var m wire.Message
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || m.Op != wire.OpDirectory {
		return nil, fmt.Errorf("localcluster: reading %s's directory: %v", n.ID, err)
	}
	return m.Directory(), nil
}

// Status is the status node n's directory gives id ("" when not listed).
func (n *Node) Status(ctx context.Context, id string) (directory.Status, error) {
	dir, err := n.Directory(ctx)
	if err != nil {
		return "", err
	}
	for _, e := range dir.Nodes {
		if e.ID == id {
			return e.Status, nil
		}
	}
	return "", nil
}

// WaitConverged waits until every live node lists every live node as up.
func (c *Cluster) WaitConverged(ctx context.Context, timeout time.Duration) error {
	return Await(ctx, timeout, func(ctx context.Context) error {
		for _, n := range c.Nodes {
			if !n.Alive() {
				continue
			}
			for _, m := range c.Nodes {
				if !m.Alive() {
					continue
				}
				st, err := n.Status(ctx, m.ID)
				if err != nil {
					return err
				}
				if st != directory.Up {
					return fmt.Errorf("%s sees %s as %q", n.ID, m.ID, st)
				}
			}
		}
		return nil
	})
}

// Await polls check every few milliseconds until it returns nil, ctx ends
// or timeout passes; it then returns check's last error.
func Await(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err // an error caused by the deadline itself says little
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localcluster: not within %v: %w", timeout, last)
		case <-tick.C:
		}
	}
}

// FreePort finds a port p such that p..p+span-1 are free, for TCP and UDP,
// on every one of ips.
func FreePort(ips []string, span int) (int, error) {
	for range 200 {
		// Below the kernel's ephemeral range (32768 up), so that no outgoing
		// connection takes a port between this check and the bind.
		p := 20000 + rand.IntN(12000)
		if portsFree(ips, p, span) {
			return p, nil
		}
	}
	return 0, errors.New("localcluster: no free port range found")
}

func portsFree(ips []string, p, span int) bool {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, h := range ips {
		for q := p; q < p+span; q++ {
			addr := net.JoinHostPort(h, strconv.Itoa(q))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return false
			}
			closers = append(closers, ln)
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				return false
			}
			closers = append(closers, pc)
		}
	}
	return true
}

// Build compiles the switchboard binary into dir and returns its path;
// tests of other packages build it once in TestMain.
func Build(dir string) (string, error) {
	binary := dir + "/switchboard"
	cmd := exec.Command("go", "build", "-o", binary, "github.com/switchboard/switchboard/cmd/switchboard")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("localcluster: building switchboard: %w\n%s", err, out)
	}
	return binary, nil
}

// RunTests is the TestMain of a package whose tests start node
// processes: it builds the switchboard binary into a temporary directory,
// sets *binary to its path, runs m (a *testing.M), removes the directory
// and exits with m's code.
func RunTests(m interface{ Run() int }, binary *string) {
	dir, err := os.MkdirTemp("", "switchboard-test-")
	if err == nil {
		*binary, err = Build(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Pause sends SIGSTOP to node i: the process keeps its sockets but runs
// nothing until Resume, as a node stalled by its host would.
func (c *Cluster) Pause(i int) error {
	return c.signal(i, sigStop, "pausing")
}

// Terminate sends SIGTERM to node i, as an operator stopping it would (it
// shuts down gracefully), and waits for it to exit.
func (c *Cluster) Terminate(i int) error {
	if err := c.signal(i, syscall.SIGTERM, "terminating"); err != nil {
		return err
	}
	<-c.Nodes[i].exited
	return nil
}

// RenewCertificate issues node i a new client certificate over its files
// and sends it SIGHUP, as a renewal hook would, so that it reloads it.
// Without Config.TLS there is nothing to renew.
func (c *Cluster) RenewCertificate(i int) error {
	if c.ca == nil {
		return errors.New("localcluster: renewing a certificate: the cluster runs without TLS")
	}
	if err := c.issue(c.Nodes[i]); err != nil {
		return err
	}
	return c.signal(i, syscall.SIGHUP, "reloading")
}

// Resume sends SIGCONT to node i after Pause.
func (c *Cluster) Resume(i int) error {
	return c.signal(i, sigCont, "resuming")
}

func (c *Cluster) signal(i int, sig syscall.Signal, doing string) error {
	n := c.Nodes[i]
	if !n.Alive() {
		return fmt.Errorf("localcluster: %s %s: the process has exited", doing, n.ID)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("localcluster: %s %s: %w", doing, n.ID, err)
	}
	return nil
}

// NATSURL is the client URL of node n's embedded NATS server,
// nats://operator:SECRET@HOST:PORT: the server listens on a random loopback
// port and admits only the operator user with the cluster secret (and the
// node itself). It reads the address from the INFO line the server sends
// to a connection on its cluster listener, where nats-server advertises
// its client URLs to its peers.
func (n *Node) NATSURL(ctx context.Context) (string, error) {
	a, err := n.natsAddr(ctx)
	if err != nil {
		return "", err
	}
	return "nats://" + url.UserPassword(bus.OperatorUser, n.secret).String() + "@" + a, nil
}

func (n *Node) natsAddr(ctx context.Context) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", n.Cluster)
	if err != nil {
		return "", fmt.Errorf("localcluster: asking %s for its NATS URL: %w", n.ID, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	} else {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("localcluster: reading %s's route INFO: %w", n.ID, err)
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "INFO ")
	if !ok {
		return "", fmt.Errorf("localcluster: %s's cluster listener sent %q, not INFO", n.ID, line)
	}
	var info struct {
		ConnectURLs []string `json:"connect_urls"`
	}
	if err := json.Unmarshal([]byte(rest), &info); err != nil || len(info.ConnectURLs) == 0 {
		return "", fmt.Errorf("localcluster: %s's route INFO names no client URL (%v): %s", n.ID, err, rest)
	}
	return info.ConnectURLs[0], nil
}
