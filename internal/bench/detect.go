package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/chart"
	"github.com/switchboard/switchboard/internal/node"
)

// DetectReport is the detect scenario: how long after a kill -9 every
// peer lists the node down, over Kills kills of a fresh cluster each; and
// whether a live node under load is ever listed down.
type DetectReport struct {
	Scenario  string  `json:"scenario"`
	Nodes     int     `json:"nodes"`
	Heartbeat string  `json:"heartbeat"`
	PollMS    float64 `json:"poll_ms"`
	// Kills holds each kill's detection.
	Kills []Detection `json:"kills"`
	// AllMS summarises when every peer knew; FirstMS when the first did.
	AllMS   Percentiles `json:"all_peers_ms"`
	FirstMS Percentiles `json:"first_peer_ms"`
	Busy    BusyCheck   `json:"busy"`
	Targets []Target    `json:"targets"`
}

// BusyCheck is the false-down check: the bench saturates the CPUs and
// churns sessions on one node while watching every node's directory.
type BusyCheck struct {
	Seconds float64 `json:"seconds"`
	// Burners is how many goroutines spun in the bench process.
	Burners int `json:"burners"`
	// ChurnNode took Churn attach-and-detach cycles from ChurnWorkers
	// loops.
	ChurnNode    string `json:"churn_node"`
	ChurnWorkers int    `json:"churn_workers"`
	Churn        int    `json:"churn"`
	// Polls counts directory reads; FalseDowns the entries of live nodes
	// they listed down (want 0).
	Polls      int `json:"polls"`
	FalseDowns int `json:"false_downs"`
	// MaxAgeMS is the oldest entry of a live node seen, against the 3
	// heartbeats after which it is marked down.
	MaxAgeMS int64   `json:"max_age_ms"`
	DownMS   float64 `json:"down_after_ms"`
}

// detectPoll is how often the watchers read each peer's directory.
const detectPoll = 2 * time.Millisecond

func runDetect(ctx context.Context, e *env) (Report, error) {
	hb := e.cfg.Heartbeat
	if hb == 0 {
		hb = node.DefaultConfig().Heartbeat
	}
	rep := &DetectReport{Scenario: "detect", Nodes: e.cfg.Nodes, Heartbeat: hb.String(), PollMS: ms(detectPoll)}
	var all, first []time.Duration
	for k := range e.cfg.Kills {
		d, err := e.detectOnce(ctx)
		if err != nil {
			return nil, fmt.Errorf("bench: detect, kill %d: %w", k+1, err)
		}
		e.logf("kill %d/%d: first peer %.0f ms, every peer %.0f ms", k+1, e.cfg.Kills, d.FirstMS, d.AllMS)
		rep.Kills = append(rep.Kills, d)
		if d.Missed == 0 {
			all = append(all, time.Duration(d.AllMS*float64(time.Millisecond)))
		}
		first = append(first, time.Duration(d.FirstMS*float64(time.Millisecond)))
	}
	rep.AllMS, rep.FirstMS = Summarize(all), Summarize(first)
	missed := 0
	for _, d := range rep.Kills {
		missed += d.Missed
	}
	busy, err := e.busyCheck(ctx, hb)
	if err != nil {
		return nil, fmt.Errorf("bench: detect, busy: %w", err)
	}
	rep.Busy = busy
	rep.Targets = []Target{
		{What: "detect: kill -9 to down on every peer, max of the kills (issue 2 b)", Want: "<= 1 s",
			Got: fmt.Sprintf("p50 %.0f ms, p99 %.0f ms, max %.0f ms", rep.AllMS.P50, rep.AllMS.P99, rep.AllMS.Max), Met: missed == 0 && rep.AllMS.Max <= 1000},
		{What: "detect: false downs of a live node, CPU saturated and sessions churning (issue 2 b)", Want: "0",
			Got: fmt.Sprintf("%d in %d polls", busy.FalseDowns, busy.Polls), Met: busy.FalseDowns == 0},
	}
	return rep, nil
}

// detectOnce starts a cluster, kills its last node and times when each
// peer lists it down.
func (e *env) detectOnce(ctx context.Context) (Detection, error) {
	c, err := e.start(ctx, e.cfg.Nodes)
	if err != nil {
		return Detection{}, err
	}
	defer c.stop(ctx)
	nodes := c.local.Nodes
	dead := nodes[len(nodes)-1]
	peers := nodes[:len(nodes)-1]
	var killed atomic.Pointer[time.Time]
	seen := make([]time.Time, len(peers))
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			tick := time.NewTicker(detectPoll)
			defer tick.Stop()
			for {
				k := killed.Load()
				d, err := fetchHTTP(wctx, c.http, p.HTTP)
				if err == nil && k != nil && statusOf(d.Nodes, dead.ID) == directory.Down {
					seen[i] = time.Now()
					return
				}
				select {
				case <-wctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the watchers are polling
	t0 := time.Now()
	killed.Store(&t0)
	if err := c.local.Kill(len(nodes) - 1); err != nil {
		cancel()
		wg.Wait()
		return Detection{}, err
	}
	wg.Wait()
	return Detect(t0, seen), nil
}

func statusOf(nodes []directory.Node, id string) directory.Status {
	for _, n := range nodes {
		if n.ID == id {
			return n.Status
		}
	}
	return ""
}

// busyCheck saturates the CPUs with busy loops in this process and churns
// sessions on the first node for Config.Busy, while reading every node's
// directory every 10 ms; any live node listed down is a false down.
func (e *env) busyCheck(ctx context.Context, hb time.Duration) (BusyCheck, error) {
	c, err := e.start(ctx, e.cfg.Nodes)
	if err != nil {
		return BusyCheck{}, err
	}
	defer c.stop(ctx)
	nodes := c.local.Nodes
	res := BusyCheck{Seconds: e.cfg.Busy.Seconds(), Burners: runtime.NumCPU(), ChurnNode: nodes[0].ID, ChurnWorkers: 20, DownMS: ms(3 * hb)}
	e.logf("busy: %d burners, %d loops attaching and detaching on %s, watching for %v", res.Burners, res.ChurnWorkers, res.ChurnNode, e.cfg.Busy)
	bctx, cancel := context.WithTimeout(ctx, e.cfg.Busy)
	defer cancel()
	var wg sync.WaitGroup
	for range res.Burners {
		wg.Go(func() {
			x := uint64(1)
			for bctx.Err() == nil {
				for range 1 << 16 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			_ = x
		})
	}
	var churn atomic.Int64
	for w := range res.ChurnWorkers {
		wg.Go(func() {
			for i := 0; bctx.Err() == nil; i++ {
				conn, err := attachDirect(bctx, nodes[0].Addr, nil, fmt.Sprintf("churn%d-%d", w, i))
				if err != nil {
					continue
				}
				conn.Close()
				churn.Add(1)
			}
		})
	}
	var mu sync.Mutex
	for _, p := range nodes {
		wg.Go(func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-bctx.Done():
					return
				case <-tick.C:
				}
				d, err := fetchHTTP(bctx, c.http, p.HTTP)
				if err != nil {
					continue
				}
				mu.Lock()
				res.Polls++
				for _, n := range d.Nodes {
					if n.Status == directory.Down {
						res.FalseDowns++
					}
					res.MaxAgeMS = max(res.MaxAgeMS, n.AgeMS)
				}
				mu.Unlock()
			}
		})
	}
	progress, end := e.counter("busy, seconds", int(e.cfg.Busy.Seconds()))
	start := time.Now()
	for bctx.Err() == nil {
		select {
		case <-bctx.Done():
		case <-time.After(time.Second):
			progress(int(time.Since(start).Seconds()))
		}
	}
	end()
	wg.Wait()
	res.Churn = int(churn.Load())
	for i, n := range nodes {
		if !n.Alive() {
			return res, fmt.Errorf("node %d died during the busy check", i+1)
		}
	}
	return res, nil
}

// WriteTable implements Report.
func (r *DetectReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "detect: %d kills (kill -9 of the last of %d nodes, a fresh cluster each), heartbeat %s, every peer's /v1/directory read every %.0f ms\n\n",
		len(r.Kills), r.Nodes, r.Heartbeat, r.PollMS)
	table(w, []string{"", "p50 ms", "p90 ms", "p99 ms", "max ms"}, [][]string{
		{"first peer lists it down", f1(r.FirstMS.P50), f1(r.FirstMS.P90), f1(r.FirstMS.P99), f1(r.FirstMS.Max)},
		{"every peer lists it down", f1(r.AllMS.P50), f1(r.AllMS.P90), f1(r.AllMS.P99), f1(r.AllMS.Max)},
	})
	b := r.Busy
	fmt.Fprintf(w, "\nbusy: %.0f s with %d CPU burners in the bench process and %d loops attaching and detaching on %s (%d cycles);\n",
		b.Seconds, b.Burners, b.ChurnWorkers, b.ChurnNode, b.Churn)
	fmt.Fprintf(w, "%d directory reads, %d false downs, oldest entry of a live node %d ms (down after %.0f ms)\n", b.Polls, b.FalseDowns, b.MaxAgeMS, b.DownMS)
	writeTargets(w, r.Targets)
}

// Charts implements Report.
func (r *DetectReport) Charts() []Chart {
	var all, first []float64
	for _, d := range r.Kills {
		all = append(all, d.AllMS)
		first = append(first, d.FirstMS)
	}
	return []Chart{
		{"detect", chart.Line{Title: fmt.Sprintf("detect: kill -9 to down, heartbeat %s (CDF of %d kills)", r.Heartbeat, len(r.Kills)),
			XLabel: "ms after the kill", YLabel: "fraction of kills",
			Series: []chart.Series{chart.CDF("first peer", first), chart.CDF("every peer", all)}}.Render},
	}
}
