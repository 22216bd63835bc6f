package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// DrainReport is the drain scenario: Nodes nodes hold Clients idle
// sessions and Rooms x RoomSize typists; the busiest node (not the one
// whose DNS responder the clients ask) is drained to empty within Within
// (POST /v1/drain?within=): its sessions move to the other nodes,
// make-before-break. Measured: the time until the node reported itself
// empty, the sessions moved a second, the sessions that dropped (want
// none), where they went, and the typists' lost and doubled chunks and
// keystroke latency meanwhile. The nats row does the same to a cluster of
// nats-server processes holding Clients nats.go connections with
// nats-server's lame duck mode (SIGUSR2) and lame_duck_duration Within:
// the server closes its clients over the duration and they reconnect to
// the other servers at random.
type DrainReport struct {
	Scenario string     `json:"scenario"`
	Nodes    int        `json:"nodes"`
	Clients  int        `json:"clients"`
	Typists  int        `json:"typists"`
	Rate     float64    `json:"chars_per_second"`
	WithinMS float64    `json:"within_ms"`
	Rows     []DrainRow `json:"rows"`
	Targets  []Target   `json:"targets"`
}

// DrainRow is one drain: a policy's (the idle sessions pick with it) or
// the nats baseline's.
type DrainRow struct {
	Policy  string   `json:"policy"`
	Drained string   `json:"drained"`
	Step    RollStep `json:"drain"`
	// Dropped counts sessions that lost their connection (a NATS client
	// closed by its server; a Switchboard session that could not move);
	// Gap is, for each, the time from the drop until it was connected
	// again, and Pending those not back at the end.
	Dropped int         `json:"dropped"`
	Gap     Percentiles `json:"gap_ms"`
	Pending int         `json:"pending"`
	// Moved counts the sessions that moved without a drop.
	Moved int `json:"moved"`
	// Before and After are the sessions per node before and after, and
	// MaxMean the max/mean of After over the nodes left.
	Before  map[string]int `json:"before"`
	After   map[string]int `json:"after"`
	MaxMean float64        `json:"max_mean_after"`
	// Keystroke and Result are the typists' (Switchboard rows only):
	// keystroke to screen while the node drained, and the text checks.
	Keystroke Percentiles  `json:"keystroke_ms"`
	Samples   int          `json:"samples"`
	Result    *FaultCounts `json:"result,omitempty"`
}

func runDrain(ctx context.Context, e *env) (Report, error) {
	cfg := e.cfg
	within := cmpDuration(cfg.Within, rollWithin)
	rep := &DrainReport{Scenario: "drain", Nodes: cfg.Nodes, Clients: cfg.Clients, Typists: cfg.Rooms * cfg.RoomSize, Rate: cfg.Rate, WithinMS: ms(within)}
	for _, p := range cfg.Policies {
		var row DrainRow
		var err error
		if isNATS(p) {
			row, err = e.drainNATS(ctx, within)
		} else {
			row, err = e.drainEmpty(ctx, p, within)
		}
		if err != nil {
			return nil, fmt.Errorf("bench: drain, %s: %w", p, err)
		}
		e.logf("[%s] %s empty after %.1f s (%s), %.0f sessions/s, %d dropped; after %s", p, row.Drained, row.Step.EmptyMS/1000, row.Step.Reason,
			row.Step.MovedPerS, row.Dropped, perNode(row.After))
		rep.Rows = append(rep.Rows, row)
		if row.Result != nil {
			rep.Targets = append(rep.Targets, typingTargets("drain, "+p, *row.Result, row.Dropped, row.Keystroke)...)
			rep.Targets = append(rep.Targets, Target{What: "drain, " + p + ": the node empty by the deadline", Want: "empty", Got: row.Step.Reason, Met: row.Step.Reason == "empty"})
		}
	}
	return rep, nil
}

// drainEmpty is one Switchboard row.
func (e *env) drainEmpty(ctx context.Context, policy string, within time.Duration) (DrainRow, error) {
	row := DrainRow{Policy: policy}
	c, err := e.start(ctx, e.cfg.Nodes)
	if err != nil {
		return row, err
	}
	defer c.stop(ctx)
	if c.local == nil {
		return row, fmt.Errorf("drain needs a local cluster")
	}
	idle, err := e.open(ctx, c, policy, e.cfg.Clients, "u")
	if err != nil {
		return row, err
	}
	defer idle.Close()
	tp, err := startTyping(ctx, e, c.local, within+30*time.Second)
	if err != nil {
		return row, err
	}
	defer tp.close()
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return row, err
	}
	row.Before = Merge(idle.Snapshot().PerNode, tp.perNode())
	var spare []string
	if e.cfg.Common == "dns" {
		spare = append(spare, c.local.Nodes[0].ID) // it answers the DNS queries
	}
	row.Drained = victim(row.Before, spare...)
	var target = c.local.Nodes[0]
	for _, n := range c.local.Nodes {
		if n.ID == row.Drained {
			target = n
		}
	}
	e.logf("[%s] %s; drain %s within %v", policy, perNode(row.Before), row.Drained, within)
	tp.mark()
	t0 := time.Now()
	row.Step, err = drainNode(ctx, &http.Client{Timeout: 10 * time.Second}, target, within)
	if err != nil {
		return row, err
	}
	empty := time.Now()
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return row, err
	}
	delays, pending := idle.ReattachDelays(t0)
	moves, drops := tp.moves()
	for _, s := range idle.Sessions() {
		if s != nil {
			moves += s.Moves()
		}
	}
	row.Moved, row.Dropped, row.Pending = moves, len(delays)+pending+drops, pending
	row.Gap = Summarize(delays)
	row.After = Merge(idle.Snapshot().PerNode, tp.perNode())
	delete(row.After, row.Drained)
	row.MaxMean = MaxMeanOf(row.After, func(id string) bool { return id != row.Drained })
	row.Keystroke, row.Samples = tp.keys.between(t0, empty)
	res := tp.finish(ctx)
	row.Result = &res
	return row, nil
}

// drainNATS is the nats row: lame duck mode on the busiest nats-server.
func (e *env) drainNATS(ctx context.Context, within time.Duration) (DrainRow, error) {
	row := DrainRow{Policy: NATS}
	// lame_duck_duration may not be under 30 s; its grace period (10 s by
	// default) comes first and counts in it.
	dur := max(within, 30*time.Second)
	dir, err := os.MkdirTemp("", "switchboard-bench-ldm-")
	if err != nil {
		return row, err
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "ldm.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "lame_duck_duration: %q\n", dur.String()), 0o600); err != nil {
		return row, err
	}
	c, err := e.startNATSWith(ctx, e.cfg.Nodes, "-c", conf)
	if err != nil {
		return row, err
	}
	defer c.stop()
	nc, err := e.natsConnect(ctx, NATS, e.cfg.Clients, e.natsEntry(NATS, c))
	if err != nil {
		return row, err
	}
	defer nc.close()
	if row.Before, err = c.awaitCounts(ctx, nc.opened()); err != nil {
		return row, err
	}
	row.Drained = victim(row.Before)
	row.Step = RollStep{Node: row.Drained, Sessions: row.Before[row.Drained], Asked: row.Before[row.Drained]}
	var proc *natsProc
	for _, p := range c.procs {
		if p.id == row.Drained {
			proc = p
		}
	}
	e.logf("[nats] %s; lame duck mode on %s (lame_duck_duration %v, grace 10 s)", perNode(row.Before), row.Drained, dur)
	t0 := time.Now()
	if err := proc.cmd.Process.Signal(sigLameDuck); err != nil {
		return row, err
	}
	select {
	case <-proc.exited:
	case <-time.After(dur + 30*time.Second):
		return row, fmt.Errorf("nats-server %s still runs %v after lame duck mode began", row.Drained, dur+30*time.Second)
	case <-ctx.Done():
		return row, ctx.Err()
	}
	took := time.Since(t0)
	row.Step.EmptyMS = ms(took)
	row.Step.MovedPerS = float64(row.Step.Asked) / took.Seconds()
	row.Step.Reason = "exited"
	if row.After, err = c.awaitCounts(ctx, nc.opened()); err != nil {
		e.logf("[nats] not every client is back: %v", err)
		row.After, _ = c.counts(ctx)
	}
	row.MaxMean = MaxMeanOf(row.After, func(id string) bool { return id != row.Drained })
	nc.mu.Lock()
	var gaps []time.Duration
	for i, d := range nc.drops {
		if d.IsZero() || d.Before(t0) {
			continue
		}
		row.Dropped++
		if r := nc.reconnects[i]; r.After(d) {
			gaps = append(gaps, r.Sub(d))
		} else {
			row.Pending++
		}
	}
	nc.mu.Unlock()
	row.Gap = Summarize(gaps)
	return row, nil
}

// awaitStatus waits until every live node lists id with status st (on a
// running service: the node that answers).
func (c *cluster) awaitStatus(ctx context.Context, id string, st directory.Status) error {
	return awaitFor(ctx, 30*time.Second, func(ctx context.Context) error {
		var dirs []func(context.Context) (directory.Status, error)
		if c.local != nil {
			for _, n := range c.local.Nodes {
				if n.Alive() {
					dirs = append(dirs, func(ctx context.Context) (directory.Status, error) { return n.Status(ctx, id) })
				}
			}
		} else {
			dirs = append(dirs, func(ctx context.Context) (directory.Status, error) {
				d, err := c.directory(ctx)
				if err != nil {
					return "", err
				}
				for _, n := range d.Nodes {
					if n.ID == id {
						return n.Status, nil
					}
				}
				return "", nil
			})
		}
		for _, get := range dirs {
			got, err := get(ctx)
			if err != nil {
				return err
			}
			if got != st {
				return fmt.Errorf("%s is %q, want %q", id, got, st)
			}
		}
		return nil
	})
}

// WriteTable implements Report.
func (r *DrainReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "drain: %d nodes hold %d idle sessions and %d typists (%.0f chars/s); the busiest is drained to empty within %.0f s (nats: lame duck mode, lame_duck_duration max(30 s, that))\n\n",
		r.Nodes, r.Clients, r.Typists, r.Rate, r.WithinMS/1000)
	var rows [][]string
	for _, row := range r.Rows {
		key := "-"
		if row.Result != nil {
			key = fmt.Sprintf("%s / %s", f1(row.Keystroke.P50), f1(row.Keystroke.P99))
		}
		rows = append(rows, []string{row.Policy, row.Drained, fmt.Sprint(row.Step.Sessions), f1(row.Step.EmptyMS / 1000), f1(row.Step.MovedPerS),
			fmt.Sprint(row.Moved), fmt.Sprint(row.Dropped), fmt.Sprintf("%s / %s / %s", f1(row.Gap.P50), f1(row.Gap.P99), f1(row.Gap.Max)),
			fmt.Sprint(row.Pending), perNode(row.Before), perNode(row.After), f3(row.MaxMean), key})
	}
	table(w, []string{"policy", "drained", "its sessions", "empty after s", "sessions/s", "moved", "dropped", "gap p50/p99/max ms", "not back", "before", "after", "after max/mean", "keystroke p50/p99 ms"}, rows)
	fmt.Fprintln(w)
	for _, row := range r.Rows {
		if row.Result != nil {
			fmt.Fprintf(w, "%s: typists' text\n", row.Policy)
			writeCounts(w, *row.Result)
		}
	}
	writeTargets(w, r.Targets)
}

// Charts implements Report.
func (r *DrainReport) Charts() []Chart { return nil }
