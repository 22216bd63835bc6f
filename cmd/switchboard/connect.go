package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/token"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/resolve"
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	service  string
	resolver string
	policy   string
	group    string
	timeout  time.Duration
	tls      tlsFlags
	token    string // file
	cmd      string // the command the flags are of, for its errors
}

func (f *clientFlags) register(c *cmdline) {
	f.cmd = c.name
	fs := c.fs
	fs.StringVar(&f.service, "service", node.DefaultListen, "the common address: HOST:PORT, a comma list, or a service name looked up in DNS")
	fs.StringVar(&f.resolver, "resolver", "", "DNS servers HOST:PORT, comma-separated, asked in turn for every name, service names, SRV targets and HOST names alike (default: the system's)")
	fs.StringVar(&f.policy, "policy", "default", "pick policy: "+strings.Join(append(pick.Names(), pick.DNSOnly), ", "))
	fs.StringVar(&f.group, "group", "", "the client's REGION/ZONE, preferred when picking")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to try to attach")
}

// registerSecurity adds --ca, --tls, --tls-name and --token.
func (f *clientFlags) registerSecurity(c *cmdline) {
	f.tls.register(c)
	c.fs.StringVar(&f.token, "token", "", "file holding the signed token to attach with (switchboard token), for services that authenticate users")
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
	if rs := splitList(f.resolver); len(rs) == 1 {
		return "dns://" + rs[0] + "/" + s
	}
	return "dns:" + s // through --resolver's servers, when given, in turn (options)
}

// resolvedTarget is target with the host names of HOST:PORT forms looked
// up through --resolver, so that no name goes to the system resolver when
// a resolver is given.
func (f *clientFlags) resolvedTarget(ctx context.Context) (string, error) {
	t := f.target()
	if f.resolver == "" || strings.HasPrefix(t, "dns:") {
		return t, nil
	}
	addrs, err := lookupAddrs(ctx, f.resolver, splitList(t))
	if err != nil {
		return "", err
	}
	return strings.Join(addrs, ","), nil
}

// lookupAddrs resolves the HOST of every HOST:PORT in addrs through the DNS
// servers of resolver (a comma list, asked in turn until one answers):
// the name's Switchboard SRV records when it has them, else its A/AAAA
// records with PORT. Addresses with an IP stay as they are.
func lookupAddrs(ctx context.Context, resolver string, addrs []string) ([]string, error) {
	var out []string
	for _, a := range addrs {
		host, portText, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", a, err)
		}
		if net.ParseIP(host) != nil {
			out = append(out, a)
			continue
		}
		port, err := strconv.Atoi(portText)
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("address %q: bad port", a)
		}
		var found []string
		var errs []error
		for _, r := range splitList(resolver) {
			if found, err = resolve.Lookup(ctx, resolve.Config{Resolver: r, DefaultPort: port}, host); err == nil {
				break
			}
			errs = append(errs, err)
		}
		if found == nil {
			return nil, fmt.Errorf("looking up %s through %s: %w", host, resolver, errors.Join(errs...))
		}
		out = append(out, found...)
	}
	return out, nil
}

func (f *clientFlags) options(user string) ([]client.Option, error) {
	policy, err := pick.ByName(f.policy, nil)
	if err != nil {
		return nil, err
	}
	opts := []client.Option{
		client.WithUser(user),
		client.WithPolicy(policy),
		client.WithGroup(f.group),
		client.WithResolvers(splitList(f.resolver)...),
		client.WithClientName("switchboard-cli/" + readBuildInfo().Short()),
	}
	// The name is taken from --service before --resolver turns its host
	// names into addresses.
	tlsCfg, err := f.tls.config(cmpOr(f.cmd, "client"), f.service)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, client.WithTLS(tlsCfg))
	}
	if f.token != "" {
		data, err := os.ReadFile(f.token)
		if err != nil {
			return nil, fmt.Errorf("--token: %w", err)
		}
		opts = append(opts, client.WithToken(strings.TrimSpace(string(data))))
	}
	return opts, nil
}

// dial attaches as user through the common address, within --timeout.
// The client looks every name up through --resolver itself, at each
// bootstrap, so that a failover sees what DNS says then.
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
	c := newCmdline("connect", "[flags]",
		"Attaches to the service through its common address, prints the node picked and\n"+
			"why, then every failover until interrupted.", stdout, stderr)
	var cf clientFlags
	cf.register(c)
	cf.registerSecurity(c)
	user := c.fs.String("user", "guest", "user name to attach as; with --token, the user it names")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if _, given := c.from["user"]; !given && cf.token != "" {
		// A token is good for its own user only: attaching as guest
		// with it was refused every time.
		data, err := os.ReadFile(cf.token)
		if err != nil {
			return fmt.Errorf("connect: --token: %w", err)
		}
		if *user, err = token.Subject(strings.TrimSpace(string(data))); err != nil {
			return usagef(c.name, "connect: --token %s: %v", cf.token, err)
		}
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	if _, err := pick.ByName(cf.policy, nil); err != nil {
		return usagef(c.name, "connect: --policy: %v", err)
	}
	s, err := cf.dial(ctx, *user)
	if exitCode(err) == exitUsage {
		return err // it names the command and the flag already
	}
	if err != nil {
		return fmt.Errorf("connect: %w", err)
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
				return errors.New("connect: session ended")
			}
			switch e.Kind {
			case client.Disconnected:
				fmt.Fprintf(stdout, "%s lost %s: %v\n", stamp(), orNone(e.Node.ID), e.Err)
			case client.Reattached:
				fmt.Fprintf(stdout, "%s failover: attached to %s (%s), session %s\n  why: %s\n", stamp(), e.Node.ID, e.Node.Addr, s.ID(), e.Reason)
			case client.Moved:
				fmt.Fprintf(stdout, "%s moved: attached to %s (%s), session %s, without a drop\n  why: %s\n", stamp(), e.Node.ID, e.Node.Addr, s.ID(), e.Reason)
			case client.DirectoryPushed:
				if e.Message.Delta {
					fmt.Fprintf(stdout, "%s directory changed: %s%s\n", stamp(), summarizeNodes(e.Message.Nodes), goneList(e.Message.Gone))
				} else {
					fmt.Fprintf(stdout, "%s directory: %s\n", stamp(), summarizeNodes(e.Message.Nodes))
				}
			}
		}
	}
}

func stamp() string { return time.Now().Format("15:04:05.000") }

// goneList is " gone: ID ID" for nodes a push of changes no longer
// lists, or nothing.
func goneList(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " gone: " + strings.Join(ids, " ")
}
