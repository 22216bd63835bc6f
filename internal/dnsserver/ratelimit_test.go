package dnsserver

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestRateLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newRateLimiter(3)
	a := clientNet(netip.MustParseAddr("192.0.2.7"))
	var got []bool
	for range 5 {
		got = append(got, l.allow(a, t0))
	}
	// 400 ms later one more token (1.2) has come back.
	got = append(got, l.allow(a, t0.Add(400*time.Millisecond)), l.allow(a, t0.Add(400*time.Millisecond)))
	if diff := cmp.Diff(got, []bool{true, true, true, false, false, true, false}); diff != "" {
		t.Errorf("allowed (-got +want):\n%s", diff)
	}
	// Another address of the same /24 shares the bucket; another /24 does not.
	if l.allow(clientNet(netip.MustParseAddr("192.0.2.200")), t0.Add(400*time.Millisecond)) {
		t.Error("192.0.2.200 allowed while 192.0.2.7 is over the limit")
	}
	if !l.allow(clientNet(netip.MustParseAddr("192.0.3.7")), t0) {
		t.Error("192.0.3.7 refused")
	}
	// IPv6 networks are /56; an IPv4-mapped address counts as IPv4.
	if diff := cmp.Diff([]string{
		clientNet(netip.MustParseAddr("2001:db8:1:2ff:1::1")).String(),
		clientNet(netip.MustParseAddr("::ffff:192.0.2.9")).String(),
	}, []string{"2001:db8:1:200::/56", "192.0.2.0/24"}); diff != "" {
		t.Errorf("client networks (-got +want):\n%s", diff)
	}
}

// The table of networks stays bounded: a new network finds room only once
// an old one has been idle long enough to forget, and the table is swept at
// most once a second.
func TestRateLimiterBounded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newRateLimiter(2)
	l.max = 2
	n := func(s string) netip.Prefix { return clientNet(netip.MustParseAddr(s)) }
	l.allow(n("10.0.1.1"), t0)
	l.allow(n("10.0.2.1"), t0)
	if l.allow(n("10.0.3.1"), t0) {
		t.Error("a third network allowed in a full table")
	}
	// 10.0.2.1 keeps busy; 10.0.1.1 has been idle for a second.
	l.allow(n("10.0.2.1"), t0.Add(900*time.Millisecond))
	if !l.allow(n("10.0.3.1"), t0.Add(1100*time.Millisecond)) {
		t.Error("a new network refused after an idle one could be forgotten")
	}
	if len(l.buckets) != 2 {
		t.Errorf("%d networks remembered, want 2", len(l.buckets))
	}
	if l.allow(n("10.0.4.1"), t0.Add(1200*time.Millisecond)) {
		t.Error("a new network allowed in a full table before a second passed since the last sweep")
	}
}

// Over the rate limit a UDP client gets an empty truncated reply, no larger
// than its query, and dig, a real client, gets the whole answer over TCP.
func TestServerRateLimitsUDP(t *testing.T) {
	s := newServer(t, newDir(manyNodes(60)...), func(c *Config) { c.RateLimit = 3 })
	var clock atomic.Int64 // seconds
	clock.Store(1000)
	s.now = func() time.Time { return time.Unix(clock.Load(), 0) }
	s.exempt = nil // the test's client is on loopback
	start(t, s)

	type reply struct {
		TC      bool
		Answers int
	}
	var got []reply
	for range 5 {
		r := exchange(t, "udp", s.Addr(), query("chat.test.", dns.TypeA, 1232))
		got = append(got, reply{r.Truncated, len(r.Answer)})
	}
	want := []reply{{false, 60}, {false, 60}, {false, 60}, {true, 0}, {true, 0}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("UDP replies (-got +want):\n%s", diff)
	}
	q := query("chat.test.", dns.TypeA, 1232)
	q.Id = dns.Id()
	packed, _ := q.Pack()
	raw := rawExchange(t, s.Addr(), q)
	if len(raw) > len(packed) {
		t.Errorf("limited reply of %d bytes to a query of %d", len(raw), len(packed))
	}
	limited := new(dns.Msg)
	if err := limited.Unpack(raw); err != nil {
		t.Fatal(err)
	}
	if !limited.Truncated || len(limited.Answer) != 0 || limited.IsEdns0() == nil {
		t.Errorf("limited reply: TC %v, %d answers, OPT %v; want TC, none, and an OPT as the query had", limited.Truncated, len(limited.Answer), limited.IsEdns0())
	}
	r := dig(t, s.Addr(), "chat.test", "A")
	if !r.Retried || len(r.Answer) != 60 {
		t.Errorf("dig over the limit: retried over TCP %v with %d answers, want a retry and all 60\n%s", r.Retried, len(r.Answer), r.Raw)
	}
	if got := s.Stats().RateLimited; got != 4 {
		t.Errorf("Stats().RateLimited = %d, want 4", got)
	}
	// A second later the client has its burst again.
	clock.Add(1)
	if r := exchange(t, "udp", s.Addr(), query("chat.test.", dns.TypeA, 1232)); r.Truncated || len(r.Answer) != 60 {
		t.Errorf("a second later: TC %v with %d answers, want the full answer", r.Truncated, len(r.Answer))
	}
}

// Loopback clients are not limited by default: nothing off the host can
// send with a loopback source.
func TestServerRateLimitSparesLoopback(t *testing.T) {
	s := startServer(t, newDir(manyNodes(3)...), func(c *Config) { c.RateLimit = 1 })
	for i := range 5 {
		if r := exchange(t, "udp", s.Addr(), query("chat.test.", dns.TypeA, 0)); r.Truncated {
			t.Fatalf("query %d from loopback truncated", i)
		}
	}
}

// Spoofed queries spread over the client networks of one victim network
// draw wideShare times one network's rate between them, not each
// network's rate: 64 IPv4 /24s of one /16, and 64 IPv6 /56s of one /32,
// each asking ten times in the same instant at a rate of 10, get 160 full
// replies, where they got 640. A client of another wide network is not
// held back by them.
func TestRateLimiterWideNetworks(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tt := range []struct {
		name   string
		client func(i int) netip.Addr
		other  netip.Addr
	}{
		{"IPv4 /24s of a /16", func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, byte(i), 7}) }, netip.MustParseAddr("198.52.0.7")},
		{"IPv6 /56s of a /32", func(i int) netip.Addr {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i), 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
		}, netip.MustParseAddr("2001:db9::1")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newRateLimiter(10)
			allowed := 0
			for i := range 64 {
				for range 10 {
					if l.allowClient(tt.client(i), t0) {
						allowed++
					}
				}
			}
			if allowed != 10*wideShare {
				t.Errorf("%d full replies to 64 client networks of one wide network, want %d", allowed, 10*wideShare)
			}
			if !l.allowClient(tt.other, t0) {
				t.Errorf("%v, of another wide network, refused", tt.other)
			}
			// One second later the wide network has its rate back.
			allowed = 0
			for i := range 64 {
				for range 10 {
					if l.allowClient(tt.client(i), t0.Add(time.Second)) {
						allowed++
					}
				}
			}
			if allowed != 10*wideShare {
				t.Errorf("a second later: %d full replies, want %d", allowed, 10*wideShare)
			}
		})
	}
}
