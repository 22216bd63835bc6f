package dnsserver

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/directory"
)

// notReady reports whether m's OPT carries the extended error Not Ready
// (RFC 8914).
func notReady(m *dns.Msg) bool {
	opt := m.IsEdns0()
	if opt == nil {
		return false
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok && e.InfoCode == dns.ExtendedErrorCodeNotReady {
			return true
		}
	}
	return false
}

// TestNotServing: while Config.Serving says false (the node is starting or
// degraded), every query for a name in the zone gets SERVFAIL, not an
// authoritative empty answer that resolvers would cache; names outside
// the zone stay REFUSED; once it says true the answers are as before.
// Asked over the network, UDP and TCP, of a responder on loopback.
func TestNotServing(t *testing.T) {
	var serving atomic.Bool
	d := newDir(
		upNode("n1", "127.0.0.1:7001", 0, 10),
		upNode("n2", "127.0.0.2:7002", 0, 10),
		directory.Node{ID: "n3", Addr: "127.0.0.3:7003", Status: directory.Down, Capacity: 10},
	)
	s := startServer(t, d, func(c *Config) { c.Serving = serving.Load })
	type ask struct {
		name  string
		qtype uint16
	}
	inZone := []ask{
		{"chat.test.", dns.TypeA},
		{"chat.test.", dns.TypeAAAA},
		{"_switchboard._tcp.chat.test.", dns.TypeSRV},
		{"n1.node.chat.test.", dns.TypeA},
		{"n3.node.chat.test.", dns.TypeA},
		{"chat.test.", dns.TypeSOA},
		{"chat.test.", dns.TypeNS},
		{"ns.chat.test.", dns.TypeA},
		{"missing.chat.test.", dns.TypeA},
		{"CHAT.test.", dns.TypeANY},
	}
	outside := []ask{
		{"example.org.", dns.TypeA},
		{"test.", dns.TypeSOA},
		{"xchat.test.", dns.TypeA},
	}
	for _, network := range []string{"udp", "tcp"} {
		serving.Store(false)
		for _, q := range inZone {
			for _, edns := range []uint16{0, 1232} {
				r := exchange(t, network, s.Addr(), query(q.name, q.qtype, edns))
				if r.Rcode != dns.RcodeServerFailure || r.Authoritative || len(r.Answer)+len(r.Ns) > 0 {
					t.Errorf("not serving, %s %s over %s (EDNS0 %d): %s aa=%v, %d answers, %d authority; want SERVFAIL, no AA, no records",
						q.name, dns.TypeToString[q.qtype], network, edns, dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer), len(r.Ns))
				}
				if got := notReady(r); got != (edns > 0) {
					t.Errorf("not serving, %s %s over %s (EDNS0 %d): extended error Not Ready %v, want %v", q.name, dns.TypeToString[q.qtype], network, edns, got, edns > 0)
				}
			}
		}
		for _, on := range []bool{false, true} {
			serving.Store(on)
			for _, q := range outside {
				if r := exchange(t, network, s.Addr(), query(q.name, q.qtype, 0)); r.Rcode != dns.RcodeRefused {
					t.Errorf("serving %v, %s %s over %s: %s, want REFUSED", on, q.name, dns.TypeToString[q.qtype], network, dns.RcodeToString[r.Rcode])
				}
			}
		}

		serving.Store(true)
		want := map[ask][]string{
			{"chat.test.", dns.TypeA}:                     {"127.0.0.1", "127.0.0.2"},
			{"_switchboard._tcp.chat.test.", dns.TypeSRV}: {"n1.node.chat.test.", "n2.node.chat.test."},
			{"n1.node.chat.test.", dns.TypeA}:             {"127.0.0.1"},
			{"n3.node.chat.test.", dns.TypeA}:             {"127.0.0.3"},
		}
		for q, w := range want {
			r := exchange(t, network, s.Addr(), query(q.name, q.qtype, 1232))
			var got []string
			for _, rr := range r.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					got = append(got, rr.A.String())
				case *dns.SRV:
					got = append(got, rr.Target)
				}
			}
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || notReady(r) || strings.Join(sortedCopy(got), " ") != strings.Join(w, " ") {
				t.Errorf("serving, %s %s over %s: %s aa=%v %v, want NOERROR, AA, %v", q.name, dns.TypeToString[q.qtype], network, dns.RcodeToString[r.Rcode], r.Authoritative, got, w)
			}
		}
		if r := exchange(t, network, s.Addr(), query("missing.chat.test.", dns.TypeA, 0)); r.Rcode != dns.RcodeNameError || !r.Authoritative {
			t.Errorf("serving, a name not in the zone over %s: %s aa=%v, want NXDOMAIN, AA", network, dns.RcodeToString[r.Rcode], r.Authoritative)
		}
	}
	// Both passes asked every in-zone question twice while not serving.
	if got, want := s.Stats().NotServing, uint64(2*2*len(inZone)); got != want {
		t.Errorf("Stats().NotServing = %d, want %d", got, want)
	}
}

// TestNotServingLogsChanges: the responder logs when it stops and starts
// serving, once per change however many queries see it, and nothing when
// it serves from the start.
func TestNotServingLogsChanges(t *testing.T) {
	var serving atomic.Bool
	serving.Store(true)
	var buf bytes.Buffer // written by ServeDNS, called here, one at a time
	s := newServer(t, newDir(upNode("n1", "127.0.0.1:7001", 0, 10)), func(c *Config) {
		c.Serving = serving.Load
		c.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	ask := func(times int) {
		for range times {
			w := &fakeWriter{}
			s.ServeDNS(w, query("chat.test.", dns.TypeA, 0))
		}
	}
	ask(3)
	for range 2 {
		serving.Store(false)
		ask(5)
		serving.Store(true)
		ask(5)
	}
	got := buf.String()
	if n := strings.Count(got, "dns responder not serving the zone"); n != 2 {
		t.Errorf("%d lines saying the responder stopped serving, want 2:\n%s", n, got)
	}
	if n := strings.Count(got, "dns responder serving the zone again"); n != 2 {
		t.Errorf("%d lines saying the responder serves again, want 2:\n%s", n, got)
	}
	if n := strings.Count(got, "\n"); n != 4 {
		t.Errorf("%d log lines, want 4:\n%s", n, got)
	}
}

// TestNotServingFromTheStart: a responder whose node is starting when the
// first query comes says so once, and answers SERVFAIL.
func TestNotServingFromTheStart(t *testing.T) {
	var buf bytes.Buffer
	s := newServer(t, newDir(), func(c *Config) {
		c.Serving = func() bool { return false }
		c.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	for range 3 {
		w := &fakeWriter{}
		s.ServeDNS(w, query("chat.test.", dns.TypeA, 0))
		if w.msg == nil || w.msg.Rcode != dns.RcodeServerFailure {
			t.Fatalf("reply %v, want SERVFAIL", w.msg)
		}
	}
	if n := strings.Count(buf.String(), "dns responder not serving the zone"); n != 1 {
		t.Errorf("%d lines saying the responder does not serve, want 1:\n%s", n, buf.String())
	}
}
