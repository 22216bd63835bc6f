package forwarded

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/proxyproto"
)

func TestParse(t *testing.T) {
	got, err := Parse("10.0.0.0/8, 192.0.2.7,2001:db8::1,::ffff:198.51.100.0/120,10.1.2.3/8")
	if err != nil {
		t.Fatal(err)
	}
	var strs []string
	for _, p := range got {
		strs = append(strs, p.String())
	}
	if want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128", "198.51.100.0/24", "10.0.0.0/8"}; !slices.Equal(strs, want) {
		t.Errorf("got %v, want %v", strs, want)
	}
	if got, err := Parse(""); err != nil || len(got) != 0 {
		t.Errorf("an empty list: %v, %v; want none", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "fe80::1%eth0", "proxy"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestClient(t *testing.T) {
	proxies, err := Parse("10.0.0.0/8,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		peer   string
		values []string
		want   string
	}{
		{"not a proxy: its header is ignored", "192.0.2.1", []string{"198.51.100.9"}, "192.0.2.1"},
		{"a proxy, one hop", "10.0.0.5", []string{"198.51.100.9"}, "198.51.100.9"},
		{"the client's own claims are left of it", "10.0.0.5", []string{"203.0.113.66, 198.51.100.9"}, "198.51.100.9"},
		{"proxies in a chain", "10.0.0.5", []string{"198.51.100.9, 10.1.1.1"}, "198.51.100.9"},
		{"several header lines are one list", "10.0.0.5", []string{"203.0.113.66", "198.51.100.9, 10.1.1.1"}, "198.51.100.9"},
		{"a hop with a port", "10.0.0.5", []string{"[2001:db9::7]:4431"}, "2001:db9::7"},
		{"IPv4 with a port", "10.0.0.5", []string{"198.51.100.9:5000"}, "198.51.100.9"},
		{"no header: the proxy itself", "10.0.0.5", nil, "10.0.0.5"},
		{"only proxies: the leftmost", "10.0.0.5", []string{"10.2.2.2, 10.1.1.1"}, "10.2.2.2"},
		{"garbage stops at the last trusted", "10.0.0.5", []string{"198.51.100.9, nonsense"}, "10.0.0.5"},
		{"an IPv6 proxy", "2001:db8::1", []string{"198.51.100.9"}, "198.51.100.9"},
		{"an IPv4-mapped peer", "::ffff:10.0.0.5", []string{"198.51.100.9"}, "198.51.100.9"},
	} {
		got := proxies.Client(netip.MustParseAddr(tc.peer), tc.values)
		if got.String() != tc.want {
			t.Errorf("%s: Client(%s, %q) = %s, want %s", tc.name, tc.peer, tc.values, got, tc.want)
		}
	}
	var none Proxies
	if got := none.Client(netip.MustParseAddr("10.0.0.5"), []string{"198.51.100.9"}); got.String() != "10.0.0.5" {
		t.Errorf("no proxies trusted: %s, want the peer", got)
	}
}

// One key (and one host) per IPv4 address and per IPv6 /64, the same
// however the address was written.
func TestSourceKey(t *testing.T) {
	for _, tt := range []struct{ addr, want, host string }{
		{"192.0.2.7", "192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::/64", "fe80::"},
		{"::1", "::/64", "::"},
	} {
		if got := SourceKey(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("SourceKey(%s) = %q, want %q", tt.addr, got, tt.want)
		}
		if got := SourceHost(netip.MustParseAddr(tt.addr)); got != netip.MustParseAddr(tt.host) {
			t.Errorf("SourceHost(%s) = %s, want %s", tt.addr, got, tt.host)
		}
	}
	if got := SourceKey(netip.Addr{}); got != "" {
		t.Errorf("SourceKey of the zero Addr = %q, want none", got)
	}
	if got := SourceHost(netip.Addr{}); got.IsValid() {
		t.Errorf("SourceHost of the zero Addr = %s, want the zero Addr", got)
	}
}

// The node's own host by the connection's own addresses only: never by
// those a PROXY protocol header named.
func TestOwnHost(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	header := func(s string) net.Addr {
		return &proxyproto.Addr{TCPAddr: *net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))}
	}
	for _, tt := range []struct {
		name   string
		local  net.Addr
		client string
		want   bool
	}{
		{"loopback to itself", tcp("127.0.0.1:7071"), "127.0.0.1", true},
		{"the node's public address", tcp("192.0.2.7:7071"), "192.0.2.7", true},
		{"IPv4-mapped", tcp("[::ffff:192.0.2.7]:7071"), "192.0.2.7", true},
		{"another loopback address", tcp("127.0.0.1:7071"), "127.0.0.2", false},
		{"a host elsewhere", tcp("192.0.2.7:7071"), "192.0.2.8", false},
		{"a header naming loopback twice", header("127.0.0.1:7071"), "127.0.0.1", false},
		{"no local address", nil, "127.0.0.1", false},
	} {
		if got := OwnHost(tt.local, netip.MustParseAddr(tt.client)); got != tt.want {
			t.Errorf("%s: OwnHost = %v, want %v", tt.name, got, tt.want)
		}
	}
}
