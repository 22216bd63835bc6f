package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// RebalanceReport is the rebalance scenario: Nodes nodes with
// --rebalance-threshold 0.05 hold Clients sessions; one more node joins
// and no session arrives. The loaded nodes shed their surplus to it
// (make-before-break moves); measured: how long until max/mean over all
// nodes is at most 1.05, how many sessions moved, and whether any moved
// twice or dropped.
type RebalanceReport struct {
	Scenario string         `json:"scenario"`
	Nodes    int            `json:"nodes"`
	Clients  int            `json:"clients"`
	Rows     []RebalanceRow `json:"policies"`
	Targets  []Target       `json:"targets"`
}

// RebalanceRow is one policy's run.
type RebalanceRow struct {
	Policy string         `json:"policy"`
	Before map[string]int `json:"before"`
	After  map[string]int `json:"after"`
	// BalancedMS is the time from the join until max/mean <= 1.05 (-1:
	// not within a minute), MaxMean the max/mean at the end.
	BalancedMS float64 `json:"balanced_ms"`
	MaxMean    float64 `json:"max_mean"`
	// Moved counts the sessions that moved, Twice those that moved more
	// than once, Dropped those that lost their connection.
	Moved   int `json:"moved"`
	Twice   int `json:"moved_twice"`
	Dropped int `json:"dropped"`
}

// rebalanceArgs are the serve flags of the scenario's nodes: the
// threshold of the target, and a minimum age the sessions pass before
// the join (they are fresh).
var rebalanceArgs = []string{"--rebalance-threshold", "0.05", "--rebalance-min-age", "5s"}

func runRebalance(ctx context.Context, e *env) (Report, error) {
	rep := &RebalanceReport{Scenario: "rebalance", Nodes: e.cfg.Nodes, Clients: e.cfg.Clients}
	saved := e.cfg.NodeArgs
	e.cfg.NodeArgs = slices.Concat(saved, rebalanceArgs)
	defer func() { e.cfg.NodeArgs = saved }()
	for _, p := range e.cfg.Policies {
		row, err := e.rebalance(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("bench: rebalance, %s: %w", p, err)
		}
		e.logf("[%s] balanced after %.1f s: %s; %d moved, %d twice, %d dropped", p, row.BalancedMS/1000, perNode(row.After), row.Moved, row.Twice, row.Dropped)
		rep.Rows = append(rep.Rows, row)
		rep.Targets = append(rep.Targets,
			Target{What: "rebalance, " + p + ": max/mean <= 1.05 within 30 s of the join, no arrivals", Want: "<= 30 s", Got: f1(row.BalancedMS/1000) + " s", Met: row.BalancedMS >= 0 && row.BalancedMS <= 30000},
			Target{What: "rebalance, " + p + ": sessions moved twice, dropped", Want: "0, 0", Got: fmt.Sprintf("%d, %d", row.Twice, row.Dropped), Met: row.Twice == 0 && row.Dropped == 0})
	}
	return rep, nil
}

func (e *env) rebalance(ctx context.Context, policy string) (RebalanceRow, error) {
	row := RebalanceRow{Policy: policy, BalancedMS: -1}
	c, err := e.start(ctx, e.cfg.Nodes)
	if err != nil {
		return row, err
	}
	defer c.stop(ctx)
	if c.local == nil {
		return row, fmt.Errorf("rebalance needs a local cluster")
	}
	run, err := e.open(ctx, c, policy, e.cfg.Clients, "u")
	if err != nil {
		return row, err
	}
	defer run.Close()
	if err := c.awaitUsers(ctx, run.Snapshot().Attached); err != nil {
		return row, err
	}
	if row.Before, err = c.users(ctx); err != nil {
		return row, err
	}
	// The sessions pass --rebalance-min-age, and a balanced cluster
	// moves nothing meanwhile.
	if err := sleepCtx(ctx, 6*time.Second); err != nil {
		return row, err
	}
	if _, err := c.local.Add(ctx); err != nil {
		return row, err
	}
	joined := time.Now()
	e.logf("[%s] %s; a node joined", policy, perNode(row.Before))
	err = awaitFor(ctx, time.Minute, func(ctx context.Context) error {
		users, err := c.users(ctx)
		if err != nil {
			return err
		}
		if len(users) != e.cfg.Nodes+1 {
			return fmt.Errorf("%d nodes up", len(users))
		}
		if mm := MaxMeanOf(users, nil); mm > 1.05 {
			return fmt.Errorf("max/mean %.3f: %s", mm, perNode(users))
		}
		return nil
	})
	if err == nil {
		row.BalancedMS = ms(time.Since(joined))
	} else {
		e.logf("[%s] not balanced within a minute: %v", policy, err)
	}
	// Watch a while longer: nothing may move back.
	if err := sleepCtx(ctx, 10*time.Second); err != nil {
		return row, err
	}
	if row.After, err = c.users(ctx); err != nil {
		return row, err
	}
	row.MaxMean = MaxMeanOf(row.After, nil)
	for _, s := range run.Sessions() {
		if s == nil {
			continue
		}
		if m := s.Moves(); m > 0 {
			row.Moved++
			if m > 1 {
				row.Twice++
			}
		}
	}
	delays, pending := run.ReattachDelays(joined)
	row.Dropped = len(delays) + pending
	return row, nil
}

// WriteTable implements Report.
func (r *RebalanceReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "rebalance: %d nodes (--rebalance-threshold 0.05) hold %d sessions; one more node joins, no session arrives\n\n", r.Nodes, r.Clients)
	var rows [][]string
	for _, row := range r.Rows {
		bal := "never"
		if row.BalancedMS >= 0 {
			bal = f1(row.BalancedMS / 1000)
		}
		rows = append(rows, []string{row.Policy, perNode(row.Before), bal, perNode(row.After), f3(row.MaxMean),
			fmt.Sprint(row.Moved), fmt.Sprint(row.Twice), fmt.Sprint(row.Dropped)})
	}
	table(w, []string{"policy", "before", "max/mean <= 1.05 after s", "after", "max/mean", "moved", "moved twice", "dropped"}, rows)
	writeTargets(w, r.Targets)
}

// Charts implements Report.
func (r *RebalanceReport) Charts() []Chart { return nil }
