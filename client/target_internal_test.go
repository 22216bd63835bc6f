package client

import (
	"context"
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
	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/wire"
)

// testDNS serves h over UDP on a loopback port until the test ends, and
// returns its address.
func testDNS(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: h}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// answer adds the records among rrs of the type asked to m.
func answer(t *testing.T, m *dns.Msg, qtype uint16, rrs ...string) {
	t.Helper()
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Error(err)
			return
		}
		if rr.Header().Rrtype == qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
}

// With dns:SERVICE and the system resolver, the SRV targets come back as
// the addresses the directory lists the nodes by, not as host names: the
// node just lost (b, timed out) comes after the other, and neither is
// listed twice (by name and by address).
func TestHelloOrderMatchesSRVTargetsToTheDirectory(t *testing.T) {
	addr := testDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch strings.ToLower(q.Name) {
		case "_switchboard._tcp.chat.test.":
			// b first, as the responder may order them.
			answer(t, m, q.Qtype, q.Name+" 5 IN SRV 0 1 7070 b.node.chat.test.", q.Name+" 5 IN SRV 1 1 7070 a.node.chat.test.")
		case "a.node.chat.test.":
			answer(t, m, q.Qtype, q.Name+" 5 IN A 10.0.0.1")
		case "b.node.chat.test.":
			answer(t, m, q.Qtype, q.Name+" 5 IN A 10.0.0.2")
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	system := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}

	m, err := failover.New(failover.DefaultConfig(), rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, o := range []failover.Outcome{
		{Kind: failover.Begin},
		{Kind: failover.Fetched},
		{Kind: failover.Picked, Node: "b"},
		{Kind: failover.Timeout, Node: "b"},
	} {
		m.Next(o, now)
	}
	if !m.Excluded("b", now) {
		t.Fatal("b is not in its cool-down after a timeout")
	}
	s := &Session{opts: options{rand: rand.New(rand.NewPCG(3, 4))}, machine: m}
	dir := &wire.Directory{Nodes: []directory.Node{
		{ID: "a", Addr: "10.0.0.1:7070", Status: directory.Up},
		{ID: "b", Addr: "10.0.0.2:7070", Status: directory.Up},
	}}

	tg, err := parseTarget("dns:chat.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.system = system
	addrs, err := tg.resolveAddrs(t.Context(), s.opts.rand, 7070, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range s.helloOrder(addrs, dir, now) {
		got = append(got, h.addr)
	}
	if diff := cmp.Diff(got, []string{"10.0.0.1:7070", "10.0.0.2:7070"}); diff != "" {
		t.Errorf("hello order over %v (-got +want):\n%s", addrs, diff)
	}
}

// The names of a HOST:PORT,HOST:PORT target are looked up at once: the
// resolver answers no A query until all three are in, so a lookup that
// waited for the one before would get no answer (but the last one's).
func TestResolveAddrsLooksNamesUpAtOnce(t *testing.T) {
	ips := map[string]string{"n1.list.test.": "127.0.8.1", "n2.list.test.": "127.0.8.2", "n3.list.test.": "127.0.8.3"}
	var mu sync.Mutex
	asked := map[string]bool{}
	all, stop := make(chan struct{}), make(chan struct{})
	addr := testDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		switch ip, ok := ips[name]; {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			mu.Lock()
			if !asked[name] {
				asked[name] = true
				if len(asked) == len(ips) {
					close(all)
				}
			}
			mu.Unlock()
			select {
			case <-all:
			case <-stop:
				return
			}
			answer(t, m, q.Qtype, name+" 5 IN A "+ip)
		}
		_ = w.WriteMsg(m)
	})
	t.Cleanup(func() { close(stop) }) // before the server's shutdown

	tg, err := parseTarget("n1.list.test:7070, n2.list.test:7071,n3.list.test:7072,127.0.0.1:7073", []string{addr})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tg.resolveAddrs(t.Context(), rand.New(rand.NewPCG(1, 2)), 7070, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"127.0.0.1:7073", "127.0.8.1:7070", "127.0.8.2:7071", "127.0.8.3:7072"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("resolveAddrs (-got +want):\n%s", diff)
	}
}

// An IPv6 literal with a zone is an address, not a name: no resolver is
// asked for it, it is tried as written, and it names no service for TLS.
func TestTargetZonedIPv6Literal(t *testing.T) {
	var queries atomic.Int32
	addr := testDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		queries.Add(1)
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		_ = w.WriteMsg(m)
	})
	for _, resolvers := range [][]string{nil, {addr}} {
		tg, err := parseTarget("[fe80::1%lo]:7070", resolvers)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tg.resolveAddrs(t.Context(), rand.New(rand.NewPCG(1, 2)), 7070, 5*time.Second)
		if err != nil {
			t.Errorf("resolveAddrs with resolvers %v: %v", resolvers, err)
		}
		if diff := cmp.Diff(got, []string{"[fe80::1%lo]:7070"}); diff != "" {
			t.Errorf("resolveAddrs with resolvers %v (-got +want):\n%s", resolvers, diff)
		}
		if name := tg.serviceName(); name != "" {
			t.Errorf("serviceName() = %q, want none", name)
		}
	}
	if n := queries.Load(); n != 0 {
		t.Errorf("the resolver was asked %d queries for an IP literal", n)
	}
}

// A dns: target whose service has a port, a path or a space is refused
// when the session is made: looked up, it failed every pass for ever.
func TestTargetServiceWithAPortIsRefused(t *testing.T) {
	for _, raw := range []string{"dns:chat.local:7070", "dns://127.0.0.1:53/chat.local:7070", "dns:chat local", "dns://127.0.0.1:53/chat/x"} {
		if _, err := parseTarget(raw, nil); err == nil || !strings.Contains(err.Error(), "is not a DNS name") {
			t.Errorf("parseTarget(%q): %v, want it refused", raw, err)
		}
	}
	for _, raw := range []string{"dns:chat.local", "dns://127.0.0.1:53/chat.local", "chat.local:7070", "127.0.0.1:7070,127.0.0.2:7070"} {
		if _, err := parseTarget(raw, nil); err != nil {
			t.Errorf("parseTarget(%q): %v", raw, err)
		}
	}
}
