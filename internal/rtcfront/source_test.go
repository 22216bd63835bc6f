package rtcfront

import (
	"net/http/httptest"
	"testing"
)

// TestSourceCountsAnIPv6Prefix: peers from one IPv6 /64 count as one
// source for MaxPeersPerSource, as peers from one IPv4 address do.
// Before, every IPv6 address counted alone, and one host took every
// place of the node.
func TestSourceCountsAnIPv6Prefix(t *testing.T) {
	at := func(addr string) string {
		r := httptest.NewRequest("POST", Path, nil)
		r.RemoteAddr = addr
		return sourceIP(r).String()
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
