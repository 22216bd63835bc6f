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
//	switchboard certs    make a dev CA and node certificates
//	switchboard keygen   make the token signing key and an admin secret
//	switchboard token    mint a user token
//
// Flags come from the command line, then from the command's environment
// twins (SWITCHBOARD_SERVE_CAPACITY for serve's --capacity), then, for
// serve, from the --config file. The exit code is 0 on success and for
// help, 1 when the command fails, 2 when it was called wrongly.
// docs/operations.md lists every flag.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run a node of a service", runServe},
		{"dir", "print the directory a node answers with", runDir},
		{"drain", "drain a node to empty: its sessions move to other nodes", runDrain},
		{"forget", "make an embedded cluster's storage forget a node gone for good", runForget},
		{"probe", "ask a node's HTTP API whether it is ready (or alive); exit 0 if so", runProbe},
		{"demo", "run a three-node cluster on 127.0.0.1-3 with DNS", runDemo},
		{"connect", "attach to the service and report every failover", runConnect},
		{"chat", "type in a room in real time, character by character", runChat},
		{"bench", "open many sessions and measure balance and latency", runBench},
		{"sim", "simulate the pick policies at a scale one machine cannot hold", runSim},
		{"certs", "make a dev CA and a node's TLS certificate", runCerts},
		{"keygen", "make the token signing key pair and an admin secret", runKeygen},
		{"token", "mint a signed token naming a user", runToken},
		{"version", "print the version, revision and Go version", runVersion},
		{"help", "print this, or a command's flags: help COMMAND", nil},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := report(os.Stderr, run(ctx, os.Args[1:], os.Stdout, os.Stderr))
	stop()
	os.Exit(code)
}

// run runs the command args name. Its error decides the exit code (see
// exitCode); asked-for help goes to stdout, everything else to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return usagef("", "no command given")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return nil
	case "-version", "--version":
		return runVersion(ctx, args[1:], stdout, stderr)
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return nil
		}
		return run(ctx, append(args[1:], "-h"), stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] && c.run != nil {
			if c.name != "serve" && c.name != "chat" {
				// These print what nodes send (termsafe.go); serve
				// prints its own settings and quoted logs, chat draws
				// the screen and escapes what it shows itself.
				stdout, stderr = newSafeWriter(stdout), newSafeWriter(stderr)
			}
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	return usagef("", "unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: switchboard COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'switchboard COMMAND -h' for a command's flags. Each flag can also be set")
	fmt.Fprintln(w, "from the environment, per command: serve's --capacity is SWITCHBOARD_SERVE_CAPACITY.")
	fmt.Fprintln(w, "Exit codes: 0 done (or help), 1 failed, 2 called wrongly. See docs/operations.md.")
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("version", "", "Prints the version, from the build information unless set at link time.", stdout, stderr)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, readBuildInfo())
	return err
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
