package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/localcluster"
)

// The NATS baselines, accepted in Config.Policies next to the pick
// policies and pick.DNSOnly: nats.go clients against a cluster of
// nats-server processes, each client with nats.go's default options
// (reconnect on, the server pool shuffled, servers the cluster gossips
// added to the pool).
const (
	// NATS gives every client the full list of server URLs (see
	// Config.NATSEntry for the older one-URL forms).
	NATS = "nats"
	// NATSDNS gives every client one URL whose host name resolves to
	// every server's IP; nats.go looks it up and shuffles the addresses.
	NATSDNS = "nats-dns"
)

// isNATS reports whether policy is one of the NATS baselines.
func isNATS(policy string) bool { return policy == NATS || policy == NATSDNS }

// natsName is the host name of the nats-dns baseline. It is answered by
// the bench's own DNS responder (natsDNS), never by the system's: the
// process's resolver is pointed at it while a nats-dns row runs.
const natsName = "nats.bench.test"

// natsCluster is the NATS baselines' servers: nats-server processes,
// server i on 127.0.0.(i+1) with the same client port on every IP,
// clustered by routes to the first one, with its monitoring port on
// port+2 (the cluster port is port+1).
type natsCluster struct {
	exe   []string // the command that runs a nats-server, before its flags
	logs  io.Writer
	procs []*natsProc
	port  int
	dns   *natsDNS
	http  *http.Client
}

type natsProc struct {
	id, ip string
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *natsProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// natsSpare is how many servers can be added to a natsCluster.
const natsSpare = 2

// natsCommand is how a nats-server process is started: Config.NATSServer
// (a nats-server executable), or else this bench's own binary, whose
// `bench nats-server` is nats-server's main (ServeNATS).
func (e *env) natsCommand() []string {
	if e.cfg.NATSServer != "" {
		return []string{e.cfg.NATSServer}
	}
	return []string{e.cfg.Binary, "bench", "nats-server"}
}

// startNATS starts the nats baseline's n servers and waits for their routes.
func (e *env) startNATS(ctx context.Context, n int) (*natsCluster, error) {
	return e.startNATSWith(ctx, n)
}

// startNATSWith is startNATS with more flags for each server.
func (e *env) startNATSWith(ctx context.Context, n int, args ...string) (*natsCluster, error) {
	e.logf("[nats] starting %d nats-server processes", n)
	ips := make([]string, n+natsSpare)
	for i := range ips {
		ips[i] = natsIP(i)
	}
	port, err := localcluster.FreePort(ips, 3)
	if err != nil {
		return nil, err
	}
	logs := e.cfg.Logs
	if logs == nil {
		logs = io.Discard
	}
	c := &natsCluster{exe: append(e.natsCommand(), args...), logs: logs, port: port,
		http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}}
	if c.dns, err = startNATSDNS(); err != nil {
		return nil, err
	}
	for range n {
		if err := c.start(ctx); err != nil {
			c.stop()
			return nil, err
		}
	}
	if err := c.waitRoutes(ctx); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func natsIP(i int) string { return "127.0.0." + strconv.Itoa(i+1) }

// start launches one more server, routed to the first, and waits until
// its monitoring port answers.
func (c *natsCluster) start(ctx context.Context) error {
	i := len(c.procs)
	p := &natsProc{id: "n" + strconv.Itoa(i+1), ip: natsIP(i), exited: make(chan struct{})}
	hp := func(port int) string { return net.JoinHostPort(p.ip, strconv.Itoa(port)) }
	args := append(c.exe[1:len(c.exe):len(c.exe)],
		"--server_name", p.id, "--addr", p.ip, "--port", strconv.Itoa(c.port),
		"--cluster_name", "bench", "--cluster", "nats://"+hp(c.port+1),
		// Gossip this address, so that the servers route to each other
		// and not only to the first.
		"--cluster_advertise", hp(c.port+1),
		"--http_port", strconv.Itoa(c.port+2))
	if i > 0 {
		args = append(args, "--routes", "nats://"+net.JoinHostPort(natsIP(0), strconv.Itoa(c.port+1)))
	}
	p.cmd = exec.Command(c.exe[0], args...)
	p.cmd.Stdout, p.cmd.Stderr = c.logs, c.logs
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("bench: starting nats-server %s: %w", p.id, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	c.procs = append(c.procs, p)
	c.dns.set(c.ips())
	return localcluster.Await(ctx, 20*time.Second, func(ctx context.Context) error {
		if !p.alive() {
			return fmt.Errorf("nats-server %s exited", p.id)
		}
		_, err := c.varz(ctx, p)
		return err
	})
}

// ips lists the servers' IPs, in order, the killed ones included: the
// name of the nats-dns baseline lists them all, as an operator's DNS
// would until someone edits it.
func (c *natsCluster) ips() []string {
	out := make([]string, len(c.procs))
	for i, p := range c.procs {
		out[i] = p.ip
	}
	return out
}

// urls lists every server's client URL, in order.
func (c *natsCluster) urls() []string {
	out := make([]string, len(c.procs))
	for i, p := range c.procs {
		out[i] = "nats://" + net.JoinHostPort(p.ip, strconv.Itoa(c.port))
	}
	return out
}

// ids lists the servers' IDs, in order.
func (c *natsCluster) ids() []string {
	out := make([]string, len(c.procs))
	for i, p := range c.procs {
		out[i] = p.id
	}
	return out
}

// add starts one more server and waits until every server routes to it.
func (c *natsCluster) add(ctx context.Context) error {
	if err := c.start(ctx); err != nil {
		return err
	}
	return c.waitRoutes(ctx)
}

// varz is the part of a server's /varz the bench reads.
type varz struct {
	Connections int `json:"connections"`
}

func (c *natsCluster) varz(ctx context.Context, p *natsProc) (varz, error) {
	var v varz
	err := c.getJSON(ctx, p, "/varz", &v)
	return v, err
}

func (c *natsCluster) getJSON(ctx context.Context, p *natsProc, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(p.ip, strconv.Itoa(c.port+2))+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("bench: asking nats-server %s: %w", p.id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: nats-server %s%s: %s", p.id, path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitRoutes waits until every running server has a route to every other.
func (c *natsCluster) waitRoutes(ctx context.Context) error {
	return localcluster.Await(ctx, 20*time.Second, func(ctx context.Context) error {
		live := 0
		for _, p := range c.procs {
			if p.alive() {
				live++
			}
		}
		for _, p := range c.procs {
			if !p.alive() {
				continue
			}
			var rz struct {
				Routes []struct {
					RemoteID string `json:"remote_id"`
				} `json:"routes"`
			}
			if err := c.getJSON(ctx, p, "/routez", &rz); err != nil {
				return err
			}
			peers := map[string]bool{}
			for _, r := range rz.Routes {
				peers[r.RemoteID] = true
			}
			if len(peers) < live-1 {
				return fmt.Errorf("nats-server %s routes to %d of %d peers", p.id, len(peers), live-1)
			}
		}
		return nil
	})
}

// counts returns the client connections of every running server, as it
// reports them.
func (c *natsCluster) counts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, p := range c.procs {
		if !p.alive() {
			continue
		}
		v, err := c.varz(ctx, p)
		if err != nil {
			return nil, err
		}
		out[p.id] = v.Connections
	}
	return out, nil
}

// awaitCounts waits until the servers count want connections in all, and
// returns their counts as they are then.
func (c *natsCluster) awaitCounts(ctx context.Context, want int) (map[string]int, error) {
	err := awaitFor(ctx, 10*time.Second, func(ctx context.Context) error {
		counts, err := c.counts(ctx)
		if err != nil {
			return err
		}
		if got := sumCounts(counts); got != want {
			return fmt.Errorf("the nats-servers count %d connections, want %d", got, want)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c.counts(ctx)
}

// awaitClients waits until the clients of cls are all connected, and
// returns how many are on each running server, as the clients see it
// (nats.Conn.ConnectedServerName): a server's own count may for a while
// hold connections of clients that gave up on them under load.
func (c *natsCluster) awaitClients(ctx context.Context, cls ...*natsClients) (map[string]int, error) {
	var counts map[string]int
	err := awaitFor(ctx, 10*time.Second, func(context.Context) error {
		counts = map[string]int{}
		for _, p := range c.procs {
			if p.alive() {
				counts[p.id] = 0
			}
		}
		opened, connected := 0, 0
		for _, cl := range cls {
			for _, conn := range cl.conns {
				if conn == nil {
					continue
				}
				opened++
				if conn.IsConnected() {
					connected++
					counts[conn.ConnectedServerName()]++
				}
			}
		}
		if connected != opened {
			return fmt.Errorf("%d of %d nats clients connected", connected, opened)
		}
		return nil
	})
	return counts, err
}

// signal sends sig to server id.
func (c *natsCluster) signal(id string, sig syscall.Signal) error {
	for _, p := range c.procs {
		if p.id == id {
			if err := p.cmd.Process.Signal(sig); err != nil {
				return fmt.Errorf("bench: signalling nats-server %s: %w", id, err)
			}
			return nil
		}
	}
	return fmt.Errorf("bench: no nats-server %s", id)
}

// kill sends SIGKILL to server id (kill -9) and waits for it to exit.
func (c *natsCluster) kill(id string) error {
	for _, p := range c.procs {
		if p.id == id {
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
				return fmt.Errorf("bench: kill -9 nats-server %s: %w", id, err)
			}
			<-p.exited
			return nil
		}
	}
	return fmt.Errorf("bench: no nats-server %s", id)
}

func (c *natsCluster) stop() {
	for _, p := range c.procs {
		if p.alive() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range c.procs {
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	c.dns.stop()
	if a := natsResolverAddr.Load(); a != nil && *a == c.dns.addr {
		useNATSResolver("")
	}
	c.http.CloseIdleConnections()
}

// ServeNATS runs a nats-server with nats-server's own command line (args
// are its flags), as its main does, until a signal stops it: `switchboard
// bench nats-server` runs it, so that the NATS baselines' servers are
// processes of their own, built from the nats-server module the nodes
// embed, without another executable to install.
func ServeNATS(args []string) error {
	fs := flag.NewFlagSet("nats-server", flag.ExitOnError)
	opts, err := server.ConfigureOptions(fs, args, server.PrintServerAndExit, fs.Usage, server.PrintTLSHelpAndDie)
	if err != nil {
		return fmt.Errorf("bench nats-server: %w", err)
	}
	if opts == nil {
		return nil // -h: nats-server printed its usage
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("bench nats-server: %w", err)
	}
	s.ConfigureLogger()
	if err := server.Run(s); err != nil {
		return fmt.Errorf("bench nats-server: %w", err)
	}
	s.WaitForShutdown()
	return nil
}

// natsDNS is the nats-dns baseline's DNS: it answers natsName's A query
// with every server's IP, and nothing else. While a nats-dns row runs,
// the process's resolver (net.DefaultResolver, which nats.go uses to
// expand a host name) asks it instead of the system's name servers.
type natsDNS struct {
	srv  *dns.Server
	addr string
	ips  atomic.Pointer[[]string]
}

// natsResolverAddr is where the process's resolver sends its queries
// ("" or nil: where the system's configuration says).
var (
	natsResolverAddr atomic.Pointer[string]
	natsResolverOnce sync.Once
)

// useNATSResolver points net.DefaultResolver at addr ("" restores the
// system's name servers). From its first call on, the process resolves
// with the pure Go resolver.
func useNATSResolver(addr string) {
	natsResolverOnce.Do(func() {
		net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			if a := natsResolverAddr.Load(); a != nil && *a != "" {
				address = *a
			}
			var d net.Dialer
			return d.DialContext(ctx, network, address)
		}}
	})
	natsResolverAddr.Store(&addr)
}

func startNATSDNS() (*natsDNS, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: the nats-dns responder: %w", err)
	}
	d := &natsDNS{addr: pc.LocalAddr().String()}
	d.set(nil)
	started := make(chan struct{})
	d.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = d.srv.ActivateAndServe() }()
	<-started
	return d, nil
}

func (d *natsDNS) set(ips []string) { d.ips.Store(&ips) }

func (d *natsDNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	switch {
	case len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, natsName+"."):
		m.Rcode = dns.RcodeNameError
	case r.Question[0].Qtype == dns.TypeA:
		for _, ip := range *d.ips.Load() {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP(ip)})
		}
	}
	_ = w.WriteMsg(m)
}

func (d *natsDNS) stop() { _ = d.srv.Shutdown() }

// natsClients are nats.go connections opened by the baseline, with the
// times each dropped and reconnected.
type natsClients struct {
	conns   []*nats.Conn
	connect []time.Duration
	elapsed time.Duration
	failed  int
	errs    []string

	mu         sync.Mutex
	drops      []time.Time
	reconnects []time.Time
}

// natsConnect opens n nats.go connections with Config.Concurrency in
// flight, connection i given the URLs entry(i) (a comma list); every
// option but the handlers that record drops and reconnections is
// nats.go's default (reconnect on, the server list shuffled, servers the
// cluster reports added to it, a host name expanded to all its IPs in
// random order).
func (e *env) natsConnect(ctx context.Context, label string, n int, entry func(i int) string) (*natsClients, error) {
	progress, end := e.counter("["+label+"] connected", n)
	defer end()
	nc := &natsClients{conns: make([]*nats.Conn, n), connect: make([]time.Duration, n), drops: make([]time.Time, n), reconnects: make([]time.Time, n)}
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var done atomic.Int64
	start := time.Now()
	for range min(e.cfg.Concurrency, n) {
		wg.Go(func() {
			for i := range next {
				t0 := time.Now()
				conn, err := nats.Connect(entry(i),
					nats.Name(fmt.Sprintf("bench-%d", i)),
					nats.DisconnectErrHandler(func(*nats.Conn, error) {
						nc.mu.Lock()
						nc.drops[i] = time.Now()
						nc.reconnects[i] = time.Time{}
						nc.mu.Unlock()
					}),
					nats.ReconnectHandler(func(*nats.Conn) {
						nc.mu.Lock()
						nc.reconnects[i] = time.Now()
						nc.mu.Unlock()
					}),
				)
				took := time.Since(t0)
				mu.Lock()
				if err != nil {
					nc.failed++
					if len(nc.errs) < 5 {
						nc.errs = append(nc.errs, err.Error())
					}
				} else {
					nc.conns[i] = conn
					nc.connect[i] = took
				}
				mu.Unlock()
				progress(int(done.Add(1)))
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	nc.elapsed = time.Since(start)
	if ctx.Err() != nil {
		nc.close()
		return nil, ctx.Err()
	}
	return nc, nil
}

// connectTimes lists the connect latencies of the connections that opened.
func (nc *natsClients) connectTimes() []time.Duration {
	var out []time.Duration
	for i, c := range nc.conns {
		if c != nil {
			out = append(out, nc.connect[i])
		}
	}
	return out
}

// opened counts the connections that opened.
func (nc *natsClients) opened() int { return len(nc.connectTimes()) }

// reattach returns the reconnect delays from killed, as Run.ReattachDelays.
func (nc *natsClients) reattach(killed time.Time) ([]time.Duration, int) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return reattachDelays(killed, nc.drops, nc.reconnects)
}

func (nc *natsClients) close() {
	var wg sync.WaitGroup
	for _, c := range nc.conns {
		if c != nil {
			wg.Go(c.Close)
		}
	}
	wg.Wait()
}

// natsEntry returns the URLs each client of a NATS baseline is given:
// nats-dns one URL naming natsName; nats every server's URL (or, with
// Config.NATSEntry first or each, the first server's alone or server
// i mod N's alone, as the bench once did).
func (e *env) natsEntry(policy string, c *natsCluster) func(i int) string {
	if policy == NATSDNS {
		useNATSResolver(c.dns.addr)
		u := "nats://" + net.JoinHostPort(natsName, strconv.Itoa(c.port))
		return func(int) string { return u }
	}
	urls := c.urls()
	switch e.cfg.NATSEntry {
	case "each":
		return func(i int) string { return urls[i%len(urls)] }
	case "first":
		return func(int) string { return urls[0] }
	}
	all := strings.Join(urls, ",")
	return func(int) string { return all }
}

// sumCounts adds the values of a count map.
func sumCounts(m map[string]int) int {
	total := 0
	for _, v := range m {
		total += v
	}
	return total
}
