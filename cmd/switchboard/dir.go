package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/resolve"
	"github.com/switchboard/switchboard/wire"
)

func runDir(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("dir", "[flags]",
		"Says hello at one node, or at a service name found through DNS, and prints the\n"+
			"directory it answers with.", stdout, stderr)
	fs := c.fs
	via := fs.String("via", node.DefaultListen, "whom to ask: a node's client address HOST:PORT, a comma list, or a service name looked up in DNS")
	resolver := fs.String("resolver", "", "DNS server HOST:PORT asked for every name, service names and HOST names alike (default: the system's)")
	asJSON := fs.Bool("json", false, "print the directory message as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	var tf tlsFlags
	tf.register(c)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	tlsCfg, err := tf.config(c.name, *via)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	addrs := splitList(*via)
	if _, _, err := net.SplitHostPort(*via); err != nil && !strings.Contains(*via, ",") {
		// A service name: its SRV records, else its A/AAAA records on 7070.
		if addrs, err = resolve.Lookup(ctx, resolve.Config{Resolver: *resolver, DefaultPort: 7070}, *via); err != nil {
			return fmt.Errorf("dir: %w", err)
		}
	} else if *resolver != "" {
		if addrs, err = lookupAddrs(ctx, *resolver, addrs); err != nil {
			return fmt.Errorf("dir: %w", err)
		}
	}
	var dir *wire.Directory
	var errs []error
	for _, addr := range addrs {
		d, err := client.FetchDirectoryTLS(ctx, nil, addr, tlsCfg)
		if err == nil {
			dir = d
			break
		}
		errs = append(errs, err)
	}
	if dir == nil {
		return fmt.Errorf("dir: %w", errors.Join(errs...))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(wire.DirectoryMessage(dir))
	}
	return printDirectory(stdout, dir)
}

// printDirectory writes the directory as an aligned table.
func printDirectory(w io.Writer, dir *wire.Directory) error {
	fmt.Fprintf(w, "service %s, answered by %s, %d nodes\n\n", dir.Service, dir.Self, len(dir.Nodes))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDR\tGROUP\tSTATUS\tUSERS\tCAPACITY\tLOAD\tAGE\tVERSION\t")
	for _, n := range dir.Nodes {
		self := ""
		if n.ID == dir.Self {
			self = " *"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t\n", n.ID, self, n.Addr, dash(n.Group), n.Status,
			n.Users, n.Capacity, strconv.FormatFloat(100*n.Load(), 'f', 1, 64)+"%", (time.Duration(n.AgeMS) * time.Millisecond).String(), dash(n.Version))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
