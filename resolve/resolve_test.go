package resolve

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/dnsserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// responder starts a real Switchboard DNS responder for chat.test on
// 127.0.0.1:0 over nodes, and returns its address and a way to change the
// directory.
func responder(t *testing.T, nodes ...directory.Node) (addr string, set func(...directory.Node)) {
	t.Helper()
	var snap atomic.Pointer[[]directory.Node]
	set = func(nodes ...directory.Node) {
		s := slices.Clone(nodes)
		snap.Store(&s)
	}
	set(nodes...)
	cfg := dnsserver.DefaultConfig("chat.test", func() []directory.Node { return *snap.Load() })
	cfg.Addr = "127.0.0.1:0"
	s, err := dnsserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s.Addr(), set
}

// staticServer serves h over UDP and TCP on one loopback port until the test
// ends.
func staticServer(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	// Another program may hold the TCP side of the free UDP port: try
	// another.
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if attempt == 8 {
				t.Fatalf("no port free over both UDP and TCP: %v", err)
			}
		}
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		up, done := make(chan struct{}), make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(up) }
		go func() { done <- srv.ActivateAndServe() }()
		select {
		case <-up:
		case err := <-done:
			t.Fatal(err)
		}
		t.Cleanup(func() {
			srv.Shutdown()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	return pc.LocalAddr().String()
}

// plainDNS answers like a zone with A/AAAA round robin and no SRV records:
// plain.test has two A records and one AAAA; every other name is NXDOMAIN.
func plainDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	if !strings.EqualFold(q.Name, "plain.test.") {
		m.Rcode = dns.RcodeNameError
		w.WriteMsg(m)
		return
	}
	for _, s := range []string{"plain.test. 5 IN A 127.0.2.1", "plain.test. 5 IN A 127.0.2.2", "plain.test. 5 IN AAAA 2001:db8::2"} {
		rr, _ := dns.NewRR(s)
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	w.WriteMsg(m)
}

// system returns a net.Resolver that sends its queries to addr: the system
// resolver path, against a server of the test's own.
func system(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func up(id, addr string, users, capacity int) directory.Node {
	return directory.Node{ID: id, Addr: addr, Status: directory.Up, Users: users, Capacity: capacity}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestLookupSRV(t *testing.T) {
	addr, set := responder(t,
		up("a", "127.0.0.1:7001", 0, 10),
		up("b", "127.0.0.2:7002", 5, 10),
		up("c", "[::1]:7003", 0, 10),
		directory.Node{ID: "d", Addr: "127.0.0.4:7004", Status: directory.Draining, Capacity: 10},
	)
	cfg := Config{Resolver: addr, DefaultPort: 9999}
	got, err := Lookup(t.Context(), cfg, "chat.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:7001", "127.0.0.2:7002", "[::1]:7003"}
	if diff := cmp.Diff(sorted(got), want); diff != "" {
		t.Errorf("Lookup (-got +want):\n%s", diff)
	}

	// The system resolver path gets the same records, and their targets'
	// addresses through the same resolver: the addresses the directory
	// lists, not names a client could not match to its nodes.
	sys := Config{NetResolver: system(addr), DefaultPort: 9999}
	got, err = Lookup(t.Context(), sys, "chat.test.")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sorted(got), want); diff != "" {
		t.Errorf("Lookup via the system resolver (-got +want):\n%s", diff)
	}

	// A node that leaves the directory leaves the answer.
	set(up("a", "127.0.0.1:7001", 10, 10), up("b", "127.0.0.2:7002", 5, 10))
	got, err = Lookup(t.Context(), cfg, "CHAT.test")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []string{"127.0.0.2:7002"}); diff != "" {
		t.Errorf("Lookup after a filled up (-got +want):\n%s", diff)
	}
}

// 200 servers do not fit in one UDP reply: Lookup asks again over TCP.
func TestLookupTruncated(t *testing.T) {
	var nodes []directory.Node
	for i := range 200 {
		nodes = append(nodes, up(fmt.Sprintf("n%d", i), fmt.Sprintf("127.1.%d.%d:7070", i/250, i%250+1), 0, 10))
	}
	addr, _ := responder(t, nodes...)
	got, err := Lookup(t.Context(), Config{Resolver: addr}, "chat.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 200 {
		t.Errorf("Lookup returned %d addresses, want 200", len(got))
	}
}

func TestLookupAFallback(t *testing.T) {
	addr := staticServer(t, plainDNS)
	want := []string{"127.0.2.1:7070", "127.0.2.2:7070", "[2001:db8::2]:7070"}
	for _, cfg := range []Config{
		{Resolver: addr, DefaultPort: 7070},
		{NetResolver: system(addr), DefaultPort: 7070},
	} {
		got, err := Lookup(t.Context(), cfg, "plain.test")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sorted(got), want); diff != "" {
			t.Errorf("Lookup with resolver %q (-got +want):\n%s", cfg.Resolver, diff)
		}
	}
}

func TestLookupNoAddress(t *testing.T) {
	static := staticServer(t, plainDNS)
	empty, _ := responder(t, directory.Node{ID: "a", Addr: "127.0.0.1:7001", Status: directory.Down})
	tests := []struct {
		name    string
		cfg     Config
		service string
	}{
		{"NXDOMAIN everywhere", Config{Resolver: static, DefaultPort: 7070}, "missing.test"},
		{"NXDOMAIN via the system resolver", Config{NetResolver: system(static), DefaultPort: 7070}, "missing.test"},
		{"no server available", Config{Resolver: empty, DefaultPort: 7070}, "chat.test"},
		{"no SRV and no DefaultPort", Config{Resolver: static}, "plain.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Lookup(t.Context(), tt.cfg, tt.service)
			if !errors.Is(err, ErrNoAddress) {
				t.Fatalf("Lookup = %v, %v; want ErrNoAddress", got, err)
			}
			if !strings.HasPrefix(err.Error(), "resolve: no address for "+tt.service) {
				t.Errorf("error %q does not say which name", err)
			}
		})
	}
}

func TestLookupErrors(t *testing.T) {
	addr, _ := responder(t)
	_, err := Lookup(t.Context(), Config{Resolver: addr, DefaultPort: 7070}, "example.com")
	// Refused for SRV, then for A and AAAA, which a server that refuses
	// SRV alone would have answered.
	want := "resolve: looking up SRV for example.com via " + addr + ": server answered REFUSED\nresolve: looking up A for example.com"
	if err == nil || !strings.HasPrefix(err.Error(), want) || errors.Is(err, ErrNoAddress) {
		t.Errorf("Lookup outside the zone: %v, want %q", err, want)
	}

	// A server that never answers: the Timeout ends the lookup. The
	// caller's context has no deadline and stays live, so only Lookup's
	// own bound can end it (TestLookupDeadlineIsTimeout checks that the
	// bound is Config.Timeout).
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	_, err = Lookup(t.Context(), Config{Resolver: silent.LocalAddr().String(), Timeout: 200 * time.Millisecond}, "chat.test")
	if err == nil || !strings.HasPrefix(err.Error(), "resolve: looking up SRV for chat.test via "+silent.LocalAddr().String()) {
		t.Errorf("Lookup with a silent server: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if t.Context().Err() != nil {
		t.Errorf("the caller's context ended: %v", t.Context().Err())
	}

	if _, err := Lookup(t.Context(), Config{}, "bad..name"); err == nil || !strings.HasPrefix(err.Error(), "resolve: ") {
		t.Errorf("Lookup of a bad name: %v", err)
	}
}

// Lookup bounds its queries by Config.Timeout, whatever the resolver:
// the context a query dials with has the deadline Lookup's start plus
// Timeout, or for the SRV query, which leaves a quarter of it (at most 1 s)
// to the A/AAAA fallback, Timeout less that. The dial is refused at once,
// so no time passes waiting; the deadline is read, not raced.
func TestLookupDeadlineIsTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{0, 200 * time.Millisecond, 900 * time.Millisecond} {
		t.Run(timeout.String(), func(t *testing.T) {
			var mu sync.Mutex // the resolver may ask A and AAAA at once
			var deadlines []time.Time
			refuse := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
				dl, ok := ctx.Deadline()
				if !ok {
					t.Errorf("a query dialled %s with no deadline", address)
				}
				mu.Lock()
				deadlines = append(deadlines, dl)
				mu.Unlock()
				return nil, errors.New("refused by the test")
			}}
			before := time.Now()
			_, err := Lookup(t.Context(), Config{NetResolver: refuse, Timeout: timeout, DefaultPort: 7070}, "chat.test")
			after := time.Now()
			if err == nil {
				t.Fatal("Lookup succeeded with every query refused")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(deadlines) == 0 {
				t.Fatalf("no query was dialled: %v", err)
			}
			want := timeout
			if want == 0 {
				want = DefaultTimeout
			}
			for _, dl := range deadlines {
				// The system resolver may bound a query more tightly
				// (resolv.conf's timeout, at least 1s), never less so.
				if dl.After(after.Add(want)) || (want < time.Second && dl.Before(before.Add(want-want/4))) {
					t.Errorf("a query's deadline is %v after Lookup began, want %v", dl.Sub(before), want)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name, resolver, want, wantErr string
		port                          int
		timeout                       time.Duration
	}{
		{name: "host and port", resolver: "127.0.0.1:5353", want: "127.0.0.1:5353"},
		{name: "IPv4 alone", resolver: "127.0.0.1", want: "127.0.0.1:53"},
		{name: "IPv6 alone", resolver: "::1", want: "[::1]:53"},
		{name: "IPv6 in brackets", resolver: "[::1]", want: "[::1]:53"},
		{name: "name alone", resolver: "dns.example", want: "dns.example:53"},
		{name: "system", resolver: "", want: ""},
		{name: "bad port", resolver: "127.0.0.1:dns", wantErr: "resolve: config: Resolver"},
		{name: "port zero", resolver: "127.0.0.1:0", wantErr: "resolve: config: Resolver"},
		{name: "negative timeout", timeout: -time.Second, wantErr: "resolve: config: negative Timeout"},
		{name: "port too big", port: 70000, wantErr: "resolve: config: DefaultPort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Resolver: tt.resolver, DefaultPort: tt.port, Timeout: tt.timeout}
			err := c.validate()
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Errorf("validate: %v, want %q...", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Resolver != tt.want || c.Timeout != DefaultTimeout || c.NetResolver == nil {
				t.Errorf("validated config %+v, want Resolver %q and defaults", c, tt.want)
			}
		})
	}
}

func TestOrderSRVPriority(t *testing.T) {
	recs := []srvRecord{
		{priority: 20, weight: 65535, port: 1, target: "late."},
		{priority: 0, weight: 1, port: 2, target: "first-a."},
		{priority: 10, weight: 0, port: 3, target: "mid."},
		{priority: 0, weight: 1, port: 4, target: "first-b."},
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		got := orderSRV(recs, rnd)
		var prios []uint16
		for _, r := range got {
			prios = append(prios, r.priority)
		}
		if !slices.Equal(prios, []uint16{0, 0, 10, 20}) {
			t.Fatalf("priorities in order %v, want 0 0 10 20", prios)
		}
	}
}

// The weighted order agrees with a direct reading of RFC 2782: a record
// comes first with probability about weight/sum, and a record of weight 0
// only rarely.
func TestOrderSRVWeights(t *testing.T) {
	recs := []srvRecord{
		{weight: 6000, target: "a."},
		{weight: 3000, target: "b."},
		{weight: 1000, target: "c."},
		{weight: 0, target: "zero."},
	}
	rnd := rand.New(rand.NewPCG(7, 7))
	const trials = 20000
	first := map[string]int{}
	for range trials {
		got := orderSRV(recs, rnd)
		if len(got) != len(recs) {
			t.Fatalf("order lost records: %v", got)
		}
		first[got[0].target]++
	}
	for _, r := range recs {
		share := float64(first[r.target]) / trials
		want := float64(r.weight) / 10000
		if share < want-0.02 || share > want+0.02 {
			t.Errorf("%s first in %.3f of orders, want about %.3f", r.target, share, want)
		}
	}
}

// A fixed seed gives a fixed order; other seeds give other orders.
func TestLookupRandomOrder(t *testing.T) {
	addr := staticServer(t, plainDNS)
	lookup := func(seed uint64) []string {
		cfg := Config{Resolver: addr, DefaultPort: 7070, Rand: rand.New(rand.NewPCG(seed, seed))}
		got, err := Lookup(t.Context(), cfg, "plain.test")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if a, b := lookup(42), lookup(42); !slices.Equal(a, b) {
		t.Errorf("seed 42 gave %v then %v", a, b)
	}
	orders := map[string]bool{}
	for seed := range uint64(40) {
		orders[strings.Join(lookup(seed), ",")] = true
	}
	// 3 addresses, two IPv4 and one IPv6, families taking turns: 4 orders
	// (the IPv6 address first or between the other two).
	if len(orders) != 4 {
		t.Errorf("40 seeds gave %d distinct orders of 3 addresses, want all 4 that alternate families: %v", len(orders), orders)
	}

	// SRV: with equal weights every server comes first for some seed.
	srvAddr, _ := responder(t, up("a", "127.0.0.1:7001", 0, 10), up("b", "127.0.0.2:7002", 0, 10), up("c", "127.0.0.3:7003", 0, 10))
	firsts := map[string]bool{}
	for seed := range uint64(30) {
		got, err := Lookup(t.Context(), Config{Resolver: srvAddr, Rand: rand.New(rand.NewPCG(seed, 1))}, "chat.test")
		if err != nil {
			t.Fatal(err)
		}
		firsts[got[0]] = true
	}
	if len(firsts) != 3 {
		t.Errorf("30 seeds put %d distinct servers first, want 3", len(firsts))
	}
}

// noGlueDNS answers like a caching resolver that drops the additional
// section: _switchboard._tcp.cache.test has SRV records for a, b and
// gone.cache.test without their addresses; a and b have A records, gone
// has none.
func noGlueDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	records := map[string][]string{
		"_switchboard._tcp.cache.test.": {
			"_switchboard._tcp.cache.test. 5 IN SRV 0 1 7001 a.cache.test.",
			"_switchboard._tcp.cache.test. 5 IN SRV 0 1 7002 b.cache.test.",
			"_switchboard._tcp.cache.test. 5 IN SRV 0 1 7003 gone.cache.test.",
		},
		"a.cache.test.":    {"a.cache.test. 5 IN A 127.0.3.1"},
		"b.cache.test.":    {"b.cache.test. 5 IN A 127.0.3.2", "b.cache.test. 5 IN AAAA ::1"},
		"gone.cache.test.": nil,
	}
	rrs, ok := records[strings.ToLower(q.Name)]
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	for _, s := range rrs {
		rr, _ := dns.NewRR(s)
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	w.WriteMsg(m)
}

// SRV targets that come without their addresses are looked up through
// the same DNS server, never the system resolver; a target it knows no
// address for is left out.
func TestLookupSRVWithoutGlue(t *testing.T) {
	addr := staticServer(t, noGlueDNS)
	got, err := Lookup(t.Context(), Config{Resolver: addr}, "cache.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.3.1:7001", "127.0.3.2:7002", "[::1]:7002"}
	if diff := cmp.Diff(sorted(got), want); diff != "" {
		t.Errorf("Lookup (-got +want):\n%s", diff)
	}

	// The system resolver never gives the additional section: the targets
	// are looked up through it, and one without an address keeps its name
	// for the dialler.
	got, err = Lookup(t.Context(), Config{NetResolver: system(addr)}, "cache.test")
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"127.0.3.1:7001", "127.0.3.2:7002", "[::1]:7002", "gone.cache.test:7003"}
	if diff := cmp.Diff(sorted(got), want); diff != "" {
		t.Errorf("Lookup via the system resolver (-got +want):\n%s", diff)
	}
}

// SRV targets without their addresses are looked up at once, not one after
// another: this server answers no target's A or AAAA query until every
// target has asked, so that looking them up in turn waits out the Timeout
// on the first and gets no address.
func TestLookupTargetsConcurrently(t *testing.T) {
	const n = 3
	var mu sync.Mutex
	asked := map[string]bool{}
	all := make(chan struct{}) // closed when every target has asked
	addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		var i int
		switch _, err := fmt.Sscanf(name, "w%d.wait.test.", &i); {
		case name == "_switchboard._tcp.wait.test." && q.Qtype == dns.TypeSRV:
			for i := range n {
				rr, _ := dns.NewRR(fmt.Sprintf("%s 5 IN SRV 0 1 %d w%d.wait.test.", name, 7000+i, i))
				m.Answer = append(m.Answer, rr)
			}
		case err == nil && i < n:
			mu.Lock()
			if !asked[name] {
				asked[name] = true
				if len(asked) == n {
					close(all)
				}
			}
			mu.Unlock()
			select {
			case <-all:
			case <-t.Context().Done():
				return // the test is over; let the server shut down
			}
			if q.Qtype == dns.TypeA {
				rr, _ := dns.NewRR(fmt.Sprintf("%s 5 IN A 127.0.5.%d", name, i+1))
				m.Answer = append(m.Answer, rr)
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	got, err := Lookup(t.Context(), Config{Resolver: addr}, "wait.test")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	want := []string{"127.0.5.1:7000", "127.0.5.2:7001", "127.0.5.3:7002"}
	if diff := cmp.Diff(sorted(got), want); diff != "" {
		t.Errorf("Lookup (-got +want):\n%s", diff)
	}
}

// NoSRV asks for the A records alone, as a plain round-robin front: the
// responder's SRV records (each node's own port) are not asked, and every
// address comes with DefaultPort.
func TestLookupNoSRV(t *testing.T) {
	addr, _ := responder(t,
		up("a", "127.0.0.1:7001", 0, 10),
		up("b", "127.0.0.2:7002", 5, 10),
	)
	got, err := Lookup(t.Context(), Config{Resolver: addr, DefaultPort: 9999, NoSRV: true}, "chat.test")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sorted(got), []string{"127.0.0.1:9999", "127.0.0.2:9999"}); diff != "" {
		t.Errorf("Lookup with NoSRV (-got +want):\n%s", diff)
	}
	if _, err := Lookup(t.Context(), Config{Resolver: addr, NoSRV: true}, "chat.test"); !errors.Is(err, ErrNoAddress) {
		t.Errorf("NoSRV without a DefaultPort: %v, want ErrNoAddress", err)
	}
}
