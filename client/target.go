package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/resolve"
)

// A target names the common address. Its forms:
//
//	HOST:PORT              a host that may resolve to several IPs, tried in random order
//	HOST:PORT,HOST:PORT    a list of addresses, tried in random order
//	dns:SERVICE            the service name looked up in DNS (SRV, then A/AAAA)
//	dns://RESOLVER/SERVICE the same, asking the DNS server RESOLVER (HOST:PORT) first
//
// Every name is looked up through the resolvers given with WithResolvers
// (after the RESOLVER of the dns:// form), in turn, or through the system
// resolver when there are none.
type target struct {
	raw       string
	addrs     []string // fixed addresses (list form)
	service   string   // dns forms
	resolvers []string // in the order to ask them; none: the system resolver
	plainDNS  bool     // A/AAAA only, no SRV (WithPlainDNS)
}

func parseTarget(raw string, resolvers []string) (target, error) {
	t := target{raw: raw, resolvers: slices.Clone(resolvers)}
	switch {
	case strings.HasPrefix(raw, "dns://"):
		rest := strings.TrimPrefix(raw, "dns://")
		resolver, service, ok := strings.Cut(rest, "/")
		if !ok || service == "" {
			return t, fmt.Errorf("client: target %q: want dns://RESOLVER/SERVICE", raw)
		}
		t.service = service
		if resolver != "" {
			t.resolvers = slices.Insert(slices.DeleteFunc(t.resolvers, func(r string) bool { return r == resolver }), 0, resolver)
		}
	case strings.HasPrefix(raw, "dns:"):
		t.service = strings.TrimPrefix(raw, "dns:")
		if t.service == "" {
			return t, fmt.Errorf("client: target %q names no service", raw)
		}
	default:
		for _, a := range strings.Split(raw, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(a); err != nil {
				return t, fmt.Errorf("client: target %q: %w", raw, err)
			}
			t.addrs = append(t.addrs, a)
		}
		if len(t.addrs) == 0 {
			return t, fmt.Errorf("client: empty target")
		}
	}
	return t, nil
}

// serviceName is the name a node's TLS certificate must prove when none
// is given: the service of the dns forms, or the one host name all of the
// list's addresses share; "" when the list holds IPs or several names.
func (t target) serviceName() string {
	if t.service != "" {
		return strings.TrimSuffix(t.service, ".")
	}
	name := ""
	for _, a := range t.addrs {
		host, _, _ := net.SplitHostPort(a)
		if net.ParseIP(host) != nil || (name != "" && host != name) {
			return ""
		}
		name = host
	}
	return name
}

// resolveAddrs returns the addresses to try for a hello, in the order to
// try them. Each DNS lookup is bounded by timeout.
func (t target) resolveAddrs(ctx context.Context, r pick.Rand, defaultPort int, timeout time.Duration) ([]string, error) {
	if t.service != "" {
		addrs, err := t.lookup(ctx, t.service, defaultPort, timeout)
		if err != nil {
			return nil, fmt.Errorf("client: resolving %s: %w", t.raw, err)
		}
		return addrs, nil
	}
	var out []string
	var errs []error
	for _, a := range t.addrs {
		host, port, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(host); ip != nil {
			out = append(out, a)
			continue
		}
		if len(t.resolvers) > 0 {
			// Through the resolvers given: the name's SRV records when it
			// has them, else its A/AAAA records with the port.
			p, err := strconv.Atoi(port)
			if err != nil || p < 1 || p > 65535 {
				errs = append(errs, fmt.Errorf("client: target %q: bad port", a))
				continue
			}
			found, err := t.lookup(ctx, host, p, timeout)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, found...)
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, timeout)
		ips, err := net.DefaultResolver.LookupHost(lctx, host)
		cancel()
		if err != nil {
			// Keep the name: the dial reports what is wrong with it.
			out = append(out, a)
			continue
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("client: resolving %s: %w", t.raw, errors.Join(errs...))
	}
	shuffle(r, out)
	return out, nil
}

// resolverStagger is how long lookup waits for a resolver's answer
// before it asks the next one as well.
const resolverStagger = 150 * time.Millisecond

// lookup resolves name through the resolvers in turn, or through the
// system resolver when there are none. The next resolver is asked as soon
// as the one before fails, or has been silent for resolverStagger (a
// paused or cut-off node's responder answers nothing, and waiting out the
// timeout of each would hold a failover up); the first answer with
// addresses wins.
func (t target) lookup(ctx context.Context, name string, defaultPort int, timeout time.Duration) ([]string, error) {
	if len(t.resolvers) == 0 {
		return resolve.Lookup(ctx, resolve.Config{DefaultPort: defaultPort, Timeout: timeout, NoSRV: t.plainDNS}, name)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		i     int
		addrs []string
		err   error
	}
	answers := make(chan answer, len(t.resolvers)) // never blocks a sender
	next, asking := 0, 0
	ask := func() {
		i, r := next, t.resolvers[next]
		next++
		asking++
		go func() {
			addrs, err := resolve.Lookup(ctx, resolve.Config{Resolver: r, DefaultPort: defaultPort, Timeout: timeout, NoSRV: t.plainDNS}, name)
			answers <- answer{i, addrs, err}
		}()
	}
	ask()
	stagger := time.NewTimer(resolverStagger)
	defer stagger.Stop()
	errs := make([]error, len(t.resolvers))
	for asking > 0 {
		select {
		case a := <-answers:
			asking--
			if a.err == nil {
				return a.addrs, nil
			}
			errs[a.i] = a.err
			if next < len(t.resolvers) && ctx.Err() == nil {
				ask()
				stagger.Reset(resolverStagger)
			}
		case <-stagger.C:
			if next < len(t.resolvers) {
				ask()
				stagger.Reset(resolverStagger)
			}
		}
	}
	return nil, errors.Join(errs...)
}

func shuffle(r pick.Rand, s []string) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.IntN(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}
