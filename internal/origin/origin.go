// Package origin decides which web pages may act on a node from a
// visitor's browser: open a WebSocket session (/v1/ws), post a WebRTC
// offer (/v1/rtc) or read across origins. The browser names the page in
// the request's Origin header; the rule protects the browser's user, not
// the node, so a request without Origin (not from a browser) passes.
// HostAllowed decides under which names a node answers its reads, to
// any client: over plain HTTP a DNS-rebinding page's read looks like a
// program's, and the name it uses, the attacker's, is all there is to
// refuse it by. A pattern that names no domain ("*", "*:443"; see
// CatchAll) lets any page open a WebSocket, and read what the WebSocket
// tells it anyway (ReadAllowed), but never lets a read answer under any
// name: the operator who allows every page to run the client has not
// opened the node's metrics to every site.
package origin

import (
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/wire"
)

// Allowed says whether the page r's Origin names may act here. Allowed
// are: requests without Origin; pages of any node of the service (the
// HTTP address a directory entry lists, since a page served by one node
// talks to another); pages served under the service's common name (any
// port); pages of this machine (localhost, loopback addresses); pages
// whose host, with its port if it has one, equals or matches one of
// patterns (path.Match, case-insensitive; "*" allows any page on the web;
// an IPv6 address in brackets only as it is written, since path.Match
// reads brackets as a character class); and
// pages of the node's own origin when the browser reached it by address.
//
// A page of the node's own origin reached by another name is not enough:
// that is what a DNS-rebinding page looks like (a name of the attacker's
// that resolves to the node, so that Origin and Host agree), which would
// let any web page reach a node that only the visitor's network can.
// Rebinding needs a name, so an address in Host is the node itself; a
// name must be one the service publishes, or allowed by patterns. dir
// may be nil (no directory yet): then only the other rules apply.
func Allowed(r *http.Request, dir *wire.Directory, patterns []string) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Host)
	if Loopback(u.Hostname()) {
		return true
	}
	if host == strings.ToLower(r.Host) && net.ParseIP(u.Hostname()) != nil {
		return true
	}
	return published(host, u.Scheme, dir, patterns)
}

// HostAllowed says whether the node may answer a read under the name
// the client reached it by (r.Host): the reads a page may make of its
// own origin (the directory, the stats, the event stream, the metrics,
// the readiness). DNS rebinding makes an attacker's name resolve to a
// node that only the visitor's network reaches: the attacker's page is
// then of the same origin as the node, sends no Origin on a GET and
// needs no CORS. Nor does it send Sec-Fetch-Site over plain HTTP
// (browsers send Fetch Metadata only to https, localhost and loopback
// URLs), so only Host tells it apart, and Host is checked whatever the
// other headers say. Allowed are a request without Host, a Host that is
// an address or names this machine (rebinding needs a name), and a name
// the service publishes: its common name (any port), a node's HTTP
// address in dir, or one patterns match; a Host without a port matches
// on port 80 or 443. Any other name is refused, a program's too: it
// should use an address or a published name, or have the name added to
// patterns (--ws-origins). A pattern that names no domain (CatchAll, such
// as "*") admits no name here: it would admit the attacker's.
func HostAllowed(r *http.Request, dir *wire.Directory, patterns []string) bool {
	patterns = Named(patterns)
	if r.Host == "" {
		return true
	}
	host := strings.ToLower(r.Host)
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	if net.ParseIP(name) != nil || Loopback(name) {
		return true
	}
	// A Host without a port is either default port, whatever r.TLS says:
	// behind a proxy that ends TLS on 443 the node serves plain HTTP to
	// a page of https://n1.example, published as n1.example:443. Host
	// does not say the scheme, so both are tried. That lets no other name
	// in: rebinding is about the name (the attacker's, whose DNS it
	// controls), and a name the service publishes with either port is
	// the service's.
	return published(host, "http", dir, patterns) || published(host, "https", dir, patterns)
}

// ReadAllowed is Allowed with the patterns that name no domain
// (CatchAll) left out: whether the page r's Origin names may read across
// origins what only the service's own pages and the sites the operator
// names may (the stats and the event stream). "*" lets any page open a
// WebSocket, not read those: a page on the web that a user of the node's
// network opens would learn through that user's browser what the node
// serves and to how many.
func ReadAllowed(r *http.Request, dir *wire.Directory, patterns []string) bool {
	return Allowed(r, dir, Named(patterns))
}

// Named returns the patterns that name a domain, those CatchAll reports
// false for, in their order; patterns itself when all do.
func Named(patterns []string) []string {
	if !slices.ContainsFunc(patterns, CatchAll) {
		return patterns
	}
	named := make([]string, 0, len(patterns))
	for _, p := range patterns {
		if !CatchAll(p) {
			named = append(named, p)
		}
	}
	return named
}

// CatchAll reports whether pattern, a host[:port] pattern of
// --ws-origins, names no domain: its host part, the port left out, has
// nothing but wildcards ("*", "?", a [class]) and dots, as in "*",
// "*:*", "*:7071" or "*.*". Such a pattern matches any name, an
// attacker's too. A scheme written before the host ("https://*") is
// looked through, though patterns match without one.
func CatchAll(pattern string) bool {
	host := pattern
	if _, rest, ok := strings.Cut(host, "://"); ok {
		host = rest
	}
	if end := strings.Index(host, "]"); strings.HasPrefix(host, "[") && end >= 0 && strings.Contains(host[:end], ":") {
		return false // an IPv6 address, as written
	}
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	for i := 0; i < len(host); i++ {
		switch host[i] {
		case '*', '?', '.':
		case '[':
			end := strings.Index(host[i:], "]")
			if end < 0 {
				return false // a bad pattern, which matches nothing
			}
			i += end
		case '\\':
			if i+1 < len(host) && host[i+1] == '.' {
				i++ // an escaped dot is still only a dot
				continue
			}
			return false
		default:
			return false
		}
	}
	return true
}

// published says whether host (HOST[:PORT], lower case, as a browser
// writes it for scheme) is a name of the service's: its common name
// (any port), a node's HTTP address in dir (nil: none known), or one
// patterns match.
func published(host, scheme string, dir *wire.Directory, patterns []string) bool {
	hostname, port := host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		hostname, port = h, p
	}
	// A browser leaves the scheme's default port out, where a
	// directory's HTTP address always has one: both forms are the page.
	hosts := []string{host}
	if def := defaultPorts[strings.ToLower(scheme)]; def != "" && port == "" {
		hosts = append(hosts, net.JoinHostPort(strings.Trim(hostname, "[]"), def))
	}
	if dir != nil {
		if dir.Service != "" && strings.EqualFold(strings.Trim(hostname, "[]"), dir.Service) {
			return true
		}
		for _, n := range dir.Nodes {
			for _, h := range hosts {
				if n.HTTP != "" && strings.EqualFold(n.HTTP, h) {
					return true
				}
			}
		}
	}
	for _, p := range patterns {
		for _, h := range hosts {
			// An exact match first: an IPv6 address's brackets, as in
			// "[2001:db8::5]:443", would read as a character class.
			if strings.EqualFold(p, h) {
				return true
			}
			if ok, err := path.Match(strings.ToLower(p), h); err == nil && ok {
				return true
			}
		}
	}
	return false
}

// defaultPorts are the ports a browser leaves out of an Origin of each
// scheme.
var defaultPorts = map[string]string{"http": "80", "https": "443"}

// Loopback reports whether host names this machine: localhost or a
// loopback address. A page of such an origin was served from the
// visitor's own machine.
func Loopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
