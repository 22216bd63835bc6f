package bench

import (
	"context"
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
	Background int          `json:"background"`
	Rows       []LatencyRow `json:"rows"`
	Targets    []Target     `json:"targets"`
}

// LatencyRow is one way of connecting.
type LatencyRow struct {
	// Name is "direct" or the policy Dial picked with.
	Name string      `json:"name"`
	MS   Percentiles `json:"ms"`
	// VsDirect is this row's p50 over the direct row's.
	VsDirect float64 `json:"p50_vs_direct"`
	// Moved counts Dials that attached on a second connection (the pick
	// was not the node that answered the hello).
	Moved   int `json:"moved"`
	Failed  int `json:"failed"`
	samples []float64
}

// directName is the LatencyRow of the direct attach.
const directName = "direct"

func runLatency(ctx context.Context, e *env) (Report, error) {
	rep := &LatencyReport{Scenario: "latency", Nodes: e.cfg.Nodes, Samples: e.cfg.Samples, Common: e.common()}
	var policies []string
	for _, p := range e.cfg.Policies {
		if p == NATS {
			e.logf("[nats] skipped: latency compares Switchboard paths only")
			continue
		}
		policies = append(policies, p)
	}
	c, err := e.start(ctx, e.cfg.Nodes)
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
	rep.Nodes = len(known)
	rows := make([]LatencyRow, len(policies)+1)
	rows[0].Name = directName
	built := make([]pick.Policy, len(policies))
	for i, p := range policies {
		rows[i+1].Name = p
		built[i], _ = pick.ByName(p, nil)
	}
	progress, end := e.counter("samples", e.cfg.Samples)
	const warmup = 10
	for i := range e.cfg.Samples + warmup {
		if ctx.Err() != nil {
			break
		}
		node := known[i%len(known)]
		d, err := timeDirect(ctx, node.Addr, fmt.Sprintf("direct%d", i))
		record(&rows[0], i >= warmup, d, err)
		for j, p := range built {
			d, moved, err := timeDial(ctx, c, p, fmt.Sprintf("dial%d-%d", j, i))
			record(&rows[j+1], i >= warmup, d, err)
			if moved && i >= warmup {
				rows[j+1].Moved++
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
	for i := range rows {
		rows[i].VsDirect = Ratio(rows[i].MS.P50, rows[0].MS.P50)
		if rows[i].Name == "default" {
			rep.Targets = append(rep.Targets, Target{What: "latency: default p50 through the common address vs direct (issue 3 d)", Want: "<= 2x",
				Got: fmt.Sprintf("%.2f ms / %.2f ms = %.2fx", rows[i].MS.P50, rows[0].MS.P50, rows[i].VsDirect), Met: rows[i].VsDirect <= 2 && rows[i].Failed == 0})
		}
	}
	rep.Rows = rows
	return rep, nil
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

// timeDirect times a connect, hello and attach to addr, then closes.
func timeDirect(ctx context.Context, addr, user string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t0 := time.Now()
	c, err := attachDirect(ctx, addr, user)
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
	s, err := client.Dial(ctx, c.target, client.WithUser(user), client.WithPolicy(p), client.WithResolver(c.resolver),
		client.WithClientName("switchboard-bench/1"), client.WithDialer(d))
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

// attachDirect connects to addr, says hello and attaches as user: what a
// client that already knows its node does.
func attachDirect(ctx context.Context, addr, user string) (*client.Conn, error) {
	c, err := client.DialConn(ctx, nil, addr)
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
		if row.Name != directName {
			moved = fmt.Sprint(row.Moved)
		}
		rows = append(rows, []string{row.Name, f2(row.MS.P50), f2(row.MS.P90), f2(row.MS.P99), f2(row.MS.Max), f2(row.VsDirect) + "x", moved, fmt.Sprint(row.Failed)})
	}
	table(w, []string{"path", "p50 ms", "p90 ms", "p99 ms", "max ms", "p50 vs direct", "second connection", "failed"}, rows)
	writeTargets(w, r.Targets)
}

// Charts implements Report.
func (r *LatencyReport) Charts() []Chart {
	var cdf []chart.Series
	for _, row := range r.Rows {
		name := row.Name
		if name != directName {
			name = "common address, " + name
		}
		cdf = append(cdf, chart.CDF(name, row.samples))
	}
	return []Chart{
		{"latency", chart.Line{Title: "latency: attach through the common address vs direct (CDF)", XLabel: "ms", YLabel: "fraction of attaches", Series: cdf}.Render},
	}
}
