package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/internal/chart"
	"github.com/switchboard/switchboard/sim"
	"github.com/switchboard/switchboard/stats"
)

// simFlags are the flags of `switchboard sim`.
type simFlags struct {
	policies, staleness string
	pushes              string
	cfg                 sim.Config
	kill, join          int
	killAt, joinAt      time.Duration
	parallel            int
	asJSON              bool
	svgDir, chartPolicy string
	balls               bool
	ballsMax, trials    int
	quiet               bool
	pushBytes           bool
}

func (f *simFlags) register(fs *flag.FlagSet) {
	d := sim.DefaultConfig()
	fs.StringVar(&f.policies, "policies", strings.Join(sim.Policies(), ","), "policies to run, comma-separated")
	fs.StringVar(&f.staleness, "staleness", "1s,10s", "directory staleness values to run, comma-separated durations")
	fs.StringVar(&f.pushes, "pushes", "on", "on: sessions hold the directory pushed to them and fail over from it first, as the Go client does; off: a dropped session asks the common address; \"on,off\" runs both")
	fs.IntVar(&f.cfg.Nodes, "nodes", d.Nodes, "nodes up at the start")
	fs.IntVar(&f.cfg.Capacity, "capacity", d.Capacity, "sessions one node admits")
	fs.IntVar(&f.cfg.Zones, "zones", d.Zones, "zones the nodes and clients are spread over")
	fs.IntVar(&f.cfg.Sessions, "sessions", d.Sessions, "sessions arriving as a Poisson process (-1: none)")
	fs.Float64Var(&f.cfg.Rate, "rate", d.Rate, "arrivals per second")
	fs.IntVar(&f.cfg.Storm, "storm", 0, "extra sessions arriving all at once at --storm-at")
	fs.DurationVar(&f.cfg.StormAt, "storm-at", 0, "when the storm arrives")
	fs.DurationVar(&f.cfg.Lifetime, "lifetime", d.Lifetime, "mean session lifetime (exponential)")
	fs.BoolVar(&f.cfg.FixedLifetime, "fixed-lifetime", false, "every session lives exactly --lifetime")
	fs.DurationVar(&f.cfg.Propagation, "propagation", d.Propagation, "delay for a node's change to reach the directories")
	fs.DurationVar(&f.cfg.Tick, "tick", d.Tick, "interval of the users-per-node snapshots clients see")
	fs.DurationVar(&f.cfg.Detect, "detect", d.Detect, "how long after a death its peers mark the node down")
	fs.DurationVar(&f.cfg.RTT, "rtt", d.RTT, "round trip of a directory fetch or a dial")
	fs.DurationVar(&f.cfg.Failover.DropBase, "drop-base", failover.DefaultConfig().DropBase, "bound of a dropped session's random wait before it picks again (failover.Config.DropBase; the Go client waits up to client.DefaultDropBase, 20ms)")
	fs.IntVar(&f.kill, "kill", 10, "nodes killed at --kill-at (0: none)")
	fs.DurationVar(&f.killAt, "kill-at", 40*time.Second, "when --kill nodes die")
	fs.IntVar(&f.join, "join", 100, "nodes joining at --join-at (0: none)")
	fs.DurationVar(&f.joinAt, "join-at", 60*time.Second, "when --join nodes join")
	fs.DurationVar(&f.cfg.Duration, "duration", 0, "simulated time (0: until the last arrival, plus 1s)")
	fs.DurationVar(&f.cfg.Warmup, "warmup", 0, "start of the window for the worst max/mean (0: a fifth of --duration)")
	fs.IntVar(&f.cfg.ViewSize, "view", 0, "nodes listed per directory, drawn at random (0: all; faster, exact only for random, p2c, group, dns-only and a stale default)")
	fs.BoolVar(&f.cfg.SampledViews, "view-sample", false, "draw each directory of --view nodes as a node draws a hello's view: the client's group first, weighted by spare capacity")
	fs.Uint64Var(&f.cfg.Seed, "seed", d.Seed, "random seed")
	fs.IntVar(&f.parallel, "parallel", runtime.GOMAXPROCS(0), "runs at once")
	fs.BoolVar(&f.asJSON, "json", false, "print the results as JSON")
	fs.StringVar(&f.svgDir, "svg", "", "write SVG charts into this directory")
	fs.StringVar(&f.chartPolicy, "chart-policy", "default", "policy whose users per node over time is charted")
	fs.BoolVar(&f.balls, "balls", false, "print the balls-into-bins table instead")
	fs.IntVar(&f.ballsMax, "balls-max", 1_000_000, "largest n of the balls-into-bins table (n = 1000, 10000, ...)")
	fs.IntVar(&f.trials, "trials", 0, "balls-into-bins trials per n (0: about a million balls per row, at most 200)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress on stderr")
	fs.BoolVar(&f.pushBytes, "push-bytes", false, "print the bytes of a push (changes against a whole view) at 100, 1000 and 10000 nodes instead")
}

// simReport is the --json output.
type simReport struct {
	Scenario map[string]any `json:"scenario,omitempty"`
	Runs     []sim.Result   `json:"runs,omitempty"`
	Balls    []sim.BallsRow `json:"balls,omitempty"`
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("sim", "[flags]",
		"Simulates clients picking servers with every policy (a discrete-event model, see\n"+
			"docs/sim.md); with --balls, measures the balls-into-bins table instead. Progress,\n"+
			"with an estimate of the time left, goes to stderr.", stdout, stderr)
	var f simFlags
	f.register(c.fs)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	if f.balls {
		return runBalls(ctx, f, stdout, stderr)
	}
	if f.pushBytes {
		return printPushBytes(stdout, f.cfg.ViewSize)
	}
	policies := splitList(f.policies)
	for _, p := range policies {
		if !slices.Contains(sim.Policies(), p) {
			return usagef(c.name, "sim: unknown policy %q (valid: %s)", p, strings.Join(sim.Policies(), ", "))
		}
	}
	var stales []time.Duration
	for _, s := range splitList(f.staleness) {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return usagef(c.name, "sim: bad staleness %q: want durations such as 0s,1s", s)
		}
		stales = append(stales, d)
	}
	var pushModes []bool // NoPushes of each
	for _, p := range splitList(f.pushes) {
		switch p {
		case "on":
			pushModes = append(pushModes, false)
		case "off":
			pushModes = append(pushModes, true)
		default:
			return usagef(c.name, "sim: bad -pushes %q: want on, off or on,off", p)
		}
	}
	if len(policies) == 0 || len(stales) == 0 || len(pushModes) == 0 {
		return usagef(c.name, "sim: no policy, staleness or pushes mode to run")
	}
	f.cfg.Events = []sim.NodeEvent{}
	if f.kill > 0 {
		f.cfg.Events = append(f.cfg.Events, sim.NodeEvent{At: f.killAt, Kill: f.kill})
	}
	if f.join > 0 {
		f.cfg.Events = append(f.cfg.Events, sim.NodeEvent{At: f.joinAt, Join: f.join})
	}

	type job struct {
		index int
		cfg   sim.Config
		res   sim.Result
		err   error
		wall  time.Duration
	}
	var jobs []*job
	for _, st := range stales {
		for _, np := range pushModes {
			for _, p := range policies {
				cfg := f.cfg
				cfg.Policy, cfg.Staleness, cfg.NoPushes = p, st, np
				jobs = append(jobs, &job{index: len(jobs), cfg: cfg})
			}
		}
	}
	// Check the configuration once before starting anything.
	probe := jobs[0].cfg
	probe.Sessions, probe.Storm, probe.Duration = -1, 0, time.Nanosecond
	if _, err := sim.Run(ctx, probe); err != nil {
		return usagef(c.name, "%w", err)
	}
	// The runs and the meter print from their own goroutines.
	var progress io.Writer = &syncWriter{w: stderr}
	if f.quiet {
		progress = io.Discard
	}
	fmt.Fprintf(progress, "sim: %d runs, %d at a time\n", len(jobs), max(f.parallel, 1))
	start := time.Now()
	meter := newSimMeter(len(jobs), start)
	for i, j := range jobs {
		j.cfg.Progress = func(reached, total time.Duration) { meter.set(i, reached, total) }
	}
	stopMeter := meter.report(progress, simProgressEvery)
	defer stopMeter()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(f.parallel, 1))
	for _, j := range jobs {
		sem <- struct{}{} // start the runs in order, -parallel at a time
		wg.Go(func() {
			defer func() { <-sem }()
			if ctx.Err() != nil {
				j.err = ctx.Err()
				return
			}
			t0 := time.Now()
			j.res, j.err = sim.Run(ctx, j.cfg)
			j.wall = time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if j.err == nil {
				meter.finish(j.index)
				fmt.Fprintf(progress, "sim: %-11s staleness %-5s pushes %-3s %6.1fs (%d picks); %s\n", j.cfg.Policy, j.cfg.Staleness, onOff(!j.cfg.NoPushes), j.wall.Seconds(), j.res.Picks, meter.line(time.Now()))
			}
		})
	}
	wg.Wait()
	stopMeter()
	var results []sim.Result
	for _, j := range jobs {
		if j.err != nil {
			return j.err
		}
		results = append(results, j.res)
	}
	fmt.Fprintf(progress, "sim: done in %.1fs\n", time.Since(start).Seconds())

	if f.svgDir != "" {
		// The charts are of the first pushes mode.
		if err := writeSimCharts(f.svgDir, f.chartPolicy, policies, stales, len(pushModes), results); err != nil {
			return err
		}
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(simReport{Scenario: simScenario(f.cfg), Runs: results})
	}
	fmt.Fprintln(stdout, describeSim(f.cfg))
	i := 0
	for _, st := range stales {
		for _, np := range pushModes {
			fmt.Fprintf(stdout, "\nstaleness %s, pushes %s\n", st, onOff(!np))
			printSimTable(stdout, results[i*len(policies):(i+1)*len(policies)])
			i++
		}
	}
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// printPushBytes prints what a node pushes each attached session for one
// death or join, as changes and as a whole view, at three cluster sizes.
func printPushBytes(w io.Writer, view int) error {
	fmt.Fprintf(w, "Bytes a node pushes each attached session (wire.Encode over typical entries; views of %d nodes, whole directories cut to one line):\n\n", cmp.Or(view, 64))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nodes\tone death\tone join\t10 deaths\t64 changes\ta view\ta whole directory\tview / one change\t")
	for _, n := range []int{100, 1000, 10_000} {
		death, v, err := sim.PushBytes(n, 1, 0, cmp.Or(view, 64))
		if err != nil {
			return err
		}
		join, whole, err := sim.PushBytes(n, 0, 1, 0)
		if err != nil {
			return err
		}
		ten, _, err := sim.PushBytes(n, 10, 0, 0)
		if err != nil {
			return err
		}
		most, _, err := sim.PushBytes(n, sim.DeltaMax, 0, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t\n", n, death, join, ten, most, v, whole, float64(v)/float64(death))
	}
	return tw.Flush()
}

// describeSim is the one-paragraph summary of the scenario above the tables.
func describeSim(cfg sim.Config) string {
	d := sim.DefaultConfig()
	or := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	life := "exponential"
	if cfg.FixedLifetime {
		life = "fixed"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d nodes of capacity %d in %d zone(s); %d sessions at %g/s living %s (%s)",
		cfg.Nodes, cfg.Capacity, cfg.Zones, max(cfg.Sessions, 0), cfg.Rate, or(cfg.Lifetime, d.Lifetime), life)
	if cfg.Storm > 0 {
		fmt.Fprintf(&b, ", a storm of %d at %s", cfg.Storm, cfg.StormAt)
	}
	for _, e := range cfg.Events {
		if e.Kill > 0 {
			fmt.Fprintf(&b, "; %d killed at %s", e.Kill, e.At)
		}
		if e.Join > 0 {
			fmt.Fprintf(&b, "; %d join at %s", e.Join, e.At)
		}
	}
	fmt.Fprintf(&b, "; propagation %s, snapshots every %s, down after %s, RTT %s",
		or(cfg.Propagation, d.Propagation), or(cfg.Tick, d.Tick), or(cfg.Detect, d.Detect), or(cfg.RTT, d.RTT))
	if db := cfg.Failover.DropBase; db != 0 && db != failover.DefaultConfig().DropBase {
		fmt.Fprintf(&b, "; a dropped session waits up to %s", db)
	}
	if cfg.ViewSize > 0 {
		fmt.Fprintf(&b, "; directories of %d nodes", cfg.ViewSize)
		if cfg.SampledViews {
			b.WriteString(" (views drawn by group and spare capacity)")
		}
	}
	fmt.Fprintf(&b, "; seed %d.", cfg.Seed)
	return b.String()
}

// simScenario is the scenario as JSON.
func simScenario(cfg sim.Config) map[string]any {
	events := []map[string]any{}
	for _, e := range cfg.Events {
		events = append(events, map[string]any{"at": e.At.String(), "kill": e.Kill, "join": e.Join})
	}
	return map[string]any{
		"nodes": cfg.Nodes, "capacity": cfg.Capacity, "zones": cfg.Zones,
		"sessions": max(cfg.Sessions, 0), "rate": cfg.Rate, "storm": cfg.Storm, "storm_at": cfg.StormAt.String(),
		"lifetime": cfg.Lifetime.String(), "fixed_lifetime": cfg.FixedLifetime,
		"propagation": cfg.Propagation.String(), "tick": cfg.Tick.String(), "detect": cfg.Detect.String(),
		"rtt": cfg.RTT.String(), "events": events, "duration": cfg.Duration.String(), "warmup": cfg.Warmup.String(),
		"view": cfg.ViewSize, "view_sample": cfg.SampledViews, "seed": cfg.Seed,
		"drop_base": cmp.Or(cfg.Failover.DropBase, failover.DefaultConfig().DropBase).String(),
	}
}

// stormTotals merges a run's storms: total size, failed attaches, and
// percentiles over every re-attach time.
func stormTotals(res sim.Result) (size, failed int, times []float64) {
	for _, st := range res.Storms {
		size += st.Sessions
		failed += st.Failed
		times = append(times, st.Times...)
	}
	slices.Sort(times)
	return size, failed, times
}

func printSimTable(w io.Writer, results []sim.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tend max\tend mean\tmax/mean\tworst max/mean\tpeak\tfailed attaches\trefused\tdial failed\tstorm\tfetched\tstorm worst\treattach p50\tp99\tmax\tunattached\tpushed MB\tas views MB\t")
	for _, r := range results {
		size, _, times := stormTotals(r)
		fetched, stormWorst := 0, 0.0
		for _, st := range r.Storms {
			fetched += st.Fetched
			stormWorst = max(stormWorst, st.Worst)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.3f\t%.3f @%gs\t%d\t%d\t%d\t%d\t%d\t%d\t%.3f\t%s\t%s\t%s\t%d\t%.1f\t%.1f\t\n",
			r.Policy, r.End.Max, r.End.Mean, r.End.MaxMean, r.Worst, r.WorstAt, r.Peak,
			r.Failed, r.Refused, r.DialFailed, size, fetched, stormWorst,
			simSeconds(stats.Quantile(times, 0.50), len(times)), simSeconds(stats.Quantile(times, 0.99), len(times)),
			simSeconds(stats.Quantile(times, 1), len(times)), r.Unattached,
			float64(r.Pushes.Bytes)/1e6, float64(r.Pushes.ViewBytes)/1e6)
	}
	tw.Flush()
	if len(results) > 0 && len(results[0].Pushes.Each) > 0 {
		r := results[0]
		fmt.Fprintf(w, "pushes (%s):\n", r.Policy)
		for _, p := range r.Pushes.Each {
			what := "changes"
			if p.Whole {
				what = "whole views"
			}
			fmt.Fprintf(w, "  at %gs, %d down and %d joined: %s to %d sessions, %d bytes each (a whole view: %d)\n", p.At, p.Deaths, p.Joins, what, p.Sessions, p.Line, p.ViewLine)
		}
	}
}

func simSeconds(s float64, n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatFloat(s, 'f', 3, 64) + "s"
}

func runBalls(ctx context.Context, f simFlags, stdout, stderr io.Writer) error {
	if f.quiet {
		stderr = io.Discard
	}
	var sizes []int
	for n := 1000; n <= f.ballsMax; n *= 10 {
		sizes = append(sizes, n)
	}
	if len(sizes) == 0 {
		return usagef("sim", "sim: --balls-max %d is below 1000", f.ballsMax)
	}
	rows := make([]sim.BallsRow, len(sizes))
	errs := make([]error, len(sizes))
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(f.parallel, 1))
	for i, n := range sizes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			rows[i], errs[i] = sim.RunBalls(ctx, n, f.trials, f.cfg.Seed)
			mu.Lock()
			defer mu.Unlock()
			if errs[i] == nil {
				fmt.Fprintf(stderr, "sim: balls n=%d, %d trials: %.1fs\n", n, rows[i].Trials, time.Since(t0).Seconds())
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sim: done in %.1fs\n", time.Since(start).Seconds())
	if f.svgDir != "" {
		if err := writeBallsChart(f.svgDir, rows); err != nil {
			return err
		}
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(simReport{Balls: rows})
	}
	fmt.Fprintln(stdout, "n balls into n bins, one after another: the largest bin, mean over the trials (range),")
	fmt.Fprintln(stdout, "with one uniform choice (pick.Random) and the better of two (pick.P2C), next to the theory:")
	fmt.Fprintln(stdout, "one choice (1+o(1)) ln n / ln ln n, or on average Γ⁻¹(n) - 3/2 + o(1) (Gonnet 1981);")
	fmt.Fprintln(stdout, "two choices ln ln n / ln 2 + O(1) (Azar, Broder, Karlin, Upfal 1994).")
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "n\ttrials\tone choice\t(range)\tln n / ln ln n\tΓ⁻¹(n) - 3/2\ttwo choices\t(range)\tln ln n / ln 2\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t(%d-%d)\t%.2f\t%.2f\t%.2f\t(%d-%d)\t%.2f\t\n",
			r.N, r.Trials, r.One, r.OneMin, r.OneMax, r.TheoryOne, r.Gonnet, r.Two, r.TwoMin, r.TwoMax, r.TheoryTwo)
	}
	return tw.Flush()
}

// writeSimCharts writes, for each staleness: max/mean per policy as
// grouped bars, max/mean over time per policy, min/mean/max users over
// time for chartPolicy, and the CDF of re-attach times per policy.
func writeSimCharts(dir, chartPolicy string, policies []string, stales []time.Duration, modes int, results []sim.Result) error {
	var files []simChart
	for i, st := range stales {
		runs := results[i*modes*len(policies) : (i*modes+1)*len(policies)]
		tag := st.String()
		end, worst := make([]float64, len(runs)), make([]float64, len(runs))
		var spread, cdf []chart.Series
		for k, r := range runs {
			end[k], worst[k] = r.End.MaxMean, r.Worst
			s := chart.Series{Name: r.Policy}
			for _, p := range r.Series {
				if p.Mean > 0 && p.T >= r.Warmup {
					s.X = append(s.X, p.T)
					s.Y = append(s.Y, float64(p.Max)/p.Mean)
				}
			}
			spread = append(spread, s)
			_, _, times := stormTotals(r)
			ms := make([]float64, len(times))
			for j, t := range times {
				ms[j] = t * 1000
			}
			cdf = append(cdf, chart.CDF(r.Policy, ms))
			if r.Policy == chartPolicy {
				var ts, lo, mean, hi []float64
				for _, p := range r.Series {
					ts = append(ts, p.T)
					lo, mean, hi = append(lo, float64(p.Min)), append(mean, p.Mean), append(hi, float64(p.Max))
				}
				files = append(files, simChart{"sim-users-" + r.Policy + "-" + tag, chart.Line{
					Title:  fmt.Sprintf("users per live node over time, %s, staleness %s", r.Policy, st),
					XLabel: "simulated time (s)", YLabel: "users per node",
					Series: []chart.Series{{Name: "max", X: ts, Y: hi}, {Name: "mean", X: ts, Y: mean}, {Name: "min", X: ts, Y: lo}},
				}.Render})
			}
		}
		files = append(files,
			simChart{"sim-maxmean-" + tag, chart.Bars{
				Title: fmt.Sprintf("max/mean users per node, staleness %s", st), YLabel: "max/mean",
				Categories: policies, ShowValues: true,
				Series: []chart.BarSeries{{Name: "at the end", Values: end}, {Name: "worst over time", Values: worst}},
			}.Render},
			simChart{"sim-spread-" + tag, chart.Line{
				Title:  fmt.Sprintf("max/mean users per node over time, staleness %s", st),
				XLabel: "simulated time (s)", YLabel: "max/mean", Series: spread,
			}.Render},
			simChart{"sim-reattach-" + tag, chart.Line{
				Title:  fmt.Sprintf("re-attach storm: time from the death to re-attached (CDF), staleness %s", st),
				XLabel: "ms after the death", YLabel: "fraction of the storm", Series: cdf,
			}.Render},
		)
	}
	return writeSimFiles(dir, files)
}

func writeBallsChart(dir string, rows []sim.BallsRow) error {
	var x, one, two, t1, t2, g []float64
	for _, r := range rows {
		x = append(x, math.Log10(float64(r.N)))
		one, two = append(one, r.One), append(two, r.Two)
		t1, t2, g = append(t1, r.TheoryOne), append(t2, r.TheoryTwo), append(g, r.Gonnet)
	}
	return writeSimFiles(dir, []simChart{{"sim-balls", chart.Line{
		Title:  "n balls into n bins: the largest bin, measured and in theory",
		XLabel: "log10 n", YLabel: "balls in the largest bin",
		Series: []chart.Series{
			{Name: "one choice", X: x, Y: one}, {Name: "Γ⁻¹(n) - 3/2", X: x, Y: g},
			{Name: "ln n / ln ln n", X: x, Y: t1},
			{Name: "two choices", X: x, Y: two}, {Name: "ln ln n / ln 2", X: x, Y: t2},
		},
	}.Render}})
}

type simChart struct {
	name   string
	render func(io.Writer) error
}

func writeSimFiles(dir string, charts []simChart) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range charts {
		path := filepath.Join(dir, c.name+".svg")
		file, err := os.Create(path)
		if err != nil {
			return err
		}
		err = c.render(file)
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sim: writing %s: %w", path, err)
		}
	}
	return nil
}
