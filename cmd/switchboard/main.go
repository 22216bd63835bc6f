// Command switchboard runs and uses a Switchboard cluster: one service on
// many servers behind one common address, where clients pick their server
// from a directory every server keeps current.
//
//	switchboard serve    run a node
//	switchboard dir      print the directory a node answers with
//	switchboard connect  attach to the service and report every failover
//	switchboard chat     real-time text in a room, character by character
//	switchboard bench    measure balance, latency and failover
//	switchboard sim      simulate the policies with thousands of nodes
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is the software version; set with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run a node of a service", runServe},
		{"dir", "print the directory a node answers with", runDir},
		{"demo", "run a three-node cluster on 127.0.0.1-3 with DNS", runDemo},
		{"connect", "attach to the service and report every failover", runConnect},
		{"chat", "type in a room in real time, character by character", runChat},
		{"bench", "open many sessions and measure balance and latency", runBench},
		{"sim", "simulate the pick policies at a scale one machine cannot hold", runSim},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintln(stdout, "switchboard", version)
			return err
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "switchboard:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: switchboard COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'switchboard COMMAND -h' for a command's flags. Every flag can also be set")
	fmt.Fprintln(w, "from the environment as SWITCHBOARD_<FLAG>, e.g. SWITCHBOARD_CAPACITY=500.")
}

// parseFlags parses args, then fills every flag not given on the command
// line from SWITCHBOARD_<NAME> in the environment (dashes as underscores).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		key := "SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
