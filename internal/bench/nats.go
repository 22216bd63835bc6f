package bench

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/localcluster"
)

// natsCluster is the NATS baseline's servers: embedded in this process,
// server i on 127.0.0.(i+1) with the same client port on every IP,
// clustered by routes to the first one.
type natsCluster struct {
	servers []*server.Server
	ids     []string
	urls    []string
	port    int // client port; routes on port+1
}

// natsSpare is how many servers can be added to a natsCluster.
const natsSpare = 2

func startNATS(ctx context.Context, n int) (*natsCluster, error) {
	ips := make([]string, n+natsSpare)
	for i := range ips {
		ips[i] = natsIP(i)
	}
	port, err := localcluster.FreePort(ips, 2)
	if err != nil {
		return nil, err
	}
	c := &natsCluster{port: port}
	for range n {
		if err := c.start(); err != nil {
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

// start adds one server, routed to the first.
func (c *natsCluster) start() error {
	i := len(c.servers)
	id := "n" + strconv.Itoa(i+1)
	opts := &server.Options{
		ServerName: id,
		Host:       natsIP(i),
		Port:       c.port,
		NoLog:      true,
		NoSigs:     true,
		Cluster: server.ClusterOpts{
			Name: "bench",
			Host: natsIP(i),
			Port: c.port + 1,
			// Gossip this address to the other servers, so that they
			// route to each other and not only to the first.
			Advertise: net.JoinHostPort(natsIP(i), strconv.Itoa(c.port+1)),
		},
	}
	if i > 0 {
		opts.Routes = []*url.URL{{Scheme: "nats", Host: net.JoinHostPort(natsIP(0), strconv.Itoa(c.port+1))}}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("bench: NATS server %s: %w", id, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("bench: NATS server %s not ready", id)
	}
	c.servers = append(c.servers, s)
	c.ids = append(c.ids, id)
	c.urls = append(c.urls, "nats://"+net.JoinHostPort(natsIP(i), strconv.Itoa(c.port)))
	return nil
}

// add starts one more server and waits until every server routes to it.
func (c *natsCluster) add(ctx context.Context) error {
	if err := c.start(); err != nil {
		return err
	}
	return c.waitRoutes(ctx)
}

// waitRoutes waits until every running server has a route to every other.
func (c *natsCluster) waitRoutes(ctx context.Context) error {
	return localcluster.Await(ctx, 20*time.Second, func(context.Context) error {
		live := 0
		for _, s := range c.servers {
			if s.Running() {
				live++
			}
		}
		for i, s := range c.servers {
			if s.Running() && s.NumRemotes() < live-1 {
				return fmt.Errorf("NATS server %s has %d of %d routes", c.ids[i], s.NumRemotes(), live-1)
			}
		}
		return nil
	})
}

// counts returns the clients of every running server.
func (c *natsCluster) counts() map[string]int {
	out := map[string]int{}
	for i, s := range c.servers {
		if s.Running() {
			out[c.ids[i]] = s.NumClients()
		}
	}
	return out
}

func (c *natsCluster) stop() {
	for _, s := range c.servers {
		s.Shutdown()
	}
	for _, s := range c.servers {
		s.WaitForShutdown()
	}
}

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
// flight, connection i given the one URL entry(i); every option but the
// handlers that record drops and reconnections is nats.go's default
// (reconnect on, the server list shuffled, servers the cluster reports
// added to it).
func (e *env) natsConnect(ctx context.Context, n int, entry func(i int) string) (*natsClients, error) {
	progress, end := e.counter("[nats] connected", n)
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

// reattach returns the reconnect delays from killed, as Run.ReattachDelays.
func (nc *natsClients) reattach(killed time.Time) ([]time.Duration, int) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return reattachDelays(killed, nc.drops, nc.reconnects)
}

// servedBy counts the open connections by the server they are on, as the
// clients see it (ConnectedServerName).
func (nc *natsClients) servedBy() map[string]int {
	out := map[string]int{}
	for _, c := range nc.conns {
		if c != nil && c.IsConnected() {
			out[c.ConnectedServerName()]++
		}
	}
	return out
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

// natsEntry returns the entry URL function for Config.NATSEntry.
func (e *env) natsEntry(c *natsCluster) func(i int) string {
	urls := slices.Clone(c.urls)
	if e.cfg.NATSEntry == "each" {
		return func(i int) string { return urls[i%len(urls)] }
	}
	return func(int) string { return urls[0] }
}

// sumCounts adds the values of a count map.
func sumCounts(m map[string]int) int {
	total := 0
	for _, v := range m {
		total += v
	}
	return total
}
