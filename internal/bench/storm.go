package bench

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/switchboard/switchboard/internal/chart"
	"github.com/switchboard/switchboard/pick"
)

// StormReport is the storm scenario: Clients sessions arrive through the
// common address of Nodes nodes, Concurrency at a time.
type StormReport struct {
	Scenario    string `json:"scenario"`
	Nodes       int    `json:"nodes"`
	Clients     int    `json:"clients"`
	Concurrency int    `json:"concurrency"`
	Common      string `json:"common_address"`
	Tracker     bool   `json:"tracker"`
	Repeat      int    `json:"repeat"`
	// TLS says every policy also ran with TLS on the client listener,
	// interleaved with its plain run; those rows have TLS set.
	TLS     bool       `json:"tls,omitempty"`
	Rows    []StormRow `json:"policies"`
	Targets []Target   `json:"targets"`
}

// StormRow is one policy's storm.
type StormRow struct {
	Policy string `json:"policy"`
	// TLS says the sessions spoke TLS to nodes that serve it.
	TLS     bool           `json:"tls,omitempty"`
	PerNode map[string]int `json:"per_node"`
	MaxMean float64        `json:"max_mean"`
	// ElapsedMS is the time to attach every session; with Repeat, the
	// row is the run with the median time, and ElapsedRunsMS lists every
	// run's.
	ElapsedMS     float64   `json:"elapsed_ms"`
	ElapsedRunsMS []float64 `json:"elapsed_runs_ms,omitempty"`
	// VsDNSOnly is ElapsedMS over the dns-only row's (0 without one).
	VsDNSOnly float64 `json:"elapsed_vs_dns_only,omitempty"`
	// VsPlain is a TLS row's ElapsedMS over its policy's plain row's.
	VsPlain   float64     `json:"elapsed_vs_plain,omitempty"`
	ConnectMS Percentiles `json:"connect_ms"`
	Failed    int         `json:"failed"`
	Errors    []string    `json:"errors,omitempty"`
	connect   []float64
}

func runStorm(ctx context.Context, e *env) (Report, error) {
	rep := &StormReport{Scenario: "storm", Nodes: e.cfg.Nodes, Clients: e.cfg.Clients, Concurrency: e.cfg.Concurrency, Common: e.common(), Tracker: !e.cfg.NoTracker, Repeat: e.cfg.Repeat, TLS: e.cfg.TLS}
	keys := tlsKeys(e, e.cfg.Policies)
	runs, err := repeatKeys(e, keys, func(k string) (StormRow, error) {
		p, withTLS := strings.CutSuffix(k, tlsSuffix)
		var row StormRow
		var err error
		if isNATS(p) {
			row, err = e.stormNATS(ctx, p)
		} else {
			row, err = e.storm(ctx, p, withTLS)
		}
		if err == nil {
			e.logf("[%s] %d attached in %.0f ms, max/mean %.3f: %s; connect p50 %.1f ms, p99 %.1f ms, failed %d", k, sumCounts(row.PerNode), row.ElapsedMS, row.MaxMean, perNode(row.PerNode), row.ConnectMS.P50, row.ConnectMS.P99, row.Failed)
		}
		return row, err
	})
	if err != nil {
		return nil, err
	}
	for _, p := range keys {
		row, keys := MedianBy(runs[p], func(r StormRow) float64 { return r.ElapsedMS })
		if len(keys) > 1 {
			row.ElapsedRunsMS = keys
		}
		rep.Rows = append(rep.Rows, row)
	}
	if e.cfg.Service != "" && len(rep.Rows) > 0 {
		rep.Nodes = len(rep.Rows[0].PerNode) // the running service's
	}
	rep.finish()
	return rep, nil
}

// common describes how the clients reached the common address.
func (e *env) common() string {
	switch {
	case e.cfg.Service != "":
		return e.cfg.Service
	case e.cfg.Common == "dns":
		return "the service name (DNS: every node's responder in turn; dns-only: plain A records)"
	}
	return "the address list (every node, random order)"
}

// tlsSuffix marks the TLS run of a policy among the keys of repeatKeys,
// and its row in the tables.
const tlsSuffix = "+tls"

// tlsKeys lists each policy, followed with Config.TLS by its TLS variant
// (policy+tlsSuffix); the nats baseline has none.
func tlsKeys(e *env, policies []string) []string {
	var keys []string
	for _, p := range policies {
		keys = append(keys, p)
		if e.cfg.TLS {
			if isNATS(p) {
				e.logf("[%s] no TLS row: the NATS baselines run plain only", p)
				continue
			}
			keys = append(keys, p+tlsSuffix)
		}
	}
	return keys
}

// rowName is how the tables name a row: the policy, and tlsSuffix for TLS.
func rowName(name string, withTLS bool) string {
	if withTLS {
		return name + tlsSuffix
	}
	return name
}

func (e *env) storm(ctx context.Context, policy string, withTLS bool) (StormRow, error) {
	c, err := e.startTLS(ctx, e.cfg.Nodes, withTLS)
	if err != nil {
		return StormRow{}, err
	}
	defer c.stop(ctx)
	run, err := e.open(ctx, c, policy, e.cfg.Clients, "u")
	if err != nil {
		return StormRow{}, err
	}
	defer run.Close()
	res := run.Snapshot()
	return StormRow{
		Policy: policy, TLS: withTLS, PerNode: res.PerNode, MaxMean: res.MaxMean, ElapsedMS: res.ElapsedMS,
		ConnectMS: res.ConnectMS, Failed: res.Failed, Errors: res.Errors, connect: millis(run.ConnectTimes()),
	}, nil
}

func (e *env) stormNATS(ctx context.Context, policy string) (StormRow, error) {
	nc, err := e.startNATS(ctx, e.cfg.Nodes)
	if err != nil {
		return StormRow{}, err
	}
	defer nc.stop()
	cl, err := e.natsConnect(ctx, policy, e.cfg.Clients, e.natsEntry(policy, nc))
	if err != nil {
		return StormRow{}, err
	}
	defer cl.close()
	counts, err := nc.awaitClients(ctx, cl)
	if err != nil {
		return StormRow{}, err
	}
	lat := cl.connectTimes()
	return StormRow{
		Policy: policy, PerNode: counts, MaxMean: MaxMeanOf(counts, nil), ElapsedMS: ms(cl.elapsed),
		ConnectMS: Summarize(lat), Failed: cl.failed, Errors: cl.errs, connect: millis(lat),
	}, nil
}

func (r *StormReport) finish() {
	var base, baseTLS float64
	plain := map[string]StormRow{}
	for _, row := range r.Rows {
		if row.Policy == pick.DNSOnly {
			if row.TLS {
				baseTLS = row.ElapsedMS
			} else {
				base = row.ElapsedMS
			}
		}
		if !row.TLS {
			plain[row.Policy] = row
		}
	}
	for i, row := range r.Rows {
		b := base
		if row.TLS {
			b = baseTLS
			r.Rows[i].VsPlain = Ratio(row.ElapsedMS, plain[row.Policy].ElapsedMS)
		}
		if b > 0 {
			r.Rows[i].VsDNSOnly = Ratio(row.ElapsedMS, b)
		}
	}
	for _, row := range r.Rows {
		if row.Policy != "default" {
			continue
		}
		if row.TLS {
			p := plain[row.Policy]
			r.Targets = append(r.Targets, Target{
				What: "storm: default time to attach all, TLS vs plain (issue 10)", Want: "<= 1.5x",
				Got: fmt.Sprintf("%.0f ms / %.0f ms = %.2fx", row.ElapsedMS, p.ElapsedMS, row.VsPlain), Met: row.VsPlain <= 1.5 && row.Failed == 0 && p.Failed == 0,
			})
			continue
		}
		r.Targets = append(r.Targets, Target{
			What: "storm: default max/mean (issue 3 a)", Want: "<= 1.05",
			Got: f3(row.MaxMean), Met: row.MaxMean <= 1.05 && row.Failed == 0,
		})
		if base > 0 {
			r.Targets = append(r.Targets, Target{
				What: "storm: default time to attach all vs dns-only (issue 3 a)", Want: "<= 1.5x",
				Got: fmt.Sprintf("%.0f ms / %.0f ms = %.2fx", row.ElapsedMS, base, row.VsDNSOnly), Met: row.VsDNSOnly <= 1.5,
			})
		}
	}
}

// WriteTable implements Report.
func (r *StormReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "storm: %d sessions through %s, %d nodes, %d dials at once; median of %d runs by time\n\n", r.Clients, r.Common, r.Nodes, r.Concurrency, r.Repeat)
	var rows [][]string
	for _, row := range r.Rows {
		vs := "-"
		if row.VsDNSOnly > 0 {
			vs = f2(row.VsDNSOnly) + "x"
		}
		rows = append(rows, []string{rowName(row.Policy, row.TLS), perNode(row.PerNode), f3(row.MaxMean), fmt.Sprintf("%.0f", row.ElapsedMS), runsCell(row.ElapsedRunsMS, "%.0f"), vs,
			f1(row.ConnectMS.P50), f1(row.ConnectMS.P99), fmt.Sprint(row.Failed)})
	}
	table(w, []string{"policy", "sessions per node", "max/mean", "all attached ms", "every run ms", "vs dns-only", "connect p50 ms", "p99 ms", "failed"}, rows)
	if r.TLS {
		r.writeTLS(w)
	}
	writeTargets(w, r.Targets)
}

// writeTLS prints each policy's TLS row against its plain row.
func (r *StormReport) writeTLS(w io.Writer) {
	plain := map[string]StormRow{}
	for _, row := range r.Rows {
		if !row.TLS {
			plain[row.Policy] = row
		}
	}
	fmt.Fprintf(w, "\nTLS on the client listener vs plain TCP, interleaved runs:\n\n")
	var rows [][]string
	for _, row := range r.Rows {
		if !row.TLS {
			continue
		}
		p := plain[row.Policy]
		rows = append(rows, []string{row.Policy, fmt.Sprintf("%.0f", p.ElapsedMS), fmt.Sprintf("%.0f", row.ElapsedMS), f2(row.VsPlain) + "x",
			f1(p.ConnectMS.P50), f1(row.ConnectMS.P50), f1(p.ConnectMS.P99), f1(row.ConnectMS.P99)})
	}
	table(w, []string{"policy", "plain all attached ms", "tls ms", "tls/plain", "plain connect p50 ms", "tls p50 ms", "plain p99 ms", "tls p99 ms"}, rows)
}

// Charts implements Report.
func (r *StormReport) Charts() []Chart {
	var policies []string
	var counts []map[string]int
	var mm, el []float64
	var cdf []chart.Series
	for _, row := range r.Rows {
		policies = append(policies, rowName(row.Policy, row.TLS))
		counts = append(counts, row.PerNode)
		mm = append(mm, row.MaxMean)
		el = append(el, row.ElapsedMS)
		cdf = append(cdf, chart.CDF(rowName(row.Policy, row.TLS), row.connect))
	}
	title := fmt.Sprintf("storm: %d sessions, %d nodes", r.Clients, r.Nodes)
	return []Chart{
		{"storm-users", usersBars(title+": sessions per node", policies, counts).Render},
		{"storm-maxmean", valueBars(title+": max/mean", "max/mean", policies, chart.BarSeries{Name: "max/mean", Values: mm}).Render},
		{"storm-elapsed", valueBars(title+": time to attach all", "ms", policies, chart.BarSeries{Name: "all attached", Values: el}).Render},
		{"storm-connect", chart.Line{Title: title + ": connect latency (CDF)", XLabel: "connect ms", YLabel: "fraction of sessions", Series: cdf}.Render},
	}
}
