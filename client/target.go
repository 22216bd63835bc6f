package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	// system is the system resolver, asked when resolvers is empty; nil
	// means net.DefaultResolver (tests point it at a server of their own).
	system *net.Resolver
}

// systemResolver is the resolver asked when no resolver was given.
func (t target) systemResolver() *net.Resolver {
	if t.system != nil {
		return t.system
	}
	return net.DefaultResolver
}

// isIP reports whether host is an IP address, an IPv6 one with its zone
// included (fe80::1%eth0): net.ParseIP takes no zone, and would have such
// a literal looked up in DNS and taken for the service's name.
func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
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
	}
	if t.service != "" {
		// Refused now: looked up, it would fail every pass for ever
		// instead of saying so.
		if err := resolve.CheckService(strings.TrimSuffix(t.service, ".")); err != nil {
			return t, fmt.Errorf("client: target %q: the service %q is not a DNS name (for one node, give HOST:PORT without dns:): %w", raw, t.service, err)
		}
	} else {
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
		if isIP(host) || (name != "" && host != name) {
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
	// The names are looked up at once, each bounded by timeout: one after
	// another, a silent resolver would cost a timeout per name before any
	// address is tried. The list is the user's, so short.
	found := make([][]string, len(t.addrs))
	errs := make([]error, len(t.addrs))
	var wg sync.WaitGroup
	for i, a := range t.addrs {
		host, port, _ := net.SplitHostPort(a)
		if isIP(host) {
			found[i] = []string{a}
			continue
		}
		wg.Go(func() { found[i], errs[i] = t.resolveHost(ctx, a, host, port, timeout) })
	}
	wg.Wait()
	// In the listed order, so that a seeded shuffle gives a fixed order.
	out := slices.Concat(found...)
	if err := errors.Join(errs...); len(out) == 0 && err != nil {
		return nil, fmt.Errorf("client: resolving %s: %w", t.raw, err)
	}
	shuffle(r, out)
	return out, nil
}

// resolveHost returns the addresses of a, a HOST:PORT of the list form
// whose host is a name, within timeout.
func (t target) resolveHost(ctx context.Context, a, host, port string, timeout time.Duration) ([]string, error) {
	if len(t.resolvers) > 0 {
		// Through the resolvers given: the name's SRV records when it
		// has them, else its A/AAAA records with the port.
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("client: target %q: bad port", a)
		}
		return t.lookup(ctx, host, p, timeout)
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ips, err := t.systemResolver().LookupHost(lctx, host)
	if err != nil {
		// Keep the name: the dial reports what is wrong with it.
		return []string{a}, nil
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip, port))
	}
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
		return resolve.Lookup(ctx, resolve.Config{DefaultPort: defaultPort, Timeout: timeout, NoSRV: t.plainDNS, NetResolver: t.systemResolver()}, name)
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
