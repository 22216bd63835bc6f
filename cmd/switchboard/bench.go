package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		benchUsage(stderr)
		return usagef("", "bench: name a scenario")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		benchUsage(stdout)
		return nil
	}
	if args[0] == "connect" {
		return runBenchConnect(ctx, args[1:], stdout, stderr)
	}
	if args[0] == "rtp" {
		return runBenchRTP(ctx, args[1:], stdout, stderr)
	}
	if args[0] == "nats-server" {
		// The NATS baselines' server processes: nats-server's own main
		// and flags (bench.ServeNATS); not a scenario, so not listed.
		return bench.ServeNATS(args[1:])
	}
	for _, sc := range bench.Scenarios() {
		if sc[0] == args[0] {
			return runBenchScenario(ctx, args[0], args[1:], stdout, stderr)
		}
	}
	return usagef("bench", "bench: unknown scenario %q", args[0])
}

func benchUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: switchboard bench SCENARIO [flags]\n\nscenarios:")
	fmt.Fprintf(w, "  %-9s %s\n", "connect", "open sessions against a running service and report where they are")
	for _, sc := range bench.Scenarios() {
		fmt.Fprintf(w, "  %-9s %s\n", sc[0], sc[1])
	}
	fmt.Fprintf(w, "  %-9s %s\n", "rtp", benchRTPDoc)
	fmt.Fprintln(w, "\nRun 'switchboard bench SCENARIO -h' for its flags. Their environment twins are\nSWITCHBOARD_BENCH_<FLAG> for every scenario.")
}

func runBenchConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("bench connect", "[flags]",
		"Opens sessions against a running service and reports where they are.", stdout, stderr)
	fs := c.fs
	var cf clientFlags
	cf.register(c)
	cf.tls.register(c)
	clients := fs.Int("clients", 1000, "sessions to open")
	concurrency := fs.Int("concurrency", 50, "dials in flight at once")
	hold := fs.Duration("hold", 0, "keep the sessions attached (with failover) this long, printing where they are")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	tlsCfg, err := cf.tls.config(c.name, cf.service)
	if err != nil {
		return err
	}
	target, err := cf.resolvedTarget(ctx)
	if err != nil {
		return fmt.Errorf("bench connect: %w", err)
	}
	load := bench.Load{
		Target: target, Resolver: cf.resolver, Clients: *clients, Concurrency: *concurrency,
		Policy: cf.policy, Group: cf.group, DialTimeout: cf.timeout, TLS: tlsCfg,
	}
	tty := isTerminal(stderr)
	progress := func(done int) {
		if done%max(*clients/10, 1) != 0 && done != *clients {
			return
		}
		// Sessions tried so far, attached or failed (the result counts
		// each kind).
		if tty {
			fmt.Fprintf(stderr, "\rtried %d/%d", done, *clients)
		} else {
			fmt.Fprintf(stderr, "tried %d/%d\n", done, *clients)
		}
	}
	run, err := bench.Open(ctx, load, progress)
	if tty {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return err
	}
	defer run.Close()
	res := run.Snapshot()
	if *hold > 0 {
		printResult(stderr, res)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		end := time.After(*hold)
	wait:
		for {
			select {
			case <-ctx.Done():
				break wait
			case <-end:
				break wait
			case <-tick.C:
				now := run.Snapshot()
				fmt.Fprintf(stderr, "%s %d attached, max/mean %.3f: %s\n", stamp(), now.Attached, now.MaxMean, perNode(now.PerNode))
			}
		}
		res = run.Snapshot()
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printResult(stdout, res)
	}
	if res.Failed > 0 {
		// A script reads the exit code: sessions that never attached
		// are a failed run, however the others did.
		return fmt.Errorf("bench connect: %d of %d sessions failed to attach", res.Failed, *clients)
	}
	return nil
}

func printResult(w io.Writer, res bench.Result) {
	fmt.Fprintf(w, "policy %s: %d attached, %d failed in %.0f ms\n", res.Policy, res.Attached, res.Failed, res.ElapsedMS)
	fmt.Fprintf(w, "users per node: %s\n", perNode(res.PerNode))
	fmt.Fprintf(w, "max/mean: %.3f\n", res.MaxMean)
	fmt.Fprintf(w, "connect ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", res.ConnectMS.P50, res.ConnectMS.P90, res.ConnectMS.P99, res.ConnectMS.Max)
	for _, e := range res.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

func perNode(m map[string]int) string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", id, m[id]))
	}
	return strings.Join(parts, " ")
}

// summarizeNodes is a one-line view of a directory: id:status/users.
func summarizeNodes(nodes []directory.Node) string {
	var parts []string
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("%s:%s/%d", n.ID, n.Status, n.Users))
	}
	return strings.Join(parts, " ")
}

// isTerminal reports whether w is a terminal, where progress may rewrite
// its line with a carriage return; elsewhere (a file, a pipe) progress is
// plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
