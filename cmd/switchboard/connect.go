package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/pick"
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	service  string
	resolver string
	policy   string
	group    string
	timeout  time.Duration
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.service, "service", node.DefaultListen, "the common address: HOST:PORT, a comma list, or a service name looked up in DNS")
	fs.StringVar(&f.resolver, "resolver", "", "DNS server HOST:PORT for a service name (default: the system's)")
	fs.StringVar(&f.policy, "policy", "default", "pick policy: "+strings.Join(append(pick.Names(), pick.DNSOnly), ", "))
	fs.StringVar(&f.group, "group", "", "the client's REGION/ZONE, preferred when picking")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to try to attach")
}

// target turns --service and --resolver into a client.Dial target.
func (f *clientFlags) target() string {
	s := f.service
	if strings.HasPrefix(s, "dns:") || strings.Contains(s, ",") {
		return s
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	if f.resolver != "" {
		return "dns://" + f.resolver + "/" + s
	}
	return "dns:" + s
}

func (f *clientFlags) options(user string) ([]client.Option, error) {
	policy, err := pick.ByName(f.policy, nil)
	if err != nil {
		return nil, err
	}
	return []client.Option{
		client.WithUser(user),
		client.WithPolicy(policy),
		client.WithGroup(f.group),
		client.WithResolver(f.resolver),
		client.WithClientName("switchboard-cli/" + version),
	}, nil
}

// dial attaches as user through the common address, within --timeout.
func (f *clientFlags) dial(ctx context.Context, user string) (*client.Session, error) {
	opts, err := f.options(user)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return client.Dial(dctx, f.target(), opts...)
}

func runConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	user := fs.String("user", "guest", "user name to attach as")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := cf.dial(ctx, *user)
	if err != nil {
		return err
	}
	defer s.Close()
	n := s.Node()
	fmt.Fprintf(stdout, "attached to %s (%s) as %s, session %s\n  why: %s\n", n.ID, n.Addr, *user, s.ID(), s.Reason())
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout, "detached")
			return nil
		case e, ok := <-s.Events():
			if !ok {
				return errors.New("session ended")
			}
			switch e.Kind {
			case client.Disconnected:
				fmt.Fprintf(stdout, "%s lost %s: %v\n", stamp(), orNone(e.Node.ID), e.Err)
			case client.Reattached:
				fmt.Fprintf(stdout, "%s failover: attached to %s (%s), session %s\n  why: %s\n", stamp(), e.Node.ID, e.Node.Addr, s.ID(), e.Reason)
			case client.DirectoryPushed:
				fmt.Fprintf(stdout, "%s directory: %s\n", stamp(), summarizeNodes(e.Message.Nodes))
			}
		}
	}
}

func stamp() string { return time.Now().Format("15:04:05.000") }
