// Package forwarded finds the client of an HTTP request that came
// through reverse proxies: the address in X-Forwarded-For that the
// operator's own proxies vouch for. Only requests from a trusted proxy
// have the header read at all; from anyone else it is the client's own
// word and is ignored.
package forwarded

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/switchboard/switchboard/internal/proxyproto"
)

// Proxies are the addresses of trusted reverse proxies.
type Proxies []netip.Prefix

// Parse reads a comma-separated list of IP addresses and CIDR prefixes;
// an address stands for itself alone, an IPv4-mapped IPv6 one for the
// IPv4 address it maps. An empty list trusts no one.
func Parse(list string) (Proxies, error) {
	var out Proxies
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("forwarded: %q is neither an IP address nor a CIDR prefix", item)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// String lists the proxies as Parse reads them, comma-separated.
func (p Proxies) String() string {
	items := make([]string, len(p))
	for i, pre := range p {
		items[i] = pre.String()
	}
	return strings.Join(items, ",")
}

// Contains reports whether a is one of the proxies.
func (p Proxies) Contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, pre := range p {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client of a request whose peer is peer, carrying the
// X-Forwarded-For header lines values: peer itself unless it is a trusted
// proxy. From a trusted proxy, the chain is walked from the right, each
// hop written by the trusted proxy to its right, and the first address
// that is not a trusted proxy's is the client as far as trusted parties
// saw it; addresses left of it were written by that client and are not
// believed. A chain of trusted proxies only gives its leftmost; a hop
// that does not parse (a proxy misconfigured) stops the walk at the last
// trusted address.
func (p Proxies) Client(peer netip.Addr, values []string) netip.Addr {
	a := peer.Unmap().WithZone("")
	if !p.Contains(a) {
		return a
	}
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			return a
		}
		a = h
		if !p.Contains(h) {
			return h
		}
	}
	return a
}

// parseHop reads one address of X-Forwarded-For: an IP address, perhaps
// with a port (IPv6 then in brackets), as proxies write them.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// SourceKey is the key under which per-source limits count the client
// address a: an IPv4 address (an IPv4-mapped one unmapped) as itself,
// "192.0.2.7", and an IPv6 address by its /64, "2001:db8:1:2::/64",
// since one subscriber commonly holds a whole /64 and could otherwise
// take every place with addresses of its own. It is "" for the zero
// Addr.
func SourceKey(a netip.Addr) string {
	h := SourceHost(a)
	switch {
	case h.Is4():
		return h.String()
	case h.Is6():
		return netip.PrefixFrom(h, 64).String()
	}
	return ""
}

// SourceHost is SourceKey's source as an address, for limits that keep
// their counts in maps by netip.Addr: an IPv4 address (an IPv4-mapped
// one unmapped) as itself, and an IPv6 address as the first address of
// its /64, without a zone. The zero Addr stays zero.
func SourceHost(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if !a.Is6() {
		return a
	}
	p, _ := a.WithZone("").Prefix(64) // cannot fail: an IPv6 address, 64 bits
	return p.Addr()
}

// OwnHost reports whether client, a connection's client, is the node's
// own host reaching the address it came to: local, the connection's
// local address, has client's IP. Such a client (a reverse proxy beside
// the node, the node's own fronts) carries many users and is not held to
// per-address limits. Only the connection's own addresses say so: one a
// PROXY protocol header named (proxyproto.FromHeader) may name any
// source and destination, the same one or 127.0.0.1 twice, and is never
// the node's own host. A nil local is not.
func OwnHost(local net.Addr, client netip.Addr) bool {
	if local == nil || proxyproto.FromHeader(local) {
		return false
	}
	l, err := netip.ParseAddrPort(local.String())
	return err == nil && l.Addr().Unmap().WithZone("") == client.Unmap().WithZone("")
}
