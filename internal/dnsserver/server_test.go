package dnsserver

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/directory"
)

func TestServerRotatesA(t *testing.T) {
	d := newDir(manyNodes(3)...)
	s := startServer(t, d)
	base := []string{"127.1.0.1", "127.1.0.2", "127.1.0.3"}
	firsts := map[string]bool{}
	for _, network := range []string{"udp", "tcp", "udp"} {
		r := exchange(t, network, s.Addr(), query("chat.test.", dns.TypeA, 0))
		got := ips(r.Answer)
		if !isRotation(got, base) {
			t.Fatalf("answer over %s %v is not a rotation of %v", network, got, base)
		}
		firsts[got[0]] = true
	}
	if len(firsts) != 3 {
		t.Errorf("3 answers started at %d distinct records, want 3", len(firsts))
	}
}

func TestServerNodesLeaveAtOnce(t *testing.T) {
	d := newDir(
		upNode("a", "127.0.0.1:7001", 0, 10),
		upNode("b", "127.0.0.2:7001", 0, 10),
		upNode("c", "127.0.0.3:7001", 0, 10),
		upNode("d", "127.0.0.4:7001", 0, 10),
	)
	s := startServer(t, d)
	lookup := func() ([]string, []string) {
		a := exchange(t, "udp", s.Addr(), query("chat.test.", dns.TypeA, 0))
		srv := exchange(t, "udp", s.Addr(), query("_switchboard._tcp.chat.test.", dns.TypeSRV, 0))
		var targets []string
		for _, rr := range srv.Answer {
			targets = append(targets, rr.(*dns.SRV).Target)
		}
		return sortedCopy(ips(a.Answer)), sortedCopy(targets)
	}
	steps := []struct {
		name         string
		change       func()
		wantA, wantT []string
	}{
		{"all up", func() {},
			[]string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"},
			[]string{"a.node.chat.test.", "b.node.chat.test.", "c.node.chat.test.", "d.node.chat.test."}},
		{"a down", func() { d.update("a", func(n *directory.Node) { n.Status = directory.Down }) },
			[]string{"127.0.0.2", "127.0.0.3", "127.0.0.4"},
			[]string{"b.node.chat.test.", "c.node.chat.test.", "d.node.chat.test."}},
		{"b draining", func() { d.update("b", func(n *directory.Node) { n.Status = directory.Draining }) },
			[]string{"127.0.0.3", "127.0.0.4"},
			[]string{"c.node.chat.test.", "d.node.chat.test."}},
		{"c full by users", func() { d.update("c", func(n *directory.Node) { n.Users = 10 }) },
			[]string{"127.0.0.4"},
			[]string{"d.node.chat.test."}},
		{"a back up", func() { d.update("a", func(n *directory.Node) { n.Status = directory.Up }) },
			[]string{"127.0.0.1", "127.0.0.4"},
			[]string{"a.node.chat.test.", "d.node.chat.test."}},
	}
	for _, st := range steps {
		st.change()
		gotA, gotT := lookup()
		if diff := cmp.Diff(gotA, st.wantA); diff != "" {
			t.Errorf("%s: A (-got +want):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(gotT, st.wantT); diff != "" {
			t.Errorf("%s: SRV targets (-got +want):\n%s", st.name, diff)
		}
	}
}

func TestServerSRV(t *testing.T) {
	d := newDir(
		upNode("big", "127.0.0.1:7001", 0, 100),   // spare 100
		upNode("half", "127.0.0.2:7002", 50, 100), // spare 50
		upNode("small", "[::1]:7003", 10, 20),     // spare 10
		directory.Node{ID: "gone", Addr: "127.0.0.4:7004", Status: directory.Down, Capacity: 100},
	)
	s := startServer(t, d)
	r := exchange(t, "udp", s.Addr(), query("_SwitchBoard._TCP.Chat.Test.", dns.TypeSRV, 1232))
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		t.Fatalf("rcode %s aa %v, want NOERROR aa", dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	type srv struct {
		Target         string
		Port, Weight   uint16
		Priority       uint16
		TTL            uint32
		GlueIP, GlueTy string
	}
	glue := map[string]dns.RR{}
	for _, rr := range r.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			glue[rr.Header().Name] = rr
		}
	}
	got := map[string]srv{}
	for _, rr := range r.Answer {
		rec := rr.(*dns.SRV)
		g := srv{Target: rec.Target, Port: rec.Port, Weight: rec.Weight, Priority: rec.Priority, TTL: rec.Hdr.Ttl}
		if a, ok := glue[rec.Target]; ok {
			g.GlueIP, g.GlueTy = ips([]dns.RR{a})[0], dns.TypeToString[a.Header().Rrtype]
		}
		got[rec.Target] = g
	}
	want := map[string]srv{
		"big.node.chat.test.":   {"big.node.chat.test.", 7001, 65535, 0, 5, "127.0.0.1", "A"},
		"half.node.chat.test.":  {"half.node.chat.test.", 7002, 32768, 0, 5, "127.0.0.2", "A"},
		"small.node.chat.test.": {"small.node.chat.test.", 7003, 6554, 0, 5, "::1", "AAAA"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("SRV records (-got +want):\n%s", diff)
	}
	// The targets answer for themselves.
	for target, w := range want {
		qtype := dns.StringToType[w.GlueTy]
		r := exchange(t, "udp", s.Addr(), query(target, qtype, 0))
		if got := ips(r.Answer); !cmp.Equal(got, []string{w.GlueIP}) {
			t.Errorf("%s %s = %v, want %s", target, w.GlueTy, got, w.GlueIP)
		}
	}
	// Weights follow spare capacity as users come and go.
	d.update("big", func(n *directory.Node) { n.Users = 90 }) // spare 10, half is now the largest
	r = exchange(t, "tcp", s.Addr(), query("_switchboard._tcp.chat.test.", dns.TypeSRV, 0))
	weights := map[string]uint16{}
	for _, rr := range r.Answer {
		weights[rr.(*dns.SRV).Target] = rr.(*dns.SRV).Weight
	}
	wantW := map[string]uint16{"big.node.chat.test.": 13107, "half.node.chat.test.": 65535, "small.node.chat.test.": 13107}
	if diff := cmp.Diff(weights, wantW); diff != "" {
		t.Errorf("weights after users changed (-got +want):\n%s", diff)
	}
}

func TestServerRcodes(t *testing.T) {
	d := newDir(upNode("a", "127.0.0.1:7001", 0, 10))
	s := startServer(t, d)
	tests := []struct {
		name      string
		q         *dns.Msg
		wantRcode int
		wantAA    bool
		wantNs    int // SOA in authority
		wantAns   int
	}{
		{"outside the zone is refused", query("example.org.", dns.TypeA, 0), dns.RcodeRefused, false, 0, 0},
		{"unknown name inside is NXDOMAIN", query("www.chat.test.", dns.TypeA, 0), dns.RcodeNameError, true, 1, 0},
		{"AAAA with IPv4 nodes only is NODATA", query("chat.test.", dns.TypeAAAA, 0), dns.RcodeSuccess, true, 1, 0},
		{"MX is NODATA", query("chat.test.", dns.TypeMX, 0), dns.RcodeSuccess, true, 1, 0},
		{"SOA", query("chat.test.", dns.TypeSOA, 0), dns.RcodeSuccess, true, 0, 1},
		{"name server address", query("ns.chat.test.", dns.TypeA, 0), dns.RcodeSuccess, true, 0, 1},
		{"NOTIFY is not implemented", func() *dns.Msg {
			m := query("chat.test.", dns.TypeSOA, 0)
			m.Opcode = dns.OpcodeNotify
			return m
		}(), dns.RcodeNotImplemented, false, 0, 0},
		{"STATUS is not implemented", func() *dns.Msg {
			m := query("chat.test.", dns.TypeA, 0)
			m.Opcode = dns.OpcodeStatus
			return m
		}(), dns.RcodeNotImplemented, false, 0, 0},
		{"two questions are FORMERR", func() *dns.Msg {
			m := query("chat.test.", dns.TypeA, 0)
			m.Question = append(m.Question, dns.Question{Name: "chat.test.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET})
			return m
		}(), dns.RcodeFormatError, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := exchange(t, "udp", s.Addr(), tt.q)
			got := []any{dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Ns), len(r.Answer)}
			want := []any{dns.RcodeToString[tt.wantRcode], tt.wantAA, tt.wantNs, tt.wantAns}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("rcode, aa, authority, answers (-got +want):\n%s\n%v", diff, r)
			}
			if tt.wantNs == 1 {
				if soa, ok := r.Ns[0].(*dns.SOA); !ok || soa.Hdr.Name != "chat.test." {
					t.Errorf("authority %v, want the zone's SOA", r.Ns)
				}
			}
		})
	}
	// The name server's address is the address the server is bound to.
	r := exchange(t, "udp", s.Addr(), query("ns.chat.test.", dns.TypeA, 0))
	if got := ips(r.Answer); !cmp.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("ns.chat.test. A = %v, want the bound IP", got)
	}
}

// A directory too big for one UDP reply: UDP truncates, TCP serves it whole.
func TestServerTruncatesOverUDP(t *testing.T) {
	d := newDir(manyNodes(200)...)
	s := startServer(t, d)

	udp := exchange(t, "udp", s.Addr(), query("chat.test.", dns.TypeA, 0))
	if !udp.Truncated || len(udp.Answer) == 0 || len(udp.Answer) >= 200 {
		t.Errorf("UDP reply: TC %v with %d answers, want TC with part of the 200", udp.Truncated, len(udp.Answer))
	}
	tcp := exchange(t, "tcp", s.Addr(), query("chat.test.", dns.TypeA, 0))
	if tcp.Truncated || len(tcp.Answer) != 200 {
		t.Errorf("TCP reply: TC %v with %d answers, want all 200", tcp.Truncated, len(tcp.Answer))
	}
	srv := exchange(t, "tcp", s.Addr(), query("_switchboard._tcp.chat.test.", dns.TypeSRV, 0))
	if srv.Truncated || len(srv.Answer) != 200 || len(srv.Extra) != 200 {
		t.Errorf("TCP SRV reply: TC %v with %d answers and %d additional, want 200 and 200", srv.Truncated, len(srv.Answer), len(srv.Extra))
	}
}

func TestServerEDNSSize(t *testing.T) {
	d := newDir(manyNodes(60)...) // 60 A records: about 1 KB
	s := startServer(t, d, func(c *Config) { c.MaxUDPSize = 1232 })

	plain := exchange(t, "udp", s.Addr(), query("chat.test.", dns.TypeA, 0))
	if !plain.Truncated || plain.IsEdns0() != nil {
		t.Errorf("without EDNS0: TC %v, OPT %v; want TC and no OPT", plain.Truncated, plain.IsEdns0())
	}
	big := exchange(t, "udp", s.Addr(), query("chat.test.", dns.TypeA, 4096))
	if big.Truncated || len(big.Answer) != 60 {
		t.Errorf("with EDNS0 4096: TC %v with %d answers, want all 60", big.Truncated, len(big.Answer))
	}
	if opt := big.IsEdns0(); opt == nil || opt.UDPSize() != 1232 {
		t.Errorf("reply OPT %v, want one advertising 1232", opt)
	}

	// 100 nodes do not fit in 1232 bytes, the server's cap, even when the
	// client offers more.
	d.set(manyNodes(100)...)
	for _, size := range []uint16{1232, 4096} {
		m := query("chat.test.", dns.TypeA, size)
		m.Id = dns.Id()
		raw := rawExchange(t, s.Addr(), m)
		if len(raw) > 1232 {
			t.Errorf("EDNS0 %d: reply of %d bytes, want at most 1232", size, len(raw))
		}
		r := new(dns.Msg)
		if err := r.Unpack(raw); err != nil {
			t.Fatal(err)
		}
		if !r.Truncated || len(r.Answer) < 60 {
			t.Errorf("EDNS0 %d: TC %v with %d answers, want TC with at least 60", size, r.Truncated, len(r.Answer))
		}
	}

	// A query longer than 512 bytes (EDNS0 padding, RFC 7830) is read
	// whole and answered, not cut to 512 bytes and refused as malformed.
	d.set(manyNodes(3)...)
	padded := query("chat.test.", dns.TypeA, 1232)
	padded.IsEdns0().Option = append(padded.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 700)})
	if r := exchange(t, "udp", s.Addr(), padded); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 3 {
		t.Errorf("a padded query of over 700 bytes: %s with %d answers, want NOERROR with 3", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
}

// rawExchange sends m over UDP and returns the reply's bytes.
func rawExchange(t *testing.T, addr string, m *dns.Msg) []byte {
	t.Helper()
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return rawBytesExchange(t, addr, q)
}

// rawBytesExchange sends q over UDP and returns the reply's bytes.
func rawBytesExchange(t *testing.T, addr string, q []byte) []byte {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(q); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func TestServerLifecycle(t *testing.T) {
	d := newDir(manyNodes(1)...)
	s := newServer(t, d)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("Start after Shutdown: %v, want already started", err)
	}

	s = newServer(t, d)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Addr() == "" || strings.HasSuffix(s.Addr(), ":0") {
		t.Errorf("Addr %q, want the bound address", s.Addr())
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	// UDP and TCP serve the same port.
	exchange(t, "udp", s.Addr(), query("chat.test.", dns.TypeA, 0))
	exchange(t, "tcp", s.Addr(), query("chat.test.", dns.TypeA, 0))
	// A TCP client that stays connected does not hold Shutdown up.
	idle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	if _, _, err := c.Exchange(query("chat.test.", dns.TypeA, 0), s.Addr()); err == nil {
		t.Error("server still answers over TCP after Shutdown")
	}
}

func TestServerPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := newServer(t, newDir(), func(c *Config) { c.Addr = ln.Addr().String() })
	err = s.Start(context.Background())
	if err == nil {
		s.Shutdown(context.Background())
		t.Fatal("Start on a taken TCP port succeeded")
	}
	if !strings.HasPrefix(err.Error(), "dnsserver: listening on tcp") {
		t.Errorf("error %q, want dnsserver: listening on tcp ...", err)
	}
}

func TestServerMalformed(t *testing.T) {
	s := startServer(t, newDir(manyNodes(1)...))
	hdr := func(flags byte, qd, an, ns, ar byte) []byte {
		return []byte{0xbe, 0xef, flags, 0x00, 0, qd, 0, an, 0, ns, 0, ar}
	}
	question := []byte{4, 'c', 'h', 'a', 't', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1}
	tests := []struct {
		name  string
		q     []byte
		rcode int
	}{
		{"one question promised, none sent", hdr(0x01, 1, 0, 0, 0), dns.RcodeFormatError},
		{"no question", hdr(0x01, 0, 0, 0, 0), dns.RcodeFormatError},
		{"a name that points at itself", append(hdr(0x01, 1, 0, 0, 0), 0xc0, 12, 0, 1, 0, 1), dns.RcodeFormatError},
		{"answers promised in a query", append(hdr(0x01, 1, 5, 0, 0), question...), dns.RcodeFormatError},
		{"a label longer than 63 bytes", append(append(hdr(0x01, 1, 0, 0, 0), 64), make([]byte, 70)...), dns.RcodeFormatError},
		{"UPDATE", append(hdr(0x28, 1, 0, 0, 0), question...), dns.RcodeNotImplemented},
		{"IQUERY", append(hdr(0x08, 1, 0, 0, 0), question...), dns.RcodeNotImplemented},
		{"well formed", append(hdr(0x01, 1, 0, 0, 0), question...), dns.RcodeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := new(dns.Msg)
			if err := r.Unpack(rawBytesExchange(t, s.Addr(), tt.q)); err != nil {
				t.Fatal(err)
			}
			if r.Id != 0xbeef || !r.Response || r.Rcode != tt.rcode || r.RecursionAvailable {
				t.Errorf("reply id %#x qr %v rcode %s ra %v, want 0xbeef, qr, %s, no ra", r.Id, r.Response, dns.RcodeToString[r.Rcode], r.RecursionAvailable, dns.RcodeToString[tt.rcode])
			}
		})
	}
}

// The question comes back exactly as asked, case and all: resolvers that
// randomise the case of names (0x20) drop replies that change it.
func TestServerEchoesQuestionCase(t *testing.T) {
	s := startServer(t, newDir(manyNodes(2)...))
	for _, name := range []string{"ChAt.TeSt.", "cHaT.tEsT.", "MISSING.chat.TEST."} {
		r := exchange(t, "udp", s.Addr(), query(name, dns.TypeA, 0))
		if len(r.Question) != 1 || r.Question[0].Name != name {
			t.Errorf("question %v, want %s as asked", r.Question, name)
		}
	}
}
