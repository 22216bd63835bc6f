package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// DrainReport is the drain scenario: Nodes nodes hold Clients sessions;
// the most loaded node is told to drain (POST /v1/drain), then Arrivals
// sessions arrive. Draining keeps the sessions a node holds and admits no
// new one.
type DrainReport struct {
	Scenario    string     `json:"scenario"`
	Nodes       int        `json:"nodes"`
	Clients     int        `json:"clients"`
	Arrivals    int        `json:"arrivals"`
	Concurrency int        `json:"concurrency"`
	Common      string     `json:"common_address"`
	Rows        []DrainRow `json:"policies"`
	Targets     []Target   `json:"targets"`
}

// DrainRow is one policy's drain.
type DrainRow struct {
	Policy  string `json:"policy"`
	Drained string `json:"drained"`
	// SeenMS is how long after the POST every node listed it draining.
	SeenMS float64 `json:"seen_draining_ms"`
	// HeldBefore and HeldAfter are its sessions before the drain and at
	// the end (draining keeps them).
	HeldBefore int `json:"held_before"`
	HeldAfter  int `json:"held_after"`
	// Landed counts arrivals attached to the draining node (want 0).
	Landed int `json:"landed_on_drained"`
	// Arrived is where the arrivals went, and ArrivedMaxMean their
	// max/mean over the other nodes.
	Arrived        map[string]int `json:"arrived"`
	ArrivedMaxMean float64        `json:"arrived_max_mean"`
	// PerNode is the sessions per node at the end, and MaxMean over the
	// nodes not draining.
	PerNode   map[string]int `json:"per_node"`
	MaxMean   float64        `json:"max_mean"`
	ArrivalMS Percentiles    `json:"arrival_connect_ms"`
	Failed    int            `json:"failed"`
	Errors    []string       `json:"errors,omitempty"`
}

func runDrain(ctx context.Context, e *env) (Report, error) {
	rep := &DrainReport{Scenario: "drain", Nodes: e.cfg.Nodes, Clients: e.cfg.Clients, Arrivals: e.cfg.Arrivals, Concurrency: e.cfg.Concurrency, Common: e.common()}
	for _, p := range e.cfg.Policies {
		if p == NATS {
			e.logf("[nats] skipped: NATS has no drain to compare")
			continue
		}
		row, err := e.drain(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("bench: drain, %s: %w", p, err)
		}
		e.logf("[%s] %d arrivals landed on the draining %s; arrivals %s", p, row.Landed, row.Drained, perNode(row.Arrived))
		rep.Rows = append(rep.Rows, row)
	}
	if e.cfg.Service != "" && len(rep.Rows) > 0 {
		rep.Nodes = len(rep.Rows[0].PerNode) // the running service's
	}
	for _, row := range rep.Rows {
		rep.Targets = append(rep.Targets,
			Target{What: "drain, " + row.Policy + ": arrivals on the draining node", Want: "0", Got: fmt.Sprint(row.Landed), Met: row.Landed == 0 && row.Failed == 0},
			Target{What: "drain, " + row.Policy + ": sessions kept on the draining node", Want: fmt.Sprint(row.HeldBefore), Got: fmt.Sprint(row.HeldAfter), Met: row.HeldAfter == row.HeldBefore})
	}
	return rep, nil
}

func (e *env) drain(ctx context.Context, policy string) (DrainRow, error) {
	row := DrainRow{Policy: policy}
	c, err := e.start(ctx, e.cfg.Nodes)
	if err != nil {
		return row, err
	}
	defer c.stop(ctx)
	run1, err := e.open(ctx, c, policy, e.cfg.Clients, "u")
	if err != nil {
		return row, err
	}
	defer run1.Close()
	first := run1.Snapshot()
	if err := c.awaitUsers(ctx, first.Attached); err != nil {
		return row, err
	}
	dir, err := c.directory(ctx)
	if err != nil {
		return row, err
	}
	var spare []string
	if c.local != nil && e.cfg.Common == "dns" {
		spare = append(spare, c.local.Nodes[0].ID) // it answers the DNS queries
	}
	row.Drained = victim(first.PerNode, spare...)
	row.HeldBefore = first.PerNode[row.Drained]
	var httpAddr string
	for _, n := range dir.Nodes {
		if n.ID == row.Drained {
			httpAddr = n.HTTP
		}
	}
	if httpAddr == "" {
		return row, fmt.Errorf("the directory gives no HTTP address for %s", row.Drained)
	}
	e.logf("[%s] %s; drain %s", policy, perNode(first.PerNode), row.Drained)
	t0 := time.Now()
	if err := post(ctx, c.http, http.MethodPost, "http://"+httpAddr+"/v1/drain"); err != nil {
		return row, err
	}
	if c.local == nil {
		defer post(context.WithoutCancel(ctx), c.http, http.MethodDelete, "http://"+httpAddr+"/v1/drain")
	}
	if err := c.awaitStatus(ctx, row.Drained, directory.Draining); err != nil {
		return row, err
	}
	row.SeenMS = ms(time.Since(t0))
	run2, err := e.open(ctx, c, policy, e.cfg.Arrivals, "d")
	if err != nil {
		return row, err
	}
	defer run2.Close()
	second := run2.Snapshot()
	row.Arrived = second.PerNode
	row.Landed = second.PerNode[row.Drained]
	notDrained := func(id string) bool { return id != row.Drained }
	row.ArrivedMaxMean = MaxMeanOf(row.Arrived, notDrained)
	row.PerNode = Merge(run1.Snapshot().PerNode, second.PerNode)
	row.HeldAfter = row.PerNode[row.Drained] - row.Landed
	row.MaxMean = MaxMeanOf(row.PerNode, notDrained)
	row.ArrivalMS = second.ConnectMS
	row.Failed = first.Failed + second.Failed
	row.Errors = append(first.Errors, second.Errors...)
	return row, nil
}

// awaitStatus waits until every live node lists id with status st (on a
// running service: the node that answers).
func (c *cluster) awaitStatus(ctx context.Context, id string, st directory.Status) error {
	return awaitFor(ctx, 10*time.Second, func(ctx context.Context) error {
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
	fmt.Fprintf(w, "drain: %d nodes hold %d sessions; POST /v1/drain to the most loaded; %d sessions arrive through %s\n\n", r.Nodes, r.Clients, r.Arrivals, r.Common)
	var rows [][]string
	for _, row := range r.Rows {
		rows = append(rows, []string{row.Policy, row.Drained, f1(row.SeenMS), fmt.Sprintf("%d -> %d", row.HeldBefore, row.HeldAfter),
			fmt.Sprint(row.Landed), perNode(row.Arrived), f3(row.ArrivedMaxMean), perNode(row.PerNode), f3(row.MaxMean), fmt.Sprint(row.Failed)})
	}
	table(w, []string{"policy", "drained", "all see it ms", "its sessions", "landed on it", "arrivals went to", "arrivals max/mean", "at the end", "others max/mean", "failed"}, rows)
	writeTargets(w, r.Targets)
}

// Charts implements Report.
func (r *DrainReport) Charts() []Chart {
	var policies []string
	var arrived []map[string]int
	for _, row := range r.Rows {
		policies = append(policies, row.Policy)
		arrived = append(arrived, row.Arrived)
	}
	title := fmt.Sprintf("drain: %d arrivals after one of %d nodes drains", r.Arrivals, r.Nodes)
	return []Chart{
		{"drain-arrivals", usersBars(title+": where they went", policies, arrived).Render},
	}
}
