package resolve

import (
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

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/dnsserver"
)

// isUDP reports whether w answers over UDP.
func isUDP(w dns.ResponseWriter) bool {
	return w.LocalAddr().Network() == "udp"
}

// One lost UDP datagram costs a resend, not the whole Timeout: the first
// query sent over UDP is dropped, and Lookup still succeeds well within
// its Timeout.
func TestLookupResendsLostUDP(t *testing.T) {
	var dropped atomic.Bool
	addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if isUDP(w) && !dropped.Swap(true) {
			return // lost on the way
		}
		plainDNS(w, r)
	})
	got, err := Lookup(t.Context(), Config{Resolver: addr, DefaultPort: 7070, Timeout: 4 * time.Second}, "plain.test")
	if err != nil {
		t.Fatalf("Lookup after one lost datagram: %v", err)
	}
	if diff := cmp.Diff(sorted(got), []string{"127.0.2.1:7070", "127.0.2.2:7070", "[2001:db8::2]:7070"}); diff != "" {
		t.Errorf("Lookup (-got +want):\n%s", diff)
	}
}

// A lost A query is sent again within the 2 s the Go client gives a
// lookup (its attempt timeout): the A query keeps the whole budget when
// it is that short, rather than leave part of it to AAAA.
func TestLookupResendsALostAQueryInAShortBudget(t *testing.T) {
	var dropped atomic.Bool
	addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if isUDP(w) && r.Question[0].Qtype == dns.TypeA && !dropped.Swap(true) {
			return // lost on the way
		}
		plainDNS(w, r)
	})
	got, err := Lookup(t.Context(), Config{Resolver: addr, DefaultPort: 7070, Timeout: 2 * time.Second}, "plain.test")
	if err != nil {
		t.Fatalf("Lookup after a lost A query: %v", err)
	}
	if !slices.Contains(got, "127.0.2.1:7070") {
		t.Errorf("Lookup = %v, want the A records among them", got)
	}
}

// Before the real reply, the server (or someone forging its address) sends
// something that is not the answer: Lookup skips it and takes the answer.
func TestLookupSkipsWrongReplies(t *testing.T) {
	evil, _ := dns.NewRR("evil.test. 5 IN A 6.6.6.6")
	tests := []struct {
		name  string
		first func(w dns.ResponseWriter, r *dns.Msg)
	}{
		{"another question", func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Question[0].Name = "evil.test."
			if r.Question[0].Qtype == dns.TypeA {
				m.Answer = []dns.RR{evil}
			}
			w.WriteMsg(m)
		}},
		{"a query, not a response", func(w dns.ResponseWriter, r *dns.Msg) {
			m := r.Copy()
			m.Response = false
			w.WriteMsg(m)
		}},
		{"bytes that do not parse", func(w dns.ResponseWriter, r *dns.Msg) {
			// A header that promises one question, then nothing.
			w.Write([]byte{byte(r.Id >> 8), byte(r.Id), 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0})
		}},
		{"another ID", func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Id = r.Id + 1
			m.Rcode = dns.RcodeServerFailure
			w.WriteMsg(m)
		}},
		{"NXDOMAIN without a question", func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Question = nil
			m.Rcode = dns.RcodeNameError
			w.WriteMsg(m)
		}},
		{"NOERROR without a question", func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Question = nil
			if r.Question[0].Qtype == dns.TypeA {
				m.Answer = []dns.RR{evil}
			}
			w.WriteMsg(m)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
				tt.first(w, r)
				plainDNS(w, r)
			})
			got, err := Lookup(t.Context(), Config{Resolver: addr, DefaultPort: 7070, Timeout: 4 * time.Second}, "plain.test")
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if diff := cmp.Diff(sorted(got), []string{"127.0.2.1:7070", "127.0.2.2:7070", "[2001:db8::2]:7070"}); diff != "" {
				t.Errorf("Lookup (-got +want):\n%s", diff)
			}
		})
	}
}

// A server that could not take the query (FORMERR, SERVFAIL, NOTIMP,
// REFUSED) may answer without the question, as servers do with FORMERR:
// that reply is taken, not skipped for a better one.
func TestLookupTakesQuestionlessErrors(t *testing.T) {
	for _, rcode := range []int{dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNotImplemented, dns.RcodeRefused} {
		t.Run(dns.RcodeToString[rcode], func(t *testing.T) {
			addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
				m := new(dns.Msg)
				m.SetRcode(r, rcode)
				m.Question = nil
				w.WriteMsg(m)
				plainDNS(w, r) // too late: the error was taken
			})
			_, err := Lookup(t.Context(), Config{Resolver: addr, Timeout: 4 * time.Second}, "plain.test")
			if want := "server answered " + dns.RcodeToString[rcode]; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Lookup: %v, want %q", err, want)
			}
		})
	}
}

// manyTargetsDNS lists n SRV targets for _switchboard._tcp.many.test without
// their addresses; t0.many.test has SERVFAIL for its A records, every
// other target has one A record. It counts the queries for targets.
type manyTargetsDNS struct {
	n         int
	oversized bool // UDP replies are not truncated to the size offered

	mu      sync.Mutex
	targets int // queries for targets' addresses
}

func (s *manyTargetsDNS) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	switch {
	case name == "_switchboard._tcp.many.test." && q.Qtype == dns.TypeSRV:
		for i := range s.n {
			// t0 has the highest priority, so it is always asked first.
			rr, _ := dns.NewRR(fmt.Sprintf("%s 5 IN SRV %d 1 7070 t%d.many.test.", name, min(i, 1), i))
			m.Answer = append(m.Answer, rr)
		}
	case strings.HasSuffix(name, ".many.test."):
		s.mu.Lock()
		s.targets++
		s.mu.Unlock()
		if name == "t0.many.test." {
			m.Rcode = dns.RcodeServerFailure
			break
		}
		var i int
		fmt.Sscanf(name, "t%d.", &i)
		if q.Qtype == dns.TypeA {
			// One address a target: two targets of one address would
			// count once among the addresses Lookup returns.
			rr, _ := dns.NewRR(fmt.Sprintf("%s 5 IN A 127.0.%d.%d", name, 4+i/250, i%250+1))
			m.Answer = append(m.Answer, rr)
		}
	default:
		m.Rcode = dns.RcodeNameError
	}
	if isUDP(w) && !s.oversized {
		m.Truncate(ednsSize)
	}
	w.WriteMsg(m)
}

// A target whose lookup fails is left out, not the whole answer; and a
// server listing hundreds of targets without their addresses gets a bounded
// number of queries, not two per target. The SRV reply comes truncated
// over UDP, then whole over TCP.
func TestLookupTargetsWithoutGlue(t *testing.T) {
	srv := &manyTargetsDNS{n: 300}
	addr := staticServer(t, srv.ServeDNS)
	got, err := Lookup(t.Context(), Config{Resolver: addr}, "many.test")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if len(got) != maxTargetLookups-1 {
		t.Errorf("%d addresses %v, want %d (the targets looked up, but t0)", len(got), got, maxTargetLookups-1)
	}
	srv.mu.Lock()
	asked := srv.targets
	srv.mu.Unlock()
	if asked > 2*maxTargetLookups {
		t.Errorf("%d queries for targets, want at most %d", asked, 2*maxTargetLookups)
	}

	// With t0 alone, its failure is what Lookup reports.
	one := staticServer(t, (&manyTargetsDNS{n: 1}).ServeDNS)
	_, err = Lookup(t.Context(), Config{Resolver: one}, "many.test")
	if err == nil || errors.Is(err, ErrNoAddress) || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("Lookup with the only target failing: %v, want its SERVFAIL", err)
	}
}

// A server that ignores the EDNS0 size offered and sends a larger UDP reply
// is read whole, not dropped as unreadable.
func TestLookupOversizedUDPReply(t *testing.T) {
	addr := staticServer(t, (&manyTargetsDNS{n: 200, oversized: true}).ServeDNS)
	got, err := Lookup(t.Context(), Config{Resolver: addr}, "many.test")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if len(got) != maxTargetLookups-1 {
		t.Errorf("%d addresses, want %d", len(got), maxTargetLookups-1)
	}
}

// udpOnlyServer serves h over UDP alone, on a loopback port whose TCP side
// is closed (as behind a firewall that drops DNS over TCP), until the test
// ends.
func udpOnlyServer(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
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
	return pc.LocalAddr().String()
}

// udpServerSilentTCP serves h over UDP, on a loopback port whose TCP side
// accepts connections and never answers (a middlebox that eats DNS over
// TCP), until the test ends.
func udpServerSilentTCP(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	var addr string
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		// Another program may hold the TCP side of the free UDP port: try
		// another (the one before serves on until the test ends).
		addr = udpOnlyServer(t, h)
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil && attempt == 8 {
			t.Fatalf("no port free over both UDP and TCP: %v", err)
		}
	}
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return addr
}

// When the truncated UDP reply cannot be completed over TCP, its records
// are better than nothing: a client needs one server, not all of them.
// TCP refused fails at once; TCP accepted and silent (a firewall that
// drops DNS over TCP) gets its own share of the Timeout, not the whole of
// it, so the records that came over UDP are still used.
func TestLookupTruncatedWithoutTCP(t *testing.T) {
	nodes := make([]directory.Node, 60) // 60 SRV records do not fit in 1232 bytes
	var want []string
	for i := range nodes {
		nodes[i] = up(fmt.Sprintf("n%02d", i), fmt.Sprintf("127.1.0.%d:7070", i+1), 0, 100)
		want = append(want, nodes[i].Addr)
	}
	responder, err := dnsserver.New(dnsserver.DefaultConfig("chat.test", func() []directory.Node { return nodes }))
	if err != nil {
		t.Fatal(err)
	}
	many := &manyTargetsDNS{n: 300}
	tests := []struct {
		name    string
		server  func(*testing.T, dns.HandlerFunc) string
		h       dns.HandlerFunc
		service string
		want    []string // the addresses every one returned must be among; nil: any
	}{
		{"TCP refused", udpOnlyServer, many.ServeDNS, "many.test", nil},
		{"TCP silent", udpServerSilentTCP, many.ServeDNS, "many.test", nil},
		{"TCP silent, the Switchboard responder over UDP", udpServerSilentTCP, responder.ServeDNS, "chat.test", want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.server(t, tt.h)
			// No DefaultPort: only the SRV records can give addresses,
			// and the SRV query has the whole Timeout.
			got, err := Lookup(t.Context(), Config{Resolver: addr, Timeout: 5 * time.Second}, tt.service)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if len(got) == 0 {
				t.Fatal("no address")
			}
			for _, a := range got {
				if tt.want != nil && !slices.Contains(tt.want, a) {
					t.Errorf("address %s is none of the nodes'", a)
				}
			}
			if tt.want == nil && len(got) > maxTargetLookups {
				t.Errorf("%d addresses, want 1 to %d", len(got), maxTargetLookups)
			}
		})
	}
}

// Records no client can use are left out: an SRV record with port 0, and
// addresses that name no server (0.0.0.0, which dials this very host, ::,
// multicast).
func TestLookupSkipsUnusableRecords(t *testing.T) {
	addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		add := func(section *[]dns.RR, s string) {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Error(err)
			}
			*section = append(*section, rr)
		}
		switch q := r.Question[0]; {
		case q.Qtype == dns.TypeSRV:
			add(&m.Answer, q.Name+" 5 IN SRV 0 1 0 a.odd.test.")
			add(&m.Answer, q.Name+" 5 IN SRV 0 1 7001 b.odd.test.")
			add(&m.Extra, "a.odd.test. 5 IN A 127.0.5.1")
			add(&m.Extra, "b.odd.test. 5 IN A 0.0.0.0")
			add(&m.Extra, "b.odd.test. 5 IN A 127.0.5.2")
			add(&m.Extra, "b.odd.test. 5 IN AAAA ::")
			add(&m.Extra, "b.odd.test. 5 IN AAAA ff02::1")
			add(&m.Extra, "b.odd.test. 5 IN A 224.0.0.1")
		}
		w.WriteMsg(m)
	})
	got, err := Lookup(t.Context(), Config{Resolver: addr}, "odd.test")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []string{"127.0.5.2:7001"}); diff != "" {
		t.Errorf("Lookup (-got +want):\n%s", diff)
	}
}

// A lone SRV record with target "." (RFC 2782: the service is decidedly
// not available here) is ErrNoAddress, port 0 and all.
func TestLookupSRVDot(t *testing.T) {
	addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; q.Qtype == dns.TypeSRV {
			rr, _ := dns.NewRR(q.Name + " 5 IN SRV 0 0 0 .")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	_, err := Lookup(t.Context(), Config{Resolver: addr, DefaultPort: 7070}, "dot.test")
	if !errors.Is(err, ErrNoAddress) || !strings.Contains(err.Error(), "not available") {
		t.Errorf("Lookup: %v, want ErrNoAddress saying the service is not available", err)
	}
}

// A server that refuses AAAA queries (SERVFAIL), as some middleboxes do,
// loses the lookup no address: the A records are kept. With both refused
// the lookup fails with the server's answer.
func TestLookupKeepsAWhenAAAAFails(t *testing.T) {
	refuse := func(qtypes ...uint16) func(dns.ResponseWriter, *dns.Msg) {
		return func(w dns.ResponseWriter, r *dns.Msg) {
			if slices.Contains(qtypes, r.Question[0].Qtype) {
				m := new(dns.Msg)
				m.SetRcode(r, dns.RcodeServerFailure)
				w.WriteMsg(m)
				return
			}
			plainDNS(w, r)
		}
	}
	got, err := Lookup(t.Context(), Config{Resolver: staticServer(t, refuse(dns.TypeAAAA)), DefaultPort: 7070}, "plain.test")
	if err != nil {
		t.Fatalf("Lookup with AAAA refused: %v", err)
	}
	if diff := cmp.Diff(sorted(got), []string{"127.0.2.1:7070", "127.0.2.2:7070"}); diff != "" {
		t.Errorf("Lookup with AAAA refused (-got +want):\n%s", diff)
	}
	_, err = Lookup(t.Context(), Config{Resolver: staticServer(t, refuse(dns.TypeA, dns.TypeAAAA)), DefaultPort: 7070}, "plain.test")
	if err == nil || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("Lookup with A and AAAA refused: %v, want their SERVFAIL", err)
	}
}

// A server that drops one kind of address query (a middlebox that
// swallows AAAA, or a name with only AAAA behind one that swallows A)
// costs that query a bounded wait, not the whole Timeout: the other
// kind's addresses come back, and every target of the SRV reply is
// still looked up.
func TestLookupSurvivesADroppedAddressQuery(t *testing.T) {
	dropping := func(dropped uint16) dns.HandlerFunc {
		return func(w dns.ResponseWriter, r *dns.Msg) {
			q := r.Question[0]
			if q.Qtype == dropped {
				return // no reply
			}
			m := new(dns.Msg)
			m.SetReply(r)
			name := strings.ToLower(q.Name)
			var rrs []string
			switch {
			case name == "_switchboard._tcp.drop.test." && q.Qtype == dns.TypeSRV:
				rrs = []string{name + " 5 IN SRV 0 1 7070 t1.drop.test.", name + " 5 IN SRV 1 1 7071 t2.drop.test."}
			case name == "t1.drop.test.":
				rrs = []string{name + " 5 IN A 127.0.5.1", name + " 5 IN AAAA 2001:db8::1"}
			case name == "t2.drop.test.":
				rrs = []string{name + " 5 IN A 127.0.5.2", name + " 5 IN AAAA 2001:db8::2"}
			default:
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
	}
	for _, tc := range []struct {
		name    string
		dropped uint16
		want    []string
	}{
		{"AAAA dropped", dns.TypeAAAA, []string{"127.0.5.1:7070", "127.0.5.2:7071"}},
		// The A query leaves AAAA the last second, and the targets are
		// looked up at once: each target's AAAA answers in it.
		{"A dropped", dns.TypeA, []string{"[2001:db8::1]:7070", "[2001:db8::2]:7071"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := staticServer(t, dropping(tc.dropped))
			got, err := Lookup(t.Context(), Config{Resolver: addr, Timeout: 4 * time.Second}, "drop.test")
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if diff := cmp.Diff(sorted(got), tc.want); diff != "" {
				t.Errorf("Lookup (-got +want):\n%s", diff)
			}
		})
	}
}

// A recursive resolver may answer the SRV query through a CNAME (the
// service's SRV name an alias of another zone's): the records at the end
// of the chain are the service's, and an SRV record of another name in
// the same answer is not.
func TestLookupSRVThroughCNAME(t *testing.T) {
	addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch strings.ToLower(q.Name) {
		case "_switchboard._tcp.alias.test.":
			if q.Qtype == dns.TypeSRV {
				for _, s := range []string{
					"_switchboard._tcp.alias.test. 5 IN CNAME _switchboard._tcp.hop.test.",
					"_switchboard._tcp.hop.test. 5 IN CNAME _switchboard._tcp.real.test.",
					"_switchboard._tcp.real.test. 5 IN SRV 0 1 7077 n1.real.test.",
					"_switchboard._tcp.elsewhere.test. 5 IN SRV 0 1 7078 n2.real.test.",
				} {
					rr, _ := dns.NewRR(s)
					m.Answer = append(m.Answer, rr)
				}
				rr, _ := dns.NewRR("n1.real.test. 5 IN A 127.0.6.1")
				m.Extra = append(m.Extra, rr)
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	got, err := Lookup(t.Context(), Config{Resolver: addr, DefaultPort: 9999}, "alias.test")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if diff := cmp.Diff(got, []string{"127.0.6.1:7077"}); diff != "" {
		t.Errorf("Lookup through CNAMEs (-got +want):\n%s", diff)
	}
}

// A server or middlebox that drops SRV queries, or answers them SERVFAIL,
// NOTIMP, FORMERR or REFUSED (home routers' proxies answer types they do
// not know so), while it answers A and AAAA, leaves the service
// reachable: the SRV query leaves part of the Timeout to the A/AAAA
// fallback, which it falls back to. Whether the SRV records are absent
// is unknown then: with no address either, the SRV failure is reported,
// not ErrNoAddress.
func TestLookupFallsBackWhenSRVFails(t *testing.T) {
	mishandle := func(rcode int, drop bool) dns.HandlerFunc {
		return func(w dns.ResponseWriter, r *dns.Msg) {
			if r.Question[0].Qtype != dns.TypeSRV {
				plainDNS(w, r)
				return
			}
			if drop {
				return // no reply
			}
			m := new(dns.Msg)
			m.SetRcode(r, rcode)
			w.WriteMsg(m)
		}
	}
	for _, tc := range []struct {
		name  string
		rcode int
		drop  bool
	}{
		{"SRV dropped", 0, true},
		{"SRV SERVFAIL", dns.RcodeServerFailure, false},
		{"SRV NOTIMP", dns.RcodeNotImplemented, false},
		{"SRV FORMERR", dns.RcodeFormatError, false},
		{"SRV REFUSED", dns.RcodeRefused, false},
	} {
		addr := staticServer(t, mishandle(tc.rcode, tc.drop))
		for via, cfg := range map[string]Config{
			"direct": {Resolver: addr, DefaultPort: 7070, Timeout: 2 * time.Second},
			"system": {NetResolver: system(addr), DefaultPort: 7070, Timeout: 2 * time.Second},
		} {
			t.Run(tc.name+" "+via, func(t *testing.T) {
				got, err := Lookup(t.Context(), cfg, "plain.test")
				if err != nil {
					t.Fatalf("Lookup: %v", err)
				}
				if diff := cmp.Diff(sorted(got), []string{"127.0.2.1:7070", "127.0.2.2:7070", "[2001:db8::2]:7070"}); diff != "" {
					t.Errorf("Lookup (-got +want):\n%s", diff)
				}
			})
		}
	}
	addr := staticServer(t, mishandle(dns.RcodeServerFailure, false))
	_, err := Lookup(t.Context(), Config{Resolver: addr, DefaultPort: 7070}, "missing.test")
	if errors.Is(err, ErrNoAddress) || err == nil || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("Lookup with SRV SERVFAIL and no A/AAAA: %v, want the SERVFAIL, not ErrNoAddress", err)
	}
}

// An answer about the name asked holds addresses only for its own name or
// the aliases its CNAMEs lead to: an A record of another owner (a forged or
// broken answer) is not the name's address.
func TestLookupIgnoresAddressesOfOtherNames(t *testing.T) {
	addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		var rrs []string
		switch name := strings.ToLower(q.Name); {
		case q.Qtype != dns.TypeA:
		case name == "chat.test.":
			rrs = []string{"evil.example. 5 IN A 192.0.2.66"}
		case name == "alias.test.":
			rrs = []string{"alias.test. 5 IN CNAME real.test.", "real.test. 5 IN A 127.0.7.1", "evil.example. 5 IN A 192.0.2.66"}
		}
		for _, s := range rrs {
			rr, _ := dns.NewRR(s)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	cfg := Config{Resolver: addr, DefaultPort: 7070}
	if got, err := Lookup(t.Context(), cfg, "chat.test"); !errors.Is(err, ErrNoAddress) {
		t.Errorf("Lookup with another name's A record = %v, %v; want ErrNoAddress", got, err)
	}
	got, err := Lookup(t.Context(), cfg, "alias.test")
	if err != nil {
		t.Fatalf("Lookup through a CNAME: %v", err)
	}
	if diff := cmp.Diff(got, []string{"127.0.7.1:7070"}); diff != "" {
		t.Errorf("Lookup through a CNAME (-got +want):\n%s", diff)
	}
}

// An SRV set may name one target many times, a port each, and the target
// may have many addresses: a hostile or broken server's answer of 200
// such records and 200 addresses expanded to 40,000 HOST:PORTs (and one
// of 64 KiB to 1.7 million, 160 MB). Lookup returns each at most once,
// at most maxAddrs.
func TestLookupBoundsTheSRVCrossProduct(t *testing.T) {
	addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case q.Qtype == dns.TypeSRV:
			for i := range 200 {
				// Each port twice: the same HOST:PORT from two records.
				rr, _ := dns.NewRR(fmt.Sprintf("%s 5 IN SRV 0 1 %d t.cross.test.", q.Name, 1000+i/2))
				m.Answer = append(m.Answer, rr)
			}
			for i := range 200 {
				rr, _ := dns.NewRR(fmt.Sprintf("t.cross.test. 5 IN A 127.0.%d.%d", 6+i/250, i%250+1))
				m.Extra = append(m.Extra, rr)
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		if isUDP(w) {
			m.Truncate(ednsSize)
		}
		w.WriteMsg(m)
	})
	got, err := Lookup(t.Context(), Config{Resolver: addr}, "cross.test")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if len(got) != maxAddrs {
		t.Errorf("%d addresses, want %d", len(got), maxAddrs)
	}
	seen := make(map[string]bool)
	for _, a := range got {
		if seen[a] {
			t.Fatalf("%s returned twice", a)
		}
		seen[a] = true
	}
}

// A name with three AAAA records and one A: whatever the shuffle, the
// families take turns, so a client whose IPv6 path drops packets waits
// out at most one address before it reaches the IPv4 one (before, up to
// three, 2 s each in the client).
func TestLookupInterleavesFamilies(t *testing.T) {
	addr := staticServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		var rrs []string
		switch q.Qtype {
		case dns.TypeA:
			rrs = []string{"mixed.test. 5 IN A 127.0.3.1"}
		case dns.TypeAAAA:
			rrs = []string{"mixed.test. 5 IN AAAA 2001:db8::1", "mixed.test. 5 IN AAAA 2001:db8::2", "mixed.test. 5 IN AAAA 2001:db8::3"}
		}
		for _, s := range rrs {
			rr, _ := dns.NewRR(s)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	firsts := map[bool]int{}
	for seed := range uint64(40) {
		got, err := Lookup(t.Context(), Config{Resolver: addr, DefaultPort: 7070, Rand: rand.New(rand.NewPCG(seed, 1))}, "mixed.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 {
			t.Fatalf("Lookup = %q, want 4 addresses", got)
		}
		v4 := slices.Index(got, "127.0.3.1:7070")
		if v4 > 1 {
			t.Errorf("seed %d: Lookup = %q: the IPv4 address comes after %d IPv6 ones", seed, got, v4)
		}
		firsts[v4 == 0]++
	}
	if firsts[true] == 0 || firsts[false] == 0 {
		t.Errorf("the first address was of one family in all 40 lookups (%v): the shuffle should pick either", firsts)
	}
}

// A service name with a port, a path or a space is refused at once: asked
// for in DNS it is a name that does not exist, and a client tried it
// again and again.
func TestLookupRefusesANameWithAPort(t *testing.T) {
	for _, name := range []string{"chat.local:7070", "chat.local/x", "chat local"} {
		if _, err := Lookup(t.Context(), Config{Resolver: "127.0.0.1:1", DefaultPort: 7070}, name); err == nil || !strings.Contains(err.Error(), "is not a service name") {
			t.Errorf("Lookup(%q): %v, want it refused as no service name", name, err)
		}
	}
}
