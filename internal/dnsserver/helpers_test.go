package dnsserver

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/directory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testZone = "chat.test."

// dir is a directory snapshot held the way a node holds it: an immutable
// slice behind an atomic pointer, replaced whole on every change.
type dir struct {
	p atomic.Pointer[[]directory.Node]
}

func newDir(nodes ...directory.Node) *dir {
	d := &dir{}
	d.set(nodes...)
	return d
}

func (d *dir) set(nodes ...directory.Node) {
	snap := slices.Clone(nodes)
	d.p.Store(&snap)
}

func (d *dir) nodes() []directory.Node {
	if p := d.p.Load(); p != nil {
		return *p
	}
	return nil
}

// update replaces the node with id by f(node) in a new snapshot.
func (d *dir) update(id string, f func(*directory.Node)) {
	snap := slices.Clone(d.nodes())
	for i := range snap {
		if snap[i].ID == id {
			f(&snap[i])
		}
	}
	d.p.Store(&snap)
}

func upNode(id, addr string, users, capacity int) directory.Node {
	return directory.Node{ID: id, Addr: addr, Status: directory.Up, Users: users, Capacity: capacity}
}

// manyNodes returns n available nodes on distinct loopback IPs (127.1.x.y),
// port 7070. The addresses are only data in answers; nothing dials them.
func manyNodes(n int) []directory.Node {
	nodes := make([]directory.Node, n)
	for i := range nodes {
		nodes[i] = upNode(fmt.Sprintf("n%03d", i), fmt.Sprintf("127.1.%d.%d:7070", i/250, i%250+1), 0, 100)
	}
	return nodes
}

// newServer returns a Server for testZone over d, not listening.
func newServer(t testing.TB, d *dir, edit ...func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig(testZone, d.nodes)
	cfg.Addr = "127.0.0.1:0"
	for _, f := range edit {
		f(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// resetRotation makes every round-robin answer of s start again at its
// first record, for tests that compare records in order.
func resetRotation(s *Server) {
	r := &s.rotors
	for _, c := range []*rotor{&r.apexA, &r.apexAAAA, &r.srv, &r.nsA, &r.nsAAAA} {
		c.n.Store(0)
	}
}

// startServer starts a Server for testZone over d on 127.0.0.1:0 and shuts
// it down when the test ends.
func startServer(t testing.TB, d *dir, edit ...func(*Config)) *Server {
	t.Helper()
	return start(t, newServer(t, d, edit...))
}

// start starts s and shuts it down when the test ends.
func start(t testing.TB, s *Server) *Server {
	t.Helper()
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// query builds a query for name and qtype; udpSize > 0 adds an EDNS0 OPT.
func query(name string, qtype uint16, udpSize uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if udpSize > 0 {
		m.SetEdns0(udpSize, false)
	}
	return m
}

// exchange sends m to addr over network ("udp" or "tcp") with miekg/dns's
// client and returns the reply.
func exchange(t testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange %s %s over %s: %v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], network, err)
	}
	if r.Id != m.Id {
		t.Fatalf("reply id %d, want %d", r.Id, m.Id)
	}
	return r
}

// ips returns the addresses of the A and AAAA records in rrs, in order.
func ips(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return out
}

// isRotation reports whether got is want rotated by some offset.
func isRotation(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	if len(got) == 0 {
		return true
	}
	off := slices.Index(want, got[0])
	if off < 0 {
		return false
	}
	for i := range got {
		if got[i] != want[(off+i)%len(want)] {
			return false
		}
	}
	return true
}

// fakeWriter is a dns.ResponseWriter that keeps the reply in memory.
type fakeWriter struct {
	tcp bool
	msg *dns.Msg
	n   int // WriteMsg calls
}

func (w *fakeWriter) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

func (w *fakeWriter) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5300}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5300}
}

func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	w.msg = m
	w.n++
	return nil
}

func (w *fakeWriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	return len(b), w.WriteMsg(m)
}

func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return nil }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
