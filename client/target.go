package client

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/resolve"
)

// A target names the common address. Its forms:
//
//	HOST:PORT              a host that may resolve to several IPs, tried in random order
//	HOST:PORT,HOST:PORT    a list of addresses, tried in random order
//	dns:SERVICE            the service name looked up through the system resolver (SRV, then A/AAAA)
//	dns://RESOLVER/SERVICE the same through the DNS server RESOLVER (HOST:PORT)
type target struct {
	raw      string
	addrs    []string // fixed addresses (list form)
	service  string   // dns forms
	resolver string
}

func parseTarget(raw, defaultResolver string) (target, error) {
	t := target{raw: raw}
	switch {
	case strings.HasPrefix(raw, "dns://"):
		rest := strings.TrimPrefix(raw, "dns://")
		resolver, service, ok := strings.Cut(rest, "/")
		if !ok || service == "" {
			return t, fmt.Errorf("client: target %q: want dns://RESOLVER/SERVICE", raw)
		}
		t.resolver, t.service = resolver, service
		if t.resolver == "" {
			t.resolver = defaultResolver
		}
	case strings.HasPrefix(raw, "dns:"):
		t.service = strings.TrimPrefix(raw, "dns:")
		t.resolver = defaultResolver
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
// try them.
func (t target) resolveAddrs(ctx context.Context, r pick.Rand, defaultPort int) ([]string, error) {
	if t.service != "" {
		addrs, err := resolve.Lookup(ctx, resolve.Config{Resolver: t.resolver, DefaultPort: defaultPort}, t.service)
		if err != nil {
			return nil, fmt.Errorf("client: resolving %s: %w", t.raw, err)
		}
		return addrs, nil
	}
	var out []string
	for _, a := range t.addrs {
		host, port, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(host); ip != nil {
			out = append(out, a)
			continue
		}
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			// Keep the name: the dial reports what is wrong with it.
			out = append(out, a)
			continue
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	shuffle(r, out)
	return out, nil
}

func shuffle(r pick.Rand, s []string) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.IntN(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}
