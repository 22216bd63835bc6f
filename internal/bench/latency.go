package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/chart"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/wire"
)

// LatencyReport is the latency scenario: one session at a time attaches
// through the common address (client.Dial: lookup, hello, pick, attach,
// maybe on a second connection) or directly to a known node (connect,
// hello, attach), interleaved, Samples times each.
type LatencyReport struct {
	Scenario string `json:"scenario"`
	Nodes    int    `json:"nodes"`
	Samples  int    `json:"samples"`
	Common   string `json:"common_address"`
	// Background is how many sessions (default policy) stayed attached
	// while the samples were taken.
	Background int `json:"background"`
	// TLS says every path was also measured with TLS on the client
	// listener, against a second cluster, by two kinds of client:
	// first-time ones (a full handshake) and returning ones (each resuming
	// the session of an untimed earlier visit of its own), interleaved
	// with the plain samples; those rows have TLS set, the returning
	// clients' Resumed too.
	TLS     bool         `json:"tls,omitempty"`
	Rows    []LatencyRow `json:"rows"`
	Targets []Target     `json:"targets"`
}

// LatencyRow is one way of connecting.
type LatencyRow struct {
	// Name is "direct" or the policy Dial picked with, and "+tls" for
	// the TLS rows of first-time clients, "+tls-resumed" for those of
	// returning clients.
	Name string `json:"name"`
	// TLS says the connections spoke TLS to nodes that serve it.
	TLS bool `json:"tls,omitempty"`
	// Resumed says each sample's client was a returning one: right before
	// the sample, untimed, the same client (same user, its own session
	// cache) attached the same way and closed, so it held a session
	// ticket.
	Resumed bool `json:"tls_resumed,omitempty"`
	// Handshakes counts the TLS handshakes of the kept samples' attaches,
	// full and resumed (TLS rows only).
	Handshakes *Handshakes `json:"tls_handshakes,omitempty"`
	MS         Percentiles `json:"ms"`
	// VsDirect is this row's p50 over the direct row's (of the same
	// transport).
	VsDirect float64 `json:"p50_vs_direct"`
	// VsPlain and P99VsPlain are a TLS row's p50 and p99 over its plain
	// row's.
	VsPlain    float64 `json:"p50_vs_plain,omitempty"`
	P99VsPlain float64 `json:"p99_vs_plain,omitempty"`
	// Moved counts Dials that attached on a second connection (the pick
	// was not the node that answered the hello).
	Moved int `json:"moved"`
	// Failed counts samples that did not attach (or whose untimed earlier
	// visit did not).
	Failed  int    `json:"failed"`
	path    string // the name without the kind's suffix
	samples []float64
}

// kind is how row's clients reached the nodes.
func (row LatencyRow) kind() tlsKind { return kindOf(row.TLS, row.Resumed) }

// timedAttach times one attach; moved says it took a second connection.
type timedAttach func() (d time.Duration, moved bool, err error)

// latencyPath is one row's way of attaching: prepare readies sample i,
// untimed (a returning client's earlier visit), and returns the timed
// attach and the counter of its TLS handshakes (nil without TLS).
type latencyPath func(i int) (timedAttach, *handshakeCounter, error)

// directName is the LatencyRow of the direct attach.
const directName = "direct"

func runLatency(ctx context.Context, e *env) (Report, error) {
	rep := &LatencyReport{Scenario: "latency", Nodes: e.cfg.Nodes, Samples: e.cfg.Samples, Common: e.common(), TLS: e.cfg.TLS}
	var policies []string
	for _, p := range e.cfg.Policies {
		if p == NATS {
			e.logf("[nats] skipped: latency compares Switchboard paths only")
			continue
		}
		policies = append(policies, p)
	}
	kinds := []tlsKind{plainTCP}
	if e.cfg.TLS {
		kinds = append(kinds, tlsFirstTime, tlsReturning)
	}
	var rows []LatencyRow
	var paths []latencyPath
	byKind := make([][]int, len(kinds)) // indexes of rows and paths, by kind
	var tlsCluster *cluster             // both TLS kinds attach to the same nodes
	for ki, kind := range kinds {
		c := tlsCluster
		if kind == plainTCP || c == nil {
			var err error
			if c, err = e.startTLS(ctx, e.cfg.Nodes, kind != plainTCP); err != nil {
				return nil, err
			}
			defer c.stop(ctx)
			if kind != plainTCP {
				tlsCluster = c
			}
			if e.cfg.Background > 0 {
				bg, err := e.open(ctx, c, "default", e.cfg.Background, "bg")
				if err != nil {
					return nil, err
				}
				defer bg.Close()
				rep.Background = e.cfg.Background
				if err := c.awaitUsers(ctx, bg.Snapshot().Attached); err != nil {
					return nil, err
				}
			}
		}
		known, err := c.known(ctx)
		if err != nil {
			return nil, err
		}
		rep.Nodes = len(known)
		add := func(path string, p latencyPath) {
			byKind[ki] = append(byKind[ki], len(rows))
			rows = append(rows, LatencyRow{Name: rowName(path, kind), path: path, TLS: kind != plainTCP, Resumed: kind == tlsReturning})
			paths = append(paths, p)
		}
		add(directName, func(i int) (timedAttach, *handshakeCounter, error) {
			addr, user := known[i%len(known)].Addr, fmt.Sprintf("direct%d", i)
			cfg, hs, err := sampleTLS(c.tls, kind, func(cfg *tls.Config) error {
				conn, err := attachDirect(ctx, addr, cfg, user)
				if err == nil {
					conn.Close()
				}
				return err
			})
			return func() (time.Duration, bool, error) {
				d, err := timeDirect(ctx, addr, cfg, user)
				return d, false, err
			}, hs, err
		})
		for j, p := range policies {
			built, _ := pick.ByName(p, nil)
			add(p, func(i int) (timedAttach, *handshakeCounter, error) {
				user := fmt.Sprintf("dial%d-%d", j, i)
				cfg, hs, err := sampleTLS(c.tls, kind, func(cfg *tls.Config) error {
					s, err := dial(ctx, c, cfg, built, user, nil)
					if err == nil {
						s.Close()
					}
					return err
				})
				return func() (time.Duration, bool, error) {
					return timeDial(ctx, c, cfg, built, user)
				}, hs, err
			})
		}
	}
	progress, end := e.counter("samples", e.cfg.Samples)
	const warmup = 10
	timed := make([]timedAttach, len(paths))
	counters := make([]*handshakeCounter, len(paths))
	for i := range e.cfg.Samples + warmup {
		if ctx.Err() != nil {
			break
		}
		keep := i >= warmup
		// Untimed first: every returning client's earlier visit.
		for k, prepare := range paths {
			var err error
			timed[k], counters[k], err = prepare(i)
			if err != nil {
				record(&rows[k], keep, 0, err)
				timed[k] = nil
			}
		}
		// Then the timed attaches, the kinds taking turns going first.
		for n := range kinds {
			for _, k := range byKind[(i+n)%len(kinds)] {
				if timed[k] == nil {
					continue
				}
				d, moved, err := timed[k]()
				record(&rows[k], keep, d, err)
				if keep && moved {
					rows[k].Moved++
				}
				if keep && counters[k] != nil {
					if rows[k].Handshakes == nil {
						rows[k].Handshakes = &Handshakes{}
					}
					h := counters[k].count()
					rows[k].Handshakes.Full += h.Full
					rows[k].Handshakes.Resumed += h.Resumed
				}
			}
		}
		if keep {
			progress(i - warmup + 1)
		}
	}
	end()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for i := range rows {
		rows[i].MS = summarizeMS(rows[i].samples)
	}
	plain := map[string]LatencyRow{}
	direct := map[tlsKind]LatencyRow{}
	for _, row := range rows {
		if row.path == directName {
			direct[row.kind()] = row
		}
		if !row.TLS {
			plain[row.path] = row
		}
	}
	for i, row := range rows {
		rows[i].VsDirect = Ratio(row.MS.P50, direct[row.kind()].MS.P50)
		if row.TLS {
			p := plain[row.path]
			rows[i].VsPlain = Ratio(row.MS.P50, p.MS.P50)
			rows[i].P99VsPlain = Ratio(row.MS.P99, p.MS.P99)
		}
	}
	for _, row := range rows {
		if row.path != "default" {
			continue
		}
		if !row.TLS {
			d := direct[plainTCP]
			rep.Targets = append(rep.Targets, Target{What: "latency: default p50 through the common address vs direct (issue 3 d)", Want: "<= 2x",
				Got: fmt.Sprintf("%.2f ms / %.2f ms = %.2fx", row.MS.P50, d.MS.P50, row.VsDirect), Met: row.VsDirect <= 2 && row.Failed == 0})
			continue
		}
		p := plain[row.path]
		rep.Targets = append(rep.Targets, Target{What: fmt.Sprintf("latency: default p50 through the common address, TLS (%s) vs plain TCP (issue 10)", row.kind().clients()), Want: "<= 2x",
			Got: fmt.Sprintf("%.2f ms / %.2f ms = %.2fx", row.MS.P50, p.MS.P50, row.VsPlain), Met: row.VsPlain <= 2 && row.Failed == 0 && p.Failed == 0})
	}
	rep.Rows = rows
	return rep, nil
}

// known lists the nodes of c's directory that take sessions.
func (c *cluster) known(ctx context.Context) ([]directory.Node, error) {
	dir, err := c.directory(ctx)
	if err != nil {
		return nil, err
	}
	var known []directory.Node
	for _, n := range dir.Nodes {
		if n.Available() {
			known = append(known, n)
		}
	}
	if len(known) == 0 {
		return nil, fmt.Errorf("bench: latency: no node up")
	}
	return known, nil
}

func record(row *LatencyRow, keep bool, d time.Duration, err error) {
	if !keep {
		return
	}
	if err != nil {
		row.Failed++
		return
	}
	row.samples = append(row.samples, ms(d))
}

// summarizeMS is Summarize for samples in milliseconds.
func summarizeMS(v []float64) Percentiles {
	ds := make([]time.Duration, len(v))
	for i, x := range v {
		ds[i] = time.Duration(x * float64(time.Millisecond))
	}
	return Summarize(ds)
}

// timeDirect times a connect (with a TLS handshake when cfg is not nil),
// hello and attach to addr, then closes.
func timeDirect(ctx context.Context, addr string, cfg *tls.Config, user string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t0 := time.Now()
	c, err := attachDirect(ctx, addr, cfg, user)
	took := time.Since(t0)
	if err != nil {
		return 0, err
	}
	c.Close()
	return took, nil
}

// sampleTLS gives one sample of kind its TLS configuration, made from
// base (nil without TLS), and the counter of its handshakes. A returning
// client gets a session cache of its own, and visit is called with it
// first, untimed: the earlier visit whose ticket the timed attach
// resumes. A first-time client's configuration has no cache (client.WithTLS
// gives each Dial an empty one; a direct attach keeps none).
func sampleTLS(base *tls.Config, kind tlsKind, visit func(*tls.Config) error) (*tls.Config, *handshakeCounter, error) {
	if base == nil || kind == plainTCP {
		return nil, nil, nil
	}
	hs := &handshakeCounter{}
	if kind == tlsFirstTime {
		return hs.config(base), hs, nil
	}
	withCache := base.Clone()
	withCache.ClientSessionCache = tls.NewLRUClientSessionCache(16)
	if err := visit(withCache); err != nil {
		return nil, nil, fmt.Errorf("bench: the untimed earlier visit: %w", err)
	}
	return hs.config(withCache), hs, nil
}

// dial is a client.Dial through c's common address with policy p as
// user, over TLS with cfg when it is not nil.
func dial(ctx context.Context, c *cluster, cfg *tls.Config, p pick.Policy, user string, d client.Dialer) (*client.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	opts := []client.Option{client.WithUser(user), client.WithPolicy(p), client.WithResolver(c.resolver),
		client.WithClientName("switchboard-bench/1")}
	if d != nil {
		opts = append(opts, client.WithDialer(d))
	}
	if cfg != nil {
		opts = append(opts, client.WithTLS(cfg))
	}
	return client.Dial(ctx, c.target, opts...)
}

// timeDial times a client.Dial through the common address (over TLS
// with cfg when it is not nil), then closes; moved says the session
// attached to another node than the one that answered its hello.
func timeDial(ctx context.Context, c *cluster, cfg *tls.Config, p pick.Policy, user string) (time.Duration, bool, error) {
	d := &countingDialer{}
	t0 := time.Now()
	s, err := dial(ctx, c, cfg, p, user, d)
	took := time.Since(t0)
	if err != nil {
		return 0, false, err
	}
	s.Close()
	return took, d.n.Load() > 1, nil
}

// countingDialer counts the connections a Dial opens.
type countingDialer struct {
	d net.Dialer
	n atomic.Int32
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	return c.d.DialContext(ctx, network, addr)
}

// attachDirect connects to addr (over TLS with cfg when it is not nil),
// says hello and attaches as user: what a client that already knows its
// node does.
func attachDirect(ctx context.Context, addr string, cfg *tls.Config, user string) (*client.Conn, error) {
	var c *client.Conn
	var err error
	if cfg != nil {
		c, err = client.DialConnTLS(ctx, nil, addr, cfg)
	} else {
		c, err = client.DialConn(ctx, nil, addr)
	}
	if err != nil {
		return nil, err
	}
	if _, err := c.Hello(ctx, "switchboard-bench/1", ""); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Send(wire.Message{Op: wire.OpAttach, User: user}); err != nil {
		c.Close()
		return nil, err
	}
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			c.Close()
			return nil, err
		}
		switch m.Op {
		case wire.OpAttached:
			return c, nil
		case wire.OpError:
			c.Close()
			return nil, fmt.Errorf("bench: attaching to %s: %s: %s", addr, m.Code, m.Message)
		}
	}
}

// WriteTable implements Report.
func (r *LatencyReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "latency: %d sequential attaches per row, interleaved, %d sessions attached meanwhile; common address: %s; direct: connect+hello+attach to a known node\n\n",
		r.Samples, r.Background, r.Common)
	var rows [][]string
	for _, row := range r.Rows {
		moved := "-"
		if row.path != directName {
			moved = fmt.Sprint(row.Moved)
		}
		rows = append(rows, []string{row.Name, f2(row.MS.P50), f2(row.MS.P90), f2(row.MS.P99), f2(row.MS.Max), f2(row.VsDirect) + "x", moved, fmt.Sprint(row.Failed)})
	}
	table(w, []string{"path", "p50 ms", "p90 ms", "p99 ms", "max ms", "p50 vs direct", "second connection", "failed"}, rows)
	if r.TLS {
		r.writeTLS(w)
	}
	writeTargets(w, r.Targets)
}

// writeTLS prints each TLS path, for both kinds of client, against its
// plain one.
func (r *LatencyReport) writeTLS(w io.Writer) {
	plain := map[string]LatencyRow{}
	for _, row := range r.Rows {
		if !row.TLS {
			plain[row.path] = row
		}
	}
	fmt.Fprintf(w, "\nTLS on the client listener vs plain TCP, samples interleaved (direct: TLS handshake to a known node; %s: %s; %s: %s, each right after an untimed earlier visit of its own):\n\n",
		tlsSuffix, tlsFirstTime.clients(), resumedSuffix, tlsReturning.clients())
	var rows [][]string
	for _, row := range r.Rows {
		if !row.TLS {
			continue
		}
		p := plain[row.path]
		rows = append(rows, []string{row.Name, f2(p.MS.P50), f2(row.MS.P50), f2(row.VsPlain) + "x", f2(p.MS.P99), f2(row.MS.P99), f2(row.P99VsPlain) + "x", handshakesCell(row.Handshakes)})
	}
	table(w, []string{"path", "plain p50 ms", "tls p50 ms", "tls/plain p50", "plain p99 ms", "tls p99 ms", "tls/plain p99", "handshakes resumed"}, rows)
}

// Charts implements Report.
func (r *LatencyReport) Charts() []Chart {
	var cdf []chart.Series
	for _, row := range r.Rows {
		name := row.Name
		if row.path != directName {
			name = "common address, " + name
		}
		cdf = append(cdf, chart.CDF(name, row.samples))
	}
	return []Chart{
		{"latency", chart.Line{Title: "latency: attach through the common address vs direct (CDF)", XLabel: "ms", YLabel: "fraction of attaches", Series: cdf}.Render},
	}
}
