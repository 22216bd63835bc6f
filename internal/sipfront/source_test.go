package sipfront

import (
	"log/slog"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/directory"
)

// TestPerSourceCountsAnIPv6Prefix: two callers from one IPv6 /64 share
// the per-source limit, as two from one IPv4 address do; callers from
// another /64 or another IPv4 address do not. Before, every IPv6
// address counted alone, and one host took every place of the node.
func TestPerSourceCountsAnIPv6Prefix(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Config{Service: "s", NodeID: "n1", NodeAddr: "127.0.0.1:1",
		Nodes: func() []directory.Node { return nil }, MaxCallsPerSource: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	from := func(src string) *sip.Request {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "lobby", Host: "127.0.0.1"})
		req.SetSource(src)
		return req
	}
	for _, tt := range []struct{ first, second string }{
		{"[2001:db8:1:2::1]:5060", "[2001:db8:1:2:ffff:ffff:ffff:ffff]:5070"},
		{"192.0.2.7:5060", "192.0.2.7:5070"},
		{"[::ffff:192.0.2.8]:5060", "192.0.2.8:5070"},
	} {
		p, _, _, _ := s.admit(sourceIP(from(tt.first)))
		if p == nil {
			t.Fatalf("%s: the first call refused", tt.first)
		}
		if again, _, code, _ := s.admit(sourceIP(from(tt.second))); again != nil || code != 486 {
			t.Errorf("%s after %s: code %d, want 486 (one source)", tt.second, tt.first, code)
		}
		s.release(p)
		s.wg.Done() // the call admit counted
	}
	for _, tt := range []struct{ first, second string }{
		{"[2001:db8:1:2::1]:5060", "[2001:db8:1:3::1]:5060"},
		{"192.0.2.7:5060", "192.0.2.9:5060"},
	} {
		a, _, _, _ := s.admit(sourceIP(from(tt.first)))
		b, _, code, _ := s.admit(sourceIP(from(tt.second)))
		if a == nil || b == nil {
			t.Errorf("%s and %s: code %d, want both taken (two sources)", tt.first, tt.second, code)
		}
		for _, p := range []*place{a, b} {
			if p != nil {
				s.release(p)
				s.wg.Done()
			}
		}
	}
}
