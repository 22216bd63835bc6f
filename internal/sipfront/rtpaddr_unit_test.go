package sipfront

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/textsdp"
)

// TestRTPAddrCheck: the text stream of a caller's SDP may name only the
// IP address its request came from (or a hold, which names nowhere);
// with RTPAnyAddress any address but loopback from a caller elsewhere.
// The addresses are compared without IPv4 mapping and zones, and an
// IPv6 neighbour in the caller's /64 is another host.
func TestRTPAddrCheck(t *testing.T) {
	media := func(addr string) textsdp.Media {
		a := netip.MustParseAddr(addr)
		return textsdp.Media{Addr: netip.AddrPortFrom(a, 4000), Held: a.IsUnspecified()}
	}
	for _, tt := range []struct {
		name, sdp, source string
		anyAddr           bool
		ok                bool
		says              string // in the error
	}{
		{"its own address", "192.0.2.1", "192.0.2.1:5060", false, true, ""},
		{"its own, the source IPv4-mapped", "192.0.2.1", "[::ffff:192.0.2.1]:5060", false, true, ""},
		{"its own IPv6 address", "2001:db8::1", "[2001:db8::1]:5060", false, true, ""},
		{"its own link-local address, the source with a zone", "fe80::1", "[fe80::1%eth0]:5060", false, true, ""},
		{"a hold", "0.0.0.0", "192.0.2.1:5060", false, true, ""},
		{"another host", "198.51.100.7", "192.0.2.1:5060", false, false, "names 198.51.100.7, the request came from 192.0.2.1"},
		{"the node's loopback", "127.0.0.1", "192.0.2.1:5060", false, false, "names 127.0.0.1"},
		{"another loopback address from loopback", "127.0.0.2", "127.0.0.1:5060", false, false, "names 127.0.0.2"},
		{"an IPv6 neighbour of the same /64", "2001:db8::2", "[2001:db8::1]:5060", false, false, "names 2001:db8::2"},
		{"IPv6 from IPv4", "2001:db8::1", "192.0.2.1:5060", false, false, "names 2001:db8::1"},
		{"a private address behind NAT", "192.168.1.10", "203.0.113.5:5060", false, false, "a private address (a caller behind NAT?)"},
		{"carrier-grade NAT", "100.64.1.10", "203.0.113.5:5060", false, false, "a private address"},
		{"a source that is no address", "192.0.2.1", "", false, false, "is not an IP address"},
		{"any address: another host", "198.51.100.7", "192.0.2.1:5060", true, true, ""},
		{"any address: a private one", "192.168.1.10", "203.0.113.5:5060", true, true, ""},
		{"any address: loopback from elsewhere", "127.0.0.1", "192.0.2.1:5060", true, false, "a loopback address"},
		{"any address: IPv6 loopback from elsewhere", "::1", "[2001:db8::1]:5060", true, false, "a loopback address"},
		{"any address: loopback from loopback", "127.0.0.2", "127.0.0.1:5060", true, true, ""},
	} {
		err := rtpAddrCheck(media(tt.sdp), tt.source, tt.anyAddr)
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v, want it taken", tt.name, err)
		case !tt.ok && !errors.Is(err, ErrForeignRTPAddr):
			t.Errorf("%s: %v, want ErrForeignRTPAddr", tt.name, err)
		case !tt.ok && !strings.Contains(err.Error(), tt.says):
			t.Errorf("%s: %q does not say %q", tt.name, err, tt.says)
		}
	}
}
