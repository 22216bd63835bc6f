package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		benchUsage(stderr)
		if len(args) == 0 {
			return errors.New("bench: name a scenario")
		}
		return nil
	}
	if args[0] == "connect" {
		return runBenchConnect(ctx, args[1:], stdout, stderr)
	}
	for _, sc := range bench.Scenarios() {
		if sc[0] == args[0] {
			return runBenchScenario(ctx, args[0], args[1:], stdout, stderr)
		}
	}
	benchUsage(stderr)
	return fmt.Errorf("bench: unknown scenario %q", args[0])
}

func benchUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: switchboard bench SCENARIO [flags]\n\nscenarios:")
	fmt.Fprintf(w, "  %-9s %s\n", "connect", "open sessions against a running service and report where they are")
	for _, sc := range bench.Scenarios() {
		fmt.Fprintf(w, "  %-9s %s\n", sc[0], sc[1])
	}
	fmt.Fprintln(w, "\nRun 'switchboard bench SCENARIO -h' for its flags.")
}

func runBenchConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	clients := fs.Int("clients", 1000, "sessions to open")
	concurrency := fs.Int("concurrency", 50, "dials in flight at once")
	hold := fs.Duration("hold", 0, "keep the sessions attached (with failover) this long, printing where they are")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	load := bench.Load{
		Target: cf.target(), Resolver: cf.resolver, Clients: *clients, Concurrency: *concurrency,
		Policy: cf.policy, Group: cf.group, DialTimeout: cf.timeout,
	}
	progress := func(done int) {
		if done%max(*clients/10, 1) == 0 {
			fmt.Fprintf(stderr, "\rattached %d/%d", done, *clients)
		}
	}
	run, err := bench.Open(ctx, load, progress)
	fmt.Fprintln(stderr)
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
		return enc.Encode(res)
	}
	printResult(stdout, res)
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
