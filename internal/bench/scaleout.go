package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/switchboard/switchboard/internal/chart"
)

// ScaleoutReport is the scaleout scenario: Nodes nodes hold Clients
// sessions, one more node joins, then Arrivals sessions arrive.
type ScaleoutReport struct {
	Scenario    string        `json:"scenario"`
	Nodes       int           `json:"nodes"`
	Clients     int           `json:"clients"`
	Arrivals    int           `json:"arrivals"`
	Concurrency int           `json:"concurrency"`
	Common      string        `json:"common_address"`
	Tracker     bool          `json:"tracker"`
	Repeat      int           `json:"repeat"`
	Rows        []ScaleoutRow `json:"policies"`
	Targets     []Target      `json:"targets"`
	// Timeline is the first policy's users per node from the join on.
	Timeline       Timeline `json:"timeline"`
	TimelinePolicy string   `json:"timeline_policy"`
}

// ScaleoutRow is one policy's scale-out.
type ScaleoutRow struct {
	Policy string `json:"policy"`
	// Before is the sessions per node before the join.
	Before map[string]int `json:"before"`
	// Arrived is where the arrivals went.
	Arrived map[string]int `json:"arrived"`
	// PerNode is the sessions per node at the end.
	PerNode map[string]int `json:"per_node"`
	// MaxMean is over PerNode, the new node included. With Repeat, the
	// row is the run with the median max/mean, and MaxMeanRuns lists
	// every run's.
	MaxMean     float64   `json:"max_mean"`
	MaxMeanRuns []float64 `json:"max_mean_runs,omitempty"`
	// NewNode is the node that joined.
	NewNode   string      `json:"new_node"`
	ArrivalMS Percentiles `json:"arrival_connect_ms"`
	Failed    int         `json:"failed"`
	Errors    []string    `json:"errors,omitempty"`
}

func runScaleout(ctx context.Context, e *env) (Report, error) {
	rep := &ScaleoutReport{Scenario: "scaleout", Nodes: e.cfg.Nodes, Clients: e.cfg.Clients, Arrivals: e.cfg.Arrivals,
		Concurrency: e.cfg.Concurrency, Common: e.common(), Tracker: !e.cfg.NoTracker, Repeat: e.cfg.Repeat}
	type result struct {
		row ScaleoutRow
		tl  Timeline
	}
	runs, err := repeat(e, func(p string) (result, error) {
		var r result
		var err error
		if isNATS(p) {
			r.row, err = e.scaleoutNATS(ctx, p)
		} else {
			r.row, r.tl, err = e.scaleout(ctx, p)
		}
		if err == nil {
			e.logf("[%s] end max/mean %.3f: %s; arrival p50 %.1f ms, p99 %.1f ms, failed %d", p, r.row.MaxMean, perNode(r.row.PerNode), r.row.ArrivalMS.P50, r.row.ArrivalMS.P99, r.row.Failed)
		}
		return r, err
	})
	if err != nil {
		return nil, err
	}
	for _, p := range e.cfg.Policies {
		r, keys := MedianBy(runs[p], func(r result) float64 { return r.row.MaxMean })
		if len(keys) > 1 {
			r.row.MaxMeanRuns = keys
		}
		if rep.TimelinePolicy == "" && !isNATS(p) {
			rep.Timeline, rep.TimelinePolicy = r.tl, p
		}
		rep.Rows = append(rep.Rows, r.row)
	}
	for _, row := range rep.Rows {
		if row.Policy == "default" {
			rep.Targets = append(rep.Targets, Target{What: "scaleout: default max/mean at the end (issue 3 b)", Want: "<= 1.05",
				Got: withWorst(row.MaxMean, row.MaxMeanRuns), Met: worst(row.MaxMean, row.MaxMeanRuns) <= 1.05 && row.Failed == 0})
		}
	}
	return rep, nil
}

func (e *env) scaleout(ctx context.Context, policy string) (ScaleoutRow, Timeline, error) {
	row := ScaleoutRow{Policy: policy}
	c, err := e.start(ctx, e.cfg.Nodes)
	if err != nil {
		return row, Timeline{}, err
	}
	defer c.stop(ctx)
	run1, err := e.open(ctx, c, policy, e.cfg.Clients, "u")
	if err != nil {
		return row, Timeline{}, err
	}
	defer run1.Close()
	// Every session that attached is counted once it is back (a
	// heartbeat on a loaded machine may have moved a few meanwhile).
	if err := c.awaitUsers(ctx, e.cfg.Clients-run1.Snapshot().Failed); err != nil {
		return row, Timeline{}, err
	}
	first := run1.Snapshot()
	e.logf("[%s] %s; a node joins", policy, perNode(first.PerNode))
	stopTL := sampleUsers(ctx, c, c.local.Nodes[0].HTTP, 20*time.Millisecond)
	n, err := c.local.Add(ctx)
	if err != nil {
		stopTL()
		return row, Timeline{}, err
	}
	row.NewNode = n.ID
	run2, err := e.open(ctx, c, policy, e.cfg.Arrivals, "v")
	if err != nil {
		stopTL()
		return row, Timeline{}, err
	}
	defer run2.Close()
	_ = c.awaitUsers(ctx, e.cfg.Clients-first.Failed+e.cfg.Arrivals-run2.Snapshot().Failed)
	second := run2.Snapshot()
	time.Sleep(100 * time.Millisecond) // a few more samples of the end state
	tl := stopTL()
	row.Before = first.PerNode
	delete(row.Before, n.ID)
	row.Arrived = second.PerNode
	row.PerNode = Merge(run1.Snapshot().PerNode, second.PerNode)
	row.MaxMean = MaxMeanOf(row.PerNode, nil)
	row.ArrivalMS = second.ConnectMS
	row.Failed = first.Failed + second.Failed
	row.Errors = append(first.Errors, second.Errors...)
	return row, tl, nil
}

// awaitUsers waits until the directory counts want users in all.
func (c *cluster) awaitUsers(ctx context.Context, want int) error {
	return awaitFor(ctx, 10*time.Second, func(ctx context.Context) error {
		users, err := c.users(ctx)
		if err != nil {
			return err
		}
		if got := sumCounts(users) - c.base; got != want {
			return fmt.Errorf("the directory counts %d users, want %d", got, want)
		}
		return nil
	})
}

// scaleoutNATS is scaleout for a NATS baseline. The arrivals after the
// join are given the URLs as they are then: the nats baseline's list
// names the new server, and the nats-dns name resolves to it too, as an
// operator who adds a server would have it.
func (e *env) scaleoutNATS(ctx context.Context, policy string) (ScaleoutRow, error) {
	row := ScaleoutRow{Policy: policy}
	nc, err := e.startNATS(ctx, e.cfg.Nodes)
	if err != nil {
		return row, err
	}
	defer nc.stop()
	cl1, err := e.natsConnect(ctx, policy, e.cfg.Clients, e.natsEntry(policy, nc))
	if err != nil {
		return row, err
	}
	defer cl1.close()
	if row.Before, err = nc.awaitClients(ctx, cl1); err != nil {
		return row, err
	}
	e.logf("[%s] %s; a server joins", policy, perNode(row.Before))
	if err := nc.add(ctx); err != nil {
		return row, err
	}
	row.NewNode = nc.ids()[len(nc.procs)-1]
	cl2, err := e.natsConnect(ctx, policy, e.cfg.Arrivals, e.natsEntry(policy, nc))
	if err != nil {
		return row, err
	}
	defer cl2.close()
	if row.PerNode, err = nc.awaitClients(ctx, cl1, cl2); err != nil {
		return row, err
	}
	row.Arrived = Diff(row.PerNode, row.Before)
	row.MaxMean = MaxMeanOf(row.PerNode, nil)
	row.ArrivalMS = Summarize(cl2.connectTimes())
	row.Failed = cl1.failed + cl2.failed
	row.Errors = append(cl1.errs, cl2.errs...)
	return row, nil
}

// WriteTable implements Report.
func (r *ScaleoutReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "scaleout: %d nodes hold %d sessions, a node joins, %d sessions arrive through %s; median of %d runs by max/mean\n\n", r.Nodes, r.Clients, r.Arrivals, r.Common, r.Repeat)
	var rows [][]string
	for _, row := range r.Rows {
		rows = append(rows, []string{row.Policy, perNode(row.Before), perNode(row.Arrived), row.NewNode, perNode(row.PerNode),
			f3(row.MaxMean), runsCell(row.MaxMeanRuns, "%.3f"), f1(row.ArrivalMS.P50), f1(row.ArrivalMS.P99), fmt.Sprint(row.Failed)})
	}
	table(w, []string{"policy", "before", "arrivals went to", "new", "at the end", "max/mean", "every run", "arrival p50 ms", "p99 ms", "failed"}, rows)
	writeTargets(w, r.Targets)
}

// Charts implements Report.
func (r *ScaleoutReport) Charts() []Chart {
	var policies []string
	var counts []map[string]int
	var mm []float64
	for _, row := range r.Rows {
		policies = append(policies, row.Policy)
		counts = append(counts, row.PerNode)
		mm = append(mm, row.MaxMean)
	}
	title := fmt.Sprintf("scaleout: %d+%d sessions, %d+1 nodes", r.Clients, r.Arrivals, r.Nodes)
	out := []Chart{
		{"scaleout-users", usersBars(title+": sessions per node at the end", policies, counts).Render},
		{"scaleout-maxmean", valueBars(title+": max/mean at the end", "max/mean", policies, chart.BarSeries{Name: "max/mean", Values: mm}).Render},
	}
	if len(r.Timeline.T) > 0 {
		out = append(out, Chart{"scaleout-timeline", r.Timeline.chart(fmt.Sprintf("scaleout, %s: sessions per node from the join on", r.TimelinePolicy)).Render})
	}
	return out
}
