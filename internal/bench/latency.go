package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
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
	// listener, against a second cluster, interleaved with the plain
	// samples; those rows have TLS set.
	TLS     bool         `json:"tls,omitempty"`
	Rows    []LatencyRow `json:"rows"`
	Targets []Target     `json:"targets"`
}

// LatencyRow is one way of connecting.
type LatencyRow struct {
	// Name is "direct" or the policy Dial picked with, and "+tls" for
	// the TLS rows.
	Name string `json:"name"`
	// TLS says the connections spoke TLS to nodes that serve it.
	TLS bool        `json:"tls,omitempty"`
	MS  Percentiles `json:"ms"`
	// VsDirect is this row's p50 over the direct row's (of the same
	// transport).
	VsDirect float64 `json:"p50_vs_direct"`
	// VsPlain and P99VsPlain are a TLS row's p50 and p99 over its plain
	// row's.
	VsPlain    float64 `json:"p50_vs_plain,omitempty"`
	P99VsPlain float64 `json:"p99_vs_plain,omitempty"`
	// Moved counts Dials that attached on a second connection (the pick
	// was not the node that answered the hello).
	Moved   int `json:"moved"`
	Failed  int `json:"failed"`
	samples []float64
}

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
	transports := []bool{false}
	if e.cfg.TLS {
		transports = append(transports, true)
	}
	var rows []LatencyRow
	var measures []func(i int) (time.Duration, bool, error)
	for _, withTLS := range transports {
		c, err := e.startTLS(ctx, e.cfg.Nodes, withTLS)
		if err != nil {
			return nil, err
		}
		defer c.stop(ctx)
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
		known, err := c.known(ctx)
		if err != nil {
			return nil, err
		}
		rep.Nodes = len(known)
		rows = append(rows, LatencyRow{Name: rowName(directName, withTLS), TLS: withTLS})
		measures = append(measures, func(i int) (time.Duration, bool, error) {
			d, err := timeDirect(ctx, known[i%len(known)].Addr, c.tls, fmt.Sprintf("direct%d", i))
			return d, false, err
		})
		for j, p := range policies {
			built, _ := pick.ByName(p, nil)
			rows = append(rows, LatencyRow{Name: rowName(p, withTLS), TLS: withTLS})
			measures = append(measures, func(i int) (time.Duration, bool, error) {
				return timeDial(ctx, c, built, fmt.Sprintf("dial%d-%d", j, i))
			})
		}
	}
	progress, end := e.counter("samples", e.cfg.Samples)
	const warmup = 10
	for i := range e.cfg.Samples + warmup {
		if ctx.Err() != nil {
			break
		}
		for k := range measures {
			if e.cfg.TLS && i%2 == 1 { // plain and TLS take turns going first
				k = len(measures) - 1 - k
			}
			d, moved, err := measures[k](i)
			record(&rows[k], i >= warmup, d, err)
			if moved && i >= warmup {
				rows[k].Moved++
			}
		}
		if i >= warmup {
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
	var direct, directTLS LatencyRow
	for _, row := range rows {
		switch {
		case row.Name == directName:
			direct = row
		case row.Name == rowName(directName, true):
			directTLS = row
		}
		if !row.TLS {
			plain[row.Name] = row
		}
	}
	for i, row := range rows {
		if !row.TLS {
			rows[i].VsDirect = Ratio(row.MS.P50, direct.MS.P50)
		} else {
			rows[i].VsDirect = Ratio(row.MS.P50, directTLS.MS.P50)
			p := plain[strings.TrimSuffix(row.Name, tlsSuffix)]
			rows[i].VsPlain = Ratio(row.MS.P50, p.MS.P50)
			rows[i].P99VsPlain = Ratio(row.MS.P99, p.MS.P99)
		}
	}
	for _, row := range rows {
		switch row.Name {
		case "default":
			rep.Targets = append(rep.Targets, Target{What: "latency: default p50 through the common address vs direct (issue 3 d)", Want: "<= 2x",
				Got: fmt.Sprintf("%.2f ms / %.2f ms = %.2fx", row.MS.P50, direct.MS.P50, row.VsDirect), Met: row.VsDirect <= 2 && row.Failed == 0})
		case rowName("default", true):
			p := plain["default"]
			rep.Targets = append(rep.Targets, Target{What: "latency: default p50 through the common address, TLS vs plain TCP (issue 10)", Want: "<= 2x",
				Got: fmt.Sprintf("%.2f ms / %.2f ms = %.2fx", row.MS.P50, p.MS.P50, row.VsPlain), Met: row.VsPlain <= 2 && row.Failed == 0 && p.Failed == 0})
		}
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

// timeDial times a client.Dial through the common address, then closes;
// moved says the session attached to another node than the one that
// answered its hello.
func timeDial(ctx context.Context, c *cluster, p pick.Policy, user string) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d := &countingDialer{}
	t0 := time.Now()
	opts := []client.Option{client.WithUser(user), client.WithPolicy(p), client.WithResolver(c.resolver),
		client.WithClientName("switchboard-bench/1"), client.WithDialer(d)}
	if c.tls != nil {
		opts = append(opts, client.WithTLS(c.tls))
	}
	s, err := client.Dial(ctx, c.target, opts...)
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
		if row.Name != directName && row.Name != rowName(directName, true) {
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

// writeTLS prints each TLS path against its plain one.
func (r *LatencyReport) writeTLS(w io.Writer) {
	plain := map[string]LatencyRow{}
	for _, row := range r.Rows {
		if !row.TLS {
			plain[row.Name] = row
		}
	}
	fmt.Fprintf(w, "\nTLS on the client listener vs plain TCP, samples interleaved (direct+tls: TLS handshake to a known node):\n\n")
	var rows [][]string
	for _, row := range r.Rows {
		if !row.TLS {
			continue
		}
		name := strings.TrimSuffix(row.Name, tlsSuffix)
		p := plain[name]
		rows = append(rows, []string{name, f2(p.MS.P50), f2(row.MS.P50), f2(row.VsPlain) + "x", f2(p.MS.P99), f2(row.MS.P99), f2(row.P99VsPlain) + "x"})
	}
	table(w, []string{"path", "plain p50 ms", "tls p50 ms", "tls/plain p50", "plain p99 ms", "tls p99 ms", "tls/plain p99"}, rows)
}

// Charts implements Report.
func (r *LatencyReport) Charts() []Chart {
	var cdf []chart.Series
	for _, row := range r.Rows {
		name := row.Name
		if name != directName && name != rowName(directName, true) {
			name = "common address, " + name
		}
		cdf = append(cdf, chart.CDF(name, row.samples))
	}
	return []Chart{
		{"latency", chart.Line{Title: "latency: attach through the common address vs direct (CDF)", XLabel: "ms", YLabel: "fraction of attaches", Series: cdf}.Render},
	}
}
