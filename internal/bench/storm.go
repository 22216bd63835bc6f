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
	// twice, interleaved with its plain run: first-time clients (a full
	// handshake each) and returning clients (each resuming the session of
	// an earlier visit of its own); those rows have TLS set, and the
	// returning clients' Resumed too.
	TLS     bool       `json:"tls,omitempty"`
	Rows    []StormRow `json:"policies"`
	Targets []Target   `json:"targets"`
}

// StormRow is one policy's storm.
type StormRow struct {
	Policy string `json:"policy"`
	// TLS says the sessions spoke TLS to nodes that serve it.
	TLS bool `json:"tls,omitempty"`
	// Resumed says the sessions were returning TLS clients: each had
	// visited once before (untimed) and held that visit's session ticket.
	Resumed bool `json:"tls_resumed,omitempty"`
	// Handshakes counts the TLS handshakes of the timed dials, full and
	// resumed (TLS rows only).
	Handshakes *Handshakes `json:"tls_handshakes,omitempty"`
	// NodesCPUMS and ClientsCPUMS are the CPU time the nodes (all
	// together) and the bench's clients used over the timed storm, in
	// milliseconds (0: not read). On a shared machine they say what the
	// storm cost where its time says how long it waited as well.
	NodesCPUMS   float64 `json:"nodes_cpu_ms,omitempty"`
	ClientsCPUMS float64 `json:"clients_cpu_ms,omitempty"`
	// NodesCPURunsMS and ClientsCPURunsMS list every run's CPU, in the
	// order of ElapsedRunsMS (with Repeat).
	NodesCPURunsMS   []float64 `json:"nodes_cpu_runs_ms,omitempty"`
	ClientsCPURunsMS []float64 `json:"clients_cpu_runs_ms,omitempty"`
	// NodesCPUPerSessionMS is NodesCPUMS over the sessions attached: what
	// one arrival cost the nodes, the clients' own work left out (in the
	// world it is spent on the users' devices, not on the nodes' cores).
	NodesCPUPerSessionMS float64 `json:"nodes_cpu_ms_per_session,omitempty"`
	// NodesCPUVsPlain is a TLS row's NodesCPUPerSessionMS over its
	// policy's plain row's.
	NodesCPUVsPlain float64 `json:"nodes_cpu_vs_plain,omitempty"`
	// PrimeFailed counts the returning clients whose earlier visit failed.
	PrimeFailed int            `json:"prime_failed,omitempty"`
	PerNode     map[string]int `json:"per_node"`
	MaxMean     float64        `json:"max_mean"`
	// ElapsedMS is the time to attach every session; with Repeat, the
	// row is the run with the median time, and ElapsedRunsMS lists every
	// run's.
	ElapsedMS     float64   `json:"elapsed_ms"`
	ElapsedRunsMS []float64 `json:"elapsed_runs_ms,omitempty"`
	// VsDNSOnly is ElapsedMS over the dns-only row's (0 without one).
	VsDNSOnly float64 `json:"elapsed_vs_dns_only,omitempty"`
	// VsPlain is a TLS row's ElapsedMS over its policy's plain row's
	// (of the same round's median run each).
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
		p, kind := splitKey(k)
		var row StormRow
		var err error
		if isNATS(p) {
			row, err = e.stormNATS(ctx, p)
		} else {
			row, err = e.storm(ctx, p, kind)
		}
		if err == nil {
			e.logf("[%s] %d attached in %.0f ms, max/mean %.3f: %s; connect p50 %.1f ms, p99 %.1f ms, failed %d; CPU nodes %.0f ms, clients %.0f ms%s", k, sumCounts(row.PerNode), row.ElapsedMS, row.MaxMean, perNode(row.PerNode), row.ConnectMS.P50, row.ConnectMS.P99, row.Failed, row.NodesCPUMS, row.ClientsCPUMS, handshakesNote(row.Handshakes))
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
			for _, r := range runs[p] {
				row.NodesCPURunsMS = append(row.NodesCPURunsMS, r.NodesCPUMS)
				row.ClientsCPURunsMS = append(row.ClientsCPURunsMS, r.ClientsCPUMS)
			}
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

// tlsKind is how a row's clients reach the nodes.
type tlsKind int

const (
	// plainTCP: no TLS.
	plainTCP tlsKind = iota
	// tlsFirstTime: TLS, every client a first-time one with an empty
	// session cache: a full handshake (the node's signature, the
	// client's verification of the chain) on its first connection.
	tlsFirstTime
	// tlsReturning: TLS, every client a returning one holding the
	// session ticket of an earlier visit of its own: its handshakes
	// resume (no certificate, no signature), as after a node's death, a
	// drain or a network blip.
	tlsReturning
)

// tlsSuffix and resumedSuffix mark the TLS rows (first-time and
// returning clients) among the keys of repeatKeys and in the tables.
const (
	tlsSuffix     = "+tls"
	resumedSuffix = "+tls-resumed"
)

// suffix is how rowName marks k's rows.
func (k tlsKind) suffix() string {
	switch k {
	case tlsFirstTime:
		return tlsSuffix
	case tlsReturning:
		return resumedSuffix
	}
	return ""
}

// clients says in words who k's clients are.
func (k tlsKind) clients() string {
	switch k {
	case tlsFirstTime:
		return "first-time clients, full handshake"
	case tlsReturning:
		return "returning clients, resumed session"
	}
	return "plain TCP"
}

// kindOf is the kind of a row with these flags.
func kindOf(withTLS, resumed bool) tlsKind {
	switch {
	case resumed:
		return tlsReturning
	case withTLS:
		return tlsFirstTime
	}
	return plainTCP
}

// splitKey parses a key of tlsKeys into its policy and kind.
func splitKey(k string) (string, tlsKind) {
	if p, ok := strings.CutSuffix(k, resumedSuffix); ok {
		return p, tlsReturning
	}
	if p, ok := strings.CutSuffix(k, tlsSuffix); ok {
		return p, tlsFirstTime
	}
	return k, plainTCP
}

// tlsKeys lists each policy, followed with Config.TLS by its TLS
// variants, first-time and returning clients (policy+tlsSuffix,
// policy+resumedSuffix), so that repeatKeys runs the three in turn; the
// nats baseline has none.
func tlsKeys(e *env, policies []string) []string {
	var keys []string
	for _, p := range policies {
		keys = append(keys, p)
		if e.cfg.TLS {
			if isNATS(p) {
				e.logf("[%s] no TLS row: the NATS baselines run plain only", p)
				continue
			}
			keys = append(keys, p+tlsSuffix, p+resumedSuffix)
		}
	}
	return keys
}

// rowName is how the tables name a row: the name, and the suffix of its
// kind.
func rowName(name string, kind tlsKind) string { return name + kind.suffix() }

// handshakesNote says, for a log line, how many handshakes resumed.
func handshakesNote(h *Handshakes) string {
	if h == nil {
		return ""
	}
	return fmt.Sprintf("; TLS handshakes %d full, %d resumed", h.Full, h.Resumed)
}

// cpuCell is a table's cell for row's CPU: nodes+clients, in seconds.
func cpuCell(row StormRow) string {
	if row.NodesCPUMS == 0 && row.ClientsCPUMS == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f+%.1f", row.NodesCPUMS/1000, row.ClientsCPUMS/1000)
}

// perSessionCell is a table's cell for the nodes' CPU per session of a
// plain row and a TLS row, and their ratio.
func perSessionCell(plain, tls StormRow) string {
	if plain.NodesCPUPerSessionMS == 0 || tls.NodesCPUPerSessionMS == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f, %.2f (%.2fx)", plain.NodesCPUPerSessionMS, tls.NodesCPUPerSessionMS, tls.NodesCPUVsPlain)
}

// handshakesCell is a table's cell for h: resumed of all.
func handshakesCell(h *Handshakes) string {
	if h == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d", h.Resumed, h.Full+h.Resumed)
}

// storm runs one storm on a fresh cluster. Returning TLS clients first
// visit once each, untimed (Load.ReturningTLS), and the nodes count them
// gone before the timed storm starts.
func (e *env) storm(ctx context.Context, policy string, kind tlsKind) (StormRow, error) {
	c, err := e.startTLS(ctx, e.cfg.Nodes, kind != plainTCP)
	if err != nil {
		return StormRow{}, err
	}
	defer c.stop(ctx)
	if kind == tlsReturning {
		c.returning = true
		e.logf("[%s] %d earlier visits (untimed), then the storm", rowName(policy, kind), e.cfg.Clients)
	}
	cpu0 := c.cpu()
	run, err := e.open(ctx, c, policy, e.cfg.Clients, "u")
	if err != nil {
		return StormRow{}, err
	}
	cpu1 := c.cpu()
	defer run.Close()
	if c.returning {
		cpu0 = c.primedCPU // the timed storm only, not the earlier visits
	}
	res := run.Snapshot()
	row := StormRow{
		Policy: policy, TLS: kind != plainTCP, Resumed: kind == tlsReturning, PrimeFailed: run.PrimeFailed(),
		PerNode: res.PerNode, MaxMean: res.MaxMean, ElapsedMS: res.ElapsedMS,
		ConnectMS: res.ConnectMS, Failed: res.Failed, Errors: res.Errors, connect: millis(run.ConnectTimes()),
	}
	if row.TLS {
		h := run.Handshakes()
		row.Handshakes = &h
	}
	if cpu0 >= 0 && cpu1 >= cpu0 {
		row.NodesCPUMS = ms(cpu1 - cpu0)
	}
	if d := run.ClientCPU(); d >= 0 {
		row.ClientsCPUMS = ms(d)
	}
	return row, nil
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

// kind is how row's clients reached the nodes.
func (row StormRow) kind() tlsKind { return kindOf(row.TLS, row.Resumed) }

func (r *StormReport) finish() {
	for i, row := range r.Rows {
		if n := sumCounts(row.PerNode); n > 0 && row.NodesCPUMS > 0 {
			r.Rows[i].NodesCPUPerSessionMS = row.NodesCPUMS / float64(n)
		}
	}
	base := map[tlsKind]float64{} // the dns-only row's time, by kind
	plain := map[string]StormRow{}
	for _, row := range r.Rows {
		if row.Policy == pick.DNSOnly {
			base[row.kind()] = row.ElapsedMS
		}
		if !row.TLS {
			plain[row.Policy] = row
		}
	}
	for i, row := range r.Rows {
		if row.TLS {
			r.Rows[i].VsPlain = Ratio(row.ElapsedMS, plain[row.Policy].ElapsedMS)
			r.Rows[i].NodesCPUVsPlain = Ratio(r.Rows[i].NodesCPUPerSessionMS, plain[row.Policy].NodesCPUPerSessionMS)
		}
		if b := base[row.kind()]; b > 0 {
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
				What: fmt.Sprintf("storm: default time to attach all, TLS (%s) vs plain (issue 10)", row.kind().clients()), Want: "<= 1.5x",
				Got: fmt.Sprintf("%.0f ms / %.0f ms = %.2fx", row.ElapsedMS, p.ElapsedMS, row.VsPlain), Met: row.VsPlain <= 1.5 && row.Failed == 0 && p.Failed == 0,
			})
			if row.NodesCPUVsPlain > 0 {
				// Not the measure (the time) but its fair
				// proxy: here the clients' half of every handshake
				// shares the nodes' two cores.
				r.Targets = append(r.Targets, Target{
					What: fmt.Sprintf("storm: default nodes' CPU per session, TLS (%s) vs plain (issue 10's storm target, fair proxy: clients' CPU left out)", row.kind().clients()), Want: "<= 1.5x",
					Got: fmt.Sprintf("%.2f ms / %.2f ms = %.2fx", row.NodesCPUPerSessionMS, p.NodesCPUPerSessionMS, row.NodesCPUVsPlain), Met: row.NodesCPUVsPlain <= 1.5 && row.Failed == 0 && p.Failed == 0,
				})
			}
			continue
		}
		r.Targets = append(r.Targets, Target{
			What: "storm: default max/mean (issue 3 a)", Want: "<= 1.05",
			Got: f3(row.MaxMean), Met: row.MaxMean <= 1.05 && row.Failed == 0,
		})
		if b := base[plainTCP]; b > 0 {
			r.Targets = append(r.Targets, Target{
				What: "storm: default time to attach all vs dns-only (issue 3 a)", Want: "<= 1.5x",
				Got: fmt.Sprintf("%.0f ms / %.0f ms = %.2fx", row.ElapsedMS, b, row.VsDNSOnly), Met: row.VsDNSOnly <= 1.5,
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
		rows = append(rows, []string{rowName(row.Policy, row.kind()), perNode(row.PerNode), f3(row.MaxMean), fmt.Sprintf("%.0f", row.ElapsedMS), runsCell(row.ElapsedRunsMS, "%.0f"), vs,
			f1(row.ConnectMS.P50), f1(row.ConnectMS.P99), fmt.Sprint(row.Failed)})
	}
	table(w, []string{"policy", "sessions per node", "max/mean", "all attached ms", "every run ms", "vs dns-only", "connect p50 ms", "p99 ms", "failed"}, rows)
	if r.TLS {
		r.writeTLS(w)
	}
	writeTargets(w, r.Targets)
}

// writeTLS prints each policy's TLS rows against its plain row.
func (r *StormReport) writeTLS(w io.Writer) {
	plain := map[string]StormRow{}
	for _, row := range r.Rows {
		if !row.TLS {
			plain[row.Policy] = row
		}
	}
	fmt.Fprintf(w, "\nTLS on the client listener vs plain TCP, interleaved runs (%s: %s; %s: %s, each with a ticket from an untimed earlier visit of its own):\n\n",
		tlsSuffix, tlsFirstTime.clients(), resumedSuffix, tlsReturning.clients())
	var rows [][]string
	for _, row := range r.Rows {
		if !row.TLS {
			continue
		}
		p := plain[row.Policy]
		rows = append(rows, []string{rowName(row.Policy, row.kind()), fmt.Sprintf("%.0f", p.ElapsedMS), fmt.Sprintf("%.0f", row.ElapsedMS), f2(row.VsPlain) + "x",
			f1(p.ConnectMS.P50), f1(row.ConnectMS.P50), f1(p.ConnectMS.P99), f1(row.ConnectMS.P99), handshakesCell(row.Handshakes),
			cpuCell(p), cpuCell(row), perSessionCell(p, row)})
	}
	table(w, []string{"policy", "plain all attached ms", "tls ms", "tls/plain", "plain connect p50 ms", "tls p50 ms", "plain p99 ms", "tls p99 ms", "handshakes resumed",
		"plain cpu s nodes+clients", "tls cpu s nodes+clients", "nodes cpu ms/session plain, tls (tls/plain)"}, rows)
}

// Charts implements Report.
func (r *StormReport) Charts() []Chart {
	var policies []string
	var counts []map[string]int
	var mm, el []float64
	var cdf []chart.Series
	for _, row := range r.Rows {
		policies = append(policies, rowName(row.Policy, row.kind()))
		counts = append(counts, row.PerNode)
		mm = append(mm, row.MaxMean)
		el = append(el, row.ElapsedMS)
		cdf = append(cdf, chart.CDF(rowName(row.Policy, row.kind()), row.connect))
	}
	title := fmt.Sprintf("storm: %d sessions, %d nodes", r.Clients, r.Nodes)
	return []Chart{
		{"storm-users", usersBars(title+": sessions per node", policies, counts).Render},
		{"storm-maxmean", valueBars(title+": max/mean", "max/mean", policies, chart.BarSeries{Name: "max/mean", Values: mm}).Render},
		{"storm-elapsed", valueBars(title+": time to attach all", "ms", policies, chart.BarSeries{Name: "all attached", Values: el}).Render},
		{"storm-connect", chart.Line{Title: title + ": connect latency (CDF)", XLabel: "connect ms", YLabel: "fraction of sessions", Series: cdf}.Render},
	}
}
