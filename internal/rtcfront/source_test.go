package rtcfront

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/switchboard/switchboard/internal/proxyproto"
)

// TestSourceCountsAnIPv6Prefix: peers from one IPv6 /64 count as one
// source for MaxPeersPerSource, as peers from one IPv4 address do.
// Before, every IPv6 address counted alone, and one host took every
// place of the node.
func TestSourceCountsAnIPv6Prefix(t *testing.T) {
	at := func(addr string) string {
		r := httptest.NewRequest("POST", Path, nil)
		r.RemoteAddr = addr
		return sourceIP(r, nil)
	}
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"[2001:db8:1:2::1]:443", "[2001:db8:1:2:ffff:ffff:ffff:ffff]:80", true},
		{"[2001:db8:1:2::1]:443", "[2001:db8:1:3::1]:443", false},
		{"192.0.2.7:1", "192.0.2.7:2", true},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7:2", true},
		{"192.0.2.7:1", "192.0.2.8:1", false},
	} {
		if got := at(tt.a) == at(tt.b); got != tt.same {
			t.Errorf("%s and %s: one source %v (%s, %s), want %v", tt.a, tt.b, got, at(tt.a), at(tt.b), tt.same)
		}
	}
}

// TestSourceBehindTrustedProxies: X-Forwarded-For is believed only from
// a trusted proxy, and then only as far as trusted proxies wrote it: the
// source is its rightmost address that is not a trusted proxy's.
func TestSourceBehindTrustedProxies(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("2001:db8:ff::1/128")}
	for _, tt := range []struct {
		name, from string
		xff        []string
		want       string
	}{
		{"no proxy, no header", "192.0.2.7:1", nil, "192.0.2.7"},
		{"an untrusted source's header is ignored", "192.0.2.7:1", []string{"198.51.100.1"}, "192.0.2.7"},
		{"a trusted proxy's client", "10.0.0.5:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"the client's own entries are not believed", "10.0.0.5:1", []string{"203.0.113.9, 198.51.100.1"}, "198.51.100.1"},
		{"a chain of trusted proxies", "10.0.0.5:1", []string{"203.0.113.9, 198.51.100.1, 10.0.0.7"}, "198.51.100.1"},
		{"headers given twice are one list", "10.0.0.5:1", []string{"203.0.113.9", "198.51.100.1, 10.0.0.7"}, "198.51.100.1"},
		{"hops with ports", "10.0.0.5:1", []string{"198.51.100.1:4711, [2001:db8:1:2::9]:443"}, "2001:db8:1:2::/64"},
		{"an IPv6 client counts its /64", "[2001:db8:ff::1]:1", []string{"2001:db8:1:2::9"}, "2001:db8:1:2::/64"},
		{"a trusted proxy without the header", "10.0.0.5:1", nil, "10.0.0.5"},
		{"trusted proxies only: the leftmost", "10.0.0.5:1", []string{"10.0.0.8, 10.0.0.7"}, "10.0.0.8"},
		{"a hop that does not parse stops at the last trusted", "10.0.0.5:1", []string{"198.51.100.1, garbage, 10.0.0.7"}, "10.0.0.7"},
		{"an empty header", "10.0.0.5:1", []string{""}, "10.0.0.5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", Path, nil)
			r.RemoteAddr = tt.from
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := sourceIP(r, trusted); got != tt.want {
				t.Errorf("source %s, want %s", got, tt.want)
			}
		})
	}
}

// TestSourceOfTheNodesOwnHost: a request from the node's own host to the
// address it came from (a reverse proxy beside the node) is counted per
// source under no key, as the node's HTTP listener does not count such a
// connection per address; a listed proxy's clients are still counted
// apart, and another loopback address is a source of its own.
func TestSourceOfTheNodesOwnHost(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	for _, tt := range []struct {
		name, from, local string
		trusted           []netip.Prefix
		xff               string
		want              string
		header            bool // the addresses are a PROXY protocol header's
	}{
		{"a proxy beside the node", "127.0.0.1:40000", "127.0.0.1:8080", nil, "", "", false},
		{"its X-Forwarded-For is not believed", "127.0.0.1:40000", "127.0.0.1:8080", nil, "192.0.2.1", "", false},
		{"a listed proxy beside the node counts its clients", "127.0.0.1:40000", "127.0.0.1:8080", trusted, "192.0.2.1", "192.0.2.1", false},
		{"a listed proxy's own requests", "127.0.0.1:40000", "127.0.0.1:8080", trusted, "", "", false},
		{"the node's own public address", "192.0.2.7:40000", "192.0.2.7:8080", nil, "", "", false},
		{"an IPv6 one", "[2001:db8::7]:40000", "[2001:db8::7]:8080", nil, "", "", false},
		{"another loopback address", "127.0.0.2:40000", "127.0.0.1:8080", nil, "", "127.0.0.2", false},
		{"a host elsewhere", "192.0.2.8:40000", "192.0.2.7:8080", nil, "", "192.0.2.8", false},
		// A balancer's header may name any addresses: they are never
		// the node's own host.
		{"a header naming loopback at both ends", "127.0.0.1:40000", "127.0.0.1:8080", nil, "", "127.0.0.1", true},
		{"a header naming one address at both ends", "192.0.2.9:40000", "192.0.2.9:8080", nil, "", "192.0.2.9", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", Path, nil)
			r.RemoteAddr = tt.from
			var local net.Addr = net.TCPAddrFromAddrPort(netip.MustParseAddrPort(tt.local))
			if tt.header {
				local = &proxyproto.Addr{TCPAddr: *net.TCPAddrFromAddrPort(netip.MustParseAddrPort(tt.local))}
			}
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, local))
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := sourceIP(r, tt.trusted); got != tt.want {
				t.Errorf("source %q, want %q", got, tt.want)
			}
		})
	}
}
