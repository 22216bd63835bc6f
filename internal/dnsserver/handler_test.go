package dnsserver

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/directory"
)

// summary is the part of a reply the table tests compare.
type summary struct {
	Rcode         string
	AA, TC        bool
	Answer        []string // "TYPE value"
	Ns, Extra     []string
	HasQuestion   bool
	ExtraHasOPT   bool
	AnswerOwners  []string
	AnswerTTLZero bool
}

func summarize(m *dns.Msg) summary {
	rcode := dns.RcodeToString[m.Rcode]
	if m.Rcode == dns.RcodeBadVers {
		rcode = "BADVERS" // shares its number with BADSIG
	}
	s := summary{Rcode: rcode, AA: m.Authoritative, TC: m.Truncated, HasQuestion: len(m.Question) == 1}
	for _, rr := range m.Answer {
		s.Answer = append(s.Answer, rrString(rr))
		s.AnswerOwners = append(s.AnswerOwners, rr.Header().Name)
		if rr.Header().Ttl == 0 {
			s.AnswerTTLZero = true
		}
	}
	for _, rr := range m.Ns {
		s.Ns = append(s.Ns, dns.TypeToString[rr.Header().Rrtype])
	}
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			s.ExtraHasOPT = true
			continue
		}
		s.Extra = append(s.Extra, rrString(rr))
	}
	return s
}

// rrString is "TYPE rdata" without owner, class and TTL.
func rrString(rr dns.RR) string {
	h := rr.Header().String()
	return dns.TypeToString[rr.Header().Rrtype] + " " + strings.TrimPrefix(rr.String(), h)
}

func testDir() *dir {
	return newDir(
		upNode("a", "127.0.0.1:7001", 10, 100),
		upNode("B_2", "127.0.0.2:7002", 50, 100),
		upNode("v6", "[2001:db8::6]:7006", 0, 100),
		directory.Node{ID: "down", Addr: "127.0.0.9:7009", Status: directory.Down, Capacity: 100},
	)
}

func TestAnswer(t *testing.T) {
	s := newServer(t, testDir())
	soaOnly := []string{"SOA"}
	tests := []struct {
		name string
		in   *dns.Msg
		tcp  bool
		want summary
	}{
		{
			name: "apex A lists the available IPv4 nodes",
			in:   query("chat.test.", dns.TypeA, 0),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true,
				Answer:       []string{"A 127.0.0.1", "A 127.0.0.2"},
				AnswerOwners: []string{"chat.test.", "chat.test."}},
		},
		{
			name: "names are case-insensitive, and answered as asked",
			in:   query("cHaT.TeSt.", dns.TypeAAAA, 0),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true,
				Answer: []string{"AAAA 2001:db8::6"}, AnswerOwners: []string{"cHaT.TeSt."}},
		},
		{
			name: "per-node name answers for a down node too",
			in:   query("down.node.chat.test.", dns.TypeA, 0),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true,
				Answer: []string{"A 127.0.0.9"}, AnswerOwners: []string{"down.node.chat.test."}},
		},
		{
			name: "a node label cleaned from its ID, with the ID's hash",
			in:   query("b-2-9ba41414.node.chat.test.", dns.TypeA, 0),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true,
				Answer: []string{"A 127.0.0.2"}, AnswerOwners: []string{"b-2-9ba41414.node.chat.test."}},
		},
		{
			name: "NODATA for a type with no records",
			in:   query("chat.test.", dns.TypeMX, 0),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true, Ns: soaOnly},
		},
		{
			name: "NODATA for an empty non-terminal",
			in:   query("node.chat.test.", dns.TypeA, 0),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true, Ns: soaOnly},
		},
		{
			name: "NODATA for _tcp",
			in:   query("_tcp.chat.test.", dns.TypeSRV, 0),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true, Ns: soaOnly},
		},
		{
			name: "NXDOMAIN inside the zone",
			in:   query("nope.chat.test.", dns.TypeA, 0),
			want: summary{Rcode: "NXDOMAIN", AA: true, HasQuestion: true, Ns: soaOnly},
		},
		{
			name: "NXDOMAIN below a node name",
			in:   query("x.a.node.chat.test.", dns.TypeA, 0),
			want: summary{Rcode: "NXDOMAIN", AA: true, HasQuestion: true, Ns: soaOnly},
		},
		{
			name: "REFUSED outside the zone",
			in:   query("example.com.", dns.TypeA, 0),
			want: summary{Rcode: "REFUSED", HasQuestion: true},
		},
		{
			name: "REFUSED for a parent of the zone",
			in:   query("test.", dns.TypeA, 0),
			want: summary{Rcode: "REFUSED", HasQuestion: true},
		},
		{
			name: "REFUSED for a name that only ends like the zone",
			in:   query("xchat.test.", dns.TypeA, 0),
			want: summary{Rcode: "REFUSED", HasQuestion: true},
		},
		{
			name: "REFUSED for zone transfers",
			in:   query("chat.test.", dns.TypeAXFR, 0),
			tcp:  true,
			want: summary{Rcode: "REFUSED", HasQuestion: true},
		},
		{
			name: "SOA at the apex",
			in:   query("chat.test.", dns.TypeSOA, 0),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true,
				Answer:       []string{"SOA ns.chat.test. hostmaster.chat.test. SERIAL 3600 600 86400 5"},
				AnswerOwners: []string{"chat.test."}},
		},
		{
			name: "NS at the apex with the name server's glue",
			in:   query("chat.test.", dns.TypeNS, 0),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true,
				Answer: []string{"NS ns.chat.test."}, AnswerOwners: []string{"chat.test."},
				Extra: []string{"A 127.0.0.1", "A 127.0.0.2", "AAAA 2001:db8::6"}},
		},
		{
			name: "SRV with glue",
			in:   query("_switchboard._tcp.chat.test.", dns.TypeSRV, 0),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true,
				Answer: []string{
					"SRV 0 58982 7001 a.node.chat.test.",
					"SRV 0 32768 7002 b-2-9ba41414.node.chat.test.",
					"SRV 0 65535 7006 v6.node.chat.test.",
				},
				AnswerOwners: []string{"_switchboard._tcp.chat.test.", "_switchboard._tcp.chat.test.", "_switchboard._tcp.chat.test."},
				Extra:        []string{"A 127.0.0.1", "A 127.0.0.2", "AAAA 2001:db8::6"}},
		},
		{
			name: "SRV with glue and EDNS0 keeps its OPT",
			in:   query("_switchboard._tcp.chat.test.", dns.TypeSRV, 1232),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true, ExtraHasOPT: true,
				Answer: []string{
					"SRV 0 58982 7001 a.node.chat.test.",
					"SRV 0 32768 7002 b-2-9ba41414.node.chat.test.",
					"SRV 0 65535 7006 v6.node.chat.test.",
				},
				AnswerOwners: []string{"_switchboard._tcp.chat.test.", "_switchboard._tcp.chat.test.", "_switchboard._tcp.chat.test."},
				Extra:        []string{"A 127.0.0.1", "A 127.0.0.2", "AAAA 2001:db8::6"}},
		},
		{
			name: "NS with glue and EDNS0 keeps its OPT",
			in:   query("chat.test.", dns.TypeNS, 1232),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true, ExtraHasOPT: true,
				Answer: []string{"NS ns.chat.test."}, AnswerOwners: []string{"chat.test."},
				Extra: []string{"A 127.0.0.1", "A 127.0.0.2", "AAAA 2001:db8::6"}},
		},
		{
			name: "EDNS0 is answered with an OPT",
			in:   query("chat.test.", dns.TypeA, 1232),
			want: summary{Rcode: "NOERROR", AA: true, HasQuestion: true, ExtraHasOPT: true,
				Answer:       []string{"A 127.0.0.1", "A 127.0.0.2"},
				AnswerOwners: []string{"chat.test.", "chat.test."}},
		},
		{
			name: "EDNS version 1 gets BADVERS",
			in: func() *dns.Msg {
				m := query("chat.test.", dns.TypeA, 1232)
				m.IsEdns0().SetVersion(1)
				return m
			}(),
			want: summary{Rcode: "BADVERS", HasQuestion: true, ExtraHasOPT: true},
		},
		{
			name: "two OPT records are a format error",
			in: func() *dns.Msg {
				m := query("chat.test.", dns.TypeA, 1232)
				m.SetEdns0(1232, false)
				return m
			}(),
			want: summary{Rcode: "FORMERR", HasQuestion: true},
		},
		{
			name: "class CH is refused",
			in: func() *dns.Msg {
				m := query("chat.test.", dns.TypeTXT, 0)
				m.Question[0].Qclass = dns.ClassCHAOS
				return m
			}(),
			want: summary{Rcode: "REFUSED", HasQuestion: true},
		},
		{
			name: "class ANY is refused",
			in: func() *dns.Msg {
				m := query("chat.test.", dns.TypeA, 0)
				m.Question[0].Qclass = dns.ClassANY
				return m
			}(),
			want: summary{Rcode: "REFUSED", HasQuestion: true},
		},
		{
			name: "class NONE is refused",
			in: func() *dns.Msg {
				m := query("chat.test.", dns.TypeA, 0)
				m.Question[0].Qclass = dns.ClassNONE
				return m
			}(),
			want: summary{Rcode: "REFUSED", HasQuestion: true},
		},
		{
			name: "two questions are a format error",
			in: func() *dns.Msg {
				m := query("chat.test.", dns.TypeA, 0)
				m.Question = append(m.Question, m.Question[0])
				return m
			}(),
			want: summary{Rcode: "FORMERR"},
		},
		{
			name: "no question is a format error",
			in: func() *dns.Msg {
				m := query("chat.test.", dns.TypeA, 0)
				m.Question = nil
				return m
			}(),
			want: summary{Rcode: "FORMERR"},
		},
		{
			name: "NOTIFY is not implemented",
			in: func() *dns.Msg {
				m := query("chat.test.", dns.TypeSOA, 0)
				m.Opcode = dns.OpcodeNotify
				return m
			}(),
			want: summary{Rcode: "NOTIMP", HasQuestion: true},
		},
		{
			name: "NOTIFY with EDNS0 gets its OPT back",
			in: func() *dns.Msg {
				m := query("chat.test.", dns.TypeSOA, 1232)
				m.Opcode = dns.OpcodeNotify
				return m
			}(),
			want: summary{Rcode: "NOTIMP", HasQuestion: true, ExtraHasOPT: true},
		},
		{
			name: "two questions with EDNS0 get their OPT back",
			in: func() *dns.Msg {
				m := query("chat.test.", dns.TypeA, 1232)
				m.Question = append(m.Question, m.Question[0])
				return m
			}(),
			want: summary{Rcode: "FORMERR", ExtraHasOPT: true},
		},
		{
			name: "UPDATE is not implemented",
			in: func() *dns.Msg {
				m := new(dns.Msg)
				m.SetUpdate("chat.test.")
				return m
			}(),
			want: summary{Rcode: "NOTIMP", HasQuestion: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resetRotation(s)
			got := s.Answer(tt.in, tt.tcp)
			if got == nil {
				t.Fatal("no reply")
			}
			if got.Id != tt.in.Id || !got.Response {
				t.Errorf("id %d response %v, want id %d response true", got.Id, got.Response, tt.in.Id)
			}
			sum := summarize(got)
			for i, a := range sum.Answer {
				if strings.HasPrefix(a, "SOA ") {
					f := strings.Fields(a)
					f[3] = "SERIAL"
					sum.Answer[i] = strings.Join(f, " ")
				}
			}
			if diff := cmp.Diff(sum, tt.want); diff != "" {
				t.Errorf("reply (-got +want):\n%s\n%v", diff, got)
			}
			if _, err := got.Pack(); err != nil {
				t.Errorf("reply does not pack: %v", err)
			}
		})
	}
}

func TestAnswerIgnoresResponses(t *testing.T) {
	s := newServer(t, testDir())
	m := query("chat.test.", dns.TypeA, 0)
	m.Response = true
	w := &fakeWriter{}
	s.ServeDNS(w, m)
	if w.n != 0 {
		t.Errorf("answered a response: %v", w.msg)
	}
}

func TestAnswerRotates(t *testing.T) {
	d := newDir(manyNodes(4)...)
	s := newServer(t, d)
	base := []string{"127.1.0.1", "127.1.0.2", "127.1.0.3", "127.1.0.4"}
	firsts := map[string]bool{}
	for range 4 {
		got := ips(s.Answer(query("chat.test.", dns.TypeA, 0), false).Answer)
		if !isRotation(got, base) {
			t.Fatalf("answer %v is not a rotation of %v", got, base)
		}
		firsts[got[0]] = true
	}
	if len(firsts) != 4 {
		t.Errorf("4 answers started at %d distinct records, want 4", len(firsts))
	}
}

func TestAnswerDedupsIPs(t *testing.T) {
	s := newServer(t, newDir(
		upNode("a", "127.0.0.1:7001", 0, 10),
		upNode("b", "127.0.0.1:7002", 0, 10),
		upNode("c", "[::ffff:127.0.0.1]:7003", 0, 10),
	))
	if got := ips(s.Answer(query("chat.test.", dns.TypeA, 0), false).Answer); !cmp.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("A answer %v, want one 127.0.0.1", got)
	}
	srv := s.Answer(query("_switchboard._tcp.chat.test.", dns.TypeSRV, 0), false)
	if len(srv.Answer) != 3 {
		t.Errorf("SRV answer has %d records, want 3 (one per node): %v", len(srv.Answer), srv)
	}
}

func TestAnswerHostNameTarget(t *testing.T) {
	s := newServer(t, newDir(upNode("a", "Node-A.Example.NET:7001", 0, 10)))
	srv := s.Answer(query("_switchboard._tcp.chat.test.", dns.TypeSRV, 0), false)
	want := summary{Rcode: "NOERROR", AA: true, HasQuestion: true,
		Answer:       []string{"SRV 0 65535 7001 node-a.example.net."},
		AnswerOwners: []string{"_switchboard._tcp.chat.test."}}
	if diff := cmp.Diff(summarize(srv), want); diff != "" {
		t.Errorf("SRV (-got +want):\n%s", diff)
	}
	a := s.Answer(query("chat.test.", dns.TypeA, 0), false)
	if len(a.Answer) != 0 || a.Rcode != dns.RcodeSuccess {
		t.Errorf("A for a node named by host name: %v, want NODATA", a)
	}
}

func TestAnswerUnavailableNodesLeave(t *testing.T) {
	d := newDir(
		upNode("a", "127.0.0.1:7001", 0, 10),
		upNode("b", "127.0.0.2:7001", 0, 10),
		upNode("c", "127.0.0.3:7001", 0, 10),
		upNode("d", "127.0.0.4:7001", 0, 10),
	)
	s := newServer(t, d)
	apex := func() []string {
		got := ips(s.Answer(query("chat.test.", dns.TypeA, 0), false).Answer)
		return sortedCopy(got)
	}
	if got, want := apex(), []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}; !cmp.Equal(got, want) {
		t.Fatalf("A %v, want %v", got, want)
	}
	d.update("a", func(n *directory.Node) { n.Status = directory.Down })
	d.update("b", func(n *directory.Node) { n.Status = directory.Draining })
	d.update("c", func(n *directory.Node) { n.Users = n.Capacity })
	if got, want := apex(), []string{"127.0.0.4"}; !cmp.Equal(got, want) {
		t.Errorf("A after down, draining, full: %v, want %v", got, want)
	}
	d.update("d", func(n *directory.Node) { n.Status = directory.Full })
	if got := s.Answer(query("chat.test.", dns.TypeA, 0), false); len(got.Answer) != 0 || len(got.Ns) != 1 {
		t.Errorf("A with no node available: %v, want NODATA with SOA", got)
	}
}

func TestAnswerCachesPerSnapshot(t *testing.T) {
	d := newDir(manyNodes(3)...)
	s := newServer(t, d)
	s.Answer(query("chat.test.", dns.TypeA, 0), false)
	z1 := s.zone.Load()
	s.Answer(query("chat.test.", dns.TypeA, 0), false)
	if z2 := s.zone.Load(); z2 != z1 {
		t.Error("zone rebuilt for the same snapshot")
	}
	// A new slice with the same content keeps the records (and serial).
	d.set(manyNodes(3)...)
	s.Answer(query("chat.test.", dns.TypeA, 0), false)
	z3 := s.zone.Load()
	if z3.soa != z1.soa {
		t.Error("zone rebuilt for a snapshot with the same content")
	}
	// A change of users rebuilds with a new serial.
	d.update("n000", func(n *directory.Node) { n.Users++ })
	s.Answer(query("chat.test.", dns.TypeA, 0), false)
	z4 := s.zone.Load()
	if z4.soa.(*dns.SOA).Serial == z1.soa.(*dns.SOA).Serial {
		t.Error("serial did not change with the directory")
	}
}

// Queries that arrive together after a directory change build the zone
// once between them, not once each: at 1,000 nodes a build takes
// milliseconds, and a busy responder had dozens in flight.
func TestAnswerBuildsOnceForQueriesTogether(t *testing.T) {
	d := newDir(manyNodes(1000)...)
	s := newServer(t, d)
	for change := range 5 {
		d.update("n000", func(n *directory.Node) { n.Users++ })
		before := s.serial.Load()
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				<-start
				s.Answer(query("chat.test.", dns.TypeA, 0), false)
			})
		}
		close(start)
		wg.Wait()
		if builds := s.serial.Load() - before; builds != 1 {
			t.Errorf("change %d: 32 queries built the zone %d times, want once", change, builds)
		}
	}
}

// Queries race with directory changes; run with -race.
func TestAnswerConcurrent(t *testing.T) {
	d := newDir(manyNodes(20)...)
	s := newServer(t, d)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, q := range []*dns.Msg{
					query(testZone, dns.TypeA, 0),
					query("_switchboard._tcp."+testZone, dns.TypeSRV, 1232),
					query("n003.node."+testZone, dns.TypeA, 0),
				} {
					m := s.Answer(q, false)
					if m.Rcode != dns.RcodeSuccess {
						t.Errorf("rcode %s", dns.RcodeToString[m.Rcode])
						return
					}
					if _, err := m.Pack(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	for i := range 200 {
		d.update(fmt.Sprintf("n%03d", i%20), func(n *directory.Node) { n.Users = (n.Users + 1) % n.Capacity })
	}
	close(done)
	wg.Wait()
}

func TestServeDNSRecoversPanics(t *testing.T) {
	cfg := DefaultConfig(testZone, func() []directory.Node { panic("broken directory") })
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeWriter{}
	s.ServeDNS(w, query(testZone, dns.TypeA, 0))
	if w.n != 1 || w.msg.Rcode != dns.RcodeServerFailure {
		t.Errorf("reply %v, want SERVFAIL", w.msg)
	}
}

// TC is set only when the answer (or authority) section did not fit, not
// when only glue was left out (RFC 2181 section 9): a client that gets
// every SRV record asks for the missing targets' addresses itself rather
// than ask the whole reply again over TCP.
func TestAnswerTCOnlyWhenTheAnswerIsCut(t *testing.T) {
	tests := []struct {
		name        string
		nodes       int
		qname       string
		qtype       uint16
		edns        uint16
		tcp         bool
		wantTC      bool
		wantAnswers int // -1: fewer than nodes
		wantGlueCut bool
	}{
		{"SRV of 10 without EDNS0: every SRV fits, not every glue", 10, "_switchboard._tcp." + testZone, dns.TypeSRV, 0, false, false, 10, true},
		{"SRV of 25 with EDNS0 1232: every SRV fits, not every glue", 25, "_switchboard._tcp." + testZone, dns.TypeSRV, 1232, false, false, 25, true},
		{"SRV of 14 without EDNS0: the answer is cut", 14, "_switchboard._tcp." + testZone, dns.TypeSRV, 0, false, true, -1, true},
		{"SRV of 40 with EDNS0 1232: the answer is cut", 40, "_switchboard._tcp." + testZone, dns.TypeSRV, 1232, false, true, -1, true},
		{"SRV of 3: everything fits", 3, "_switchboard._tcp." + testZone, dns.TypeSRV, 0, false, false, 3, false},
		{"SRV of 200 over TCP: everything fits", 200, "_switchboard._tcp." + testZone, dns.TypeSRV, 0, true, false, 200, false},
		{"A of 200 without EDNS0: the answer is cut", 200, testZone, dns.TypeA, 0, false, true, -1, false},
		{"NS with 200 name server addresses: the glue is cut", 200, testZone, dns.TypeNS, 0, false, false, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, newDir(manyNodes(tt.nodes)...))
			r := s.Answer(query(tt.qname, tt.qtype, tt.edns), tt.tcp)
			glue := 0
			for _, rr := range r.Extra {
				if rr.Header().Rrtype != dns.TypeOPT {
					glue++
				}
			}
			wantGlue := tt.nodes
			if tt.qtype == dns.TypeA {
				wantGlue = 0
			}
			answers := len(r.Answer)
			if tt.wantAnswers < 0 && answers < tt.nodes {
				answers = -1
			}
			got := []any{r.Truncated, answers, glue < wantGlue}
			want := []any{tt.wantTC, tt.wantAnswers, tt.wantGlueCut}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("TC, answers, glue cut (-got +want):\n%s\n%d answers, %d glue records, %d bytes", diff, len(r.Answer), glue, r.Len())
			}
			if !tt.tcp && r.Len() > max(int(tt.edns), dns.MinMsgSize) {
				t.Errorf("reply of %d bytes, over the size offered", r.Len())
			}
		})
	}
}

// Each record set rotates on its own: a client that asks the same types in
// the same order every time (A then AAAA, as a stub resolver does, or SRV
// and the name server) sees every record of each set first in turn, not
// the same one for ever because a counter shared by every set moves in
// step with its queries.
func TestAnswerRotatesEachSetAlone(t *testing.T) {
	nodes := []directory.Node{
		upNode("a", "192.0.2.1:7070", 0, 10), upNode("b", "192.0.2.2:7070", 0, 10),
		upNode("c", "[2001:db8::1]:7070", 0, 10), upNode("d", "[2001:db8::2]:7070", 0, 10),
	}
	type q struct {
		name  string
		qtype uint16
	}
	apexA, apexAAAA := q{testZone, dns.TypeA}, q{testZone, dns.TypeAAAA}
	srv, nsA := q{"_switchboard._tcp." + testZone, dns.TypeSRV}, q{"ns." + testZone, dns.TypeA}
	tests := []struct {
		name  string
		round []q // asked in this order, again and again
	}{
		{"A then AAAA", []q{apexA, apexAAAA}},
		{"SRV, A, AAAA and the name server", []q{srv, apexA, apexAAAA, nsA}},
		{"A twice, then AAAA twice", []q{apexA, apexA, apexAAAA, apexAAAA}},
	}
	const rounds = 12
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, newDir(nodes...))
			firsts := map[q]map[string]int{}
			asked := map[q]int{}
			for range rounds {
				for _, qq := range tt.round {
					r := s.Answer(query(qq.name, qq.qtype, 0), false)
					if len(r.Answer) == 0 {
						t.Fatalf("%s %s: no answer", qq.name, dns.TypeToString[qq.qtype])
					}
					first := r.Answer[0].String()
					if firsts[qq] == nil {
						firsts[qq] = map[string]int{}
					}
					firsts[qq][first]++
					asked[qq]++
					if qq.qtype == dns.TypeSRV {
						// The glue follows its SRV record.
						if got, want := r.Extra[0].Header().Name, r.Answer[0].(*dns.SRV).Target; got != want {
							t.Errorf("first glue record of %s, want %s's", got, want)
						}
					}
				}
			}
			for qq, counts := range firsts {
				n := len(s.Answer(query(qq.name, qq.qtype, 0), false).Answer)
				want := map[string]int{}
				for rr := range counts {
					want[rr] = asked[qq] / n
				}
				if len(counts) != n || !cmp.Equal(counts, want) {
					t.Errorf("%s %s: first record over %d answers %v, want each of its %d records first %d times", qq.name, dns.TypeToString[qq.qtype], asked[qq], counts, n, asked[qq]/n)
				}
			}
		})
	}
}

// The name server's addresses (ns.<zone> and the NS glue) are those of
// every node whose responder answers, full or draining included: only
// nodes down or starting are left out. Room does not matter to DNS.
func TestAnswerNSAddrs(t *testing.T) {
	node := func(id, ip string, st directory.Status, users int) directory.Node {
		return directory.Node{ID: id, Addr: ip + ":7070", Status: st, Users: users, Capacity: 10}
	}
	tests := []struct {
		name  string
		nodes []directory.Node
		want  []string // sorted; none: NODATA
	}{
		{"every status", []directory.Node{
			node("up", "192.0.2.1", directory.Up, 0),
			node("full-by-users", "192.0.2.2", directory.Up, 10),
			node("full", "192.0.2.3", directory.Full, 10),
			node("draining", "192.0.2.4", directory.Draining, 0),
			node("degraded", "192.0.2.5", directory.Degraded, 0),
			node("starting", "192.0.2.6", directory.Starting, 0),
			node("down", "192.0.2.7", directory.Down, 0),
		}, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}},
		{"all full or draining", []directory.Node{
			node("a", "192.0.2.1", directory.Up, 10),
			node("b", "192.0.2.2", directory.Draining, 0),
		}, []string{"192.0.2.1", "192.0.2.2"}},
		{"all down or starting", []directory.Node{
			node("a", "192.0.2.1", directory.Down, 0),
			node("b", "192.0.2.2", directory.Starting, 0),
		}, nil},
		{"two nodes on one IP, one of them down", []directory.Node{
			node("a", "192.0.2.1", directory.Down, 0),
			node("b", "192.0.2.1", directory.Full, 10),
		}, []string{"192.0.2.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, newDir(tt.nodes...))
			r := s.Answer(query("ns."+testZone, dns.TypeA, 0), false)
			if r.Rcode != dns.RcodeSuccess {
				t.Fatalf("ns A: %s, want NOERROR", dns.RcodeToString[r.Rcode])
			}
			if diff := cmp.Diff(sortedCopy(ips(r.Answer)), tt.want); diff != "" {
				t.Errorf("ns A (-got +want):\n%s", diff)
			}
			if len(tt.want) == 0 && len(r.Ns) != 1 {
				t.Errorf("ns A without addresses: authority %v, want the SOA (NODATA)", r.Ns)
			}
			r = s.Answer(query(testZone, dns.TypeNS, 0), false)
			if diff := cmp.Diff(sortedCopy(ips(r.Extra)), tt.want); diff != "" {
				t.Errorf("NS glue (-got +want):\n%s", diff)
			}
		})
	}
}

// An operator's NSAddrs holding an IPv4-mapped address (::ffff:a.b.c.d)
// is served as the IPv4 address it is: an A record for the name server,
// no AAAA. It was served as AAAA, and an IPv4 resolver found no address.
func TestNSAddrsMappedIsServedAsA(t *testing.T) {
	s := newServer(t, newDir(), func(cfg *Config) {
		cfg.NSAddrs = []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.9")}
	})
	r := s.Answer(query("ns."+testZone, dns.TypeA, 0), false)
	if diff := cmp.Diff(ips(r.Answer), []string{"192.0.2.9"}); diff != "" {
		t.Errorf("ns A (-got +want):\n%s", diff)
	}
	if r = s.Answer(query("ns."+testZone, dns.TypeAAAA, 0), false); len(r.Answer) != 0 {
		t.Errorf("ns AAAA: %v, want none", r.Answer)
	}
}
