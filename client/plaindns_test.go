package client_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/client"
)

// WithPlainDNS looks the name up as A records with the target's port, and
// never asks for SRV: here the SRV record names a closed port, so a Dial
// that read it fails, and one with WithPlainDNS attaches.
func TestDialWithPlainDNS(t *testing.T) {
	node := newFakeNode(t, "n1")
	_, port, _ := net.SplitHostPort(node.Addr())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	a := func(name string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(127, 0, 0, 1)}
	}
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case q.Qtype == dns.TypeSRV && q.Name == "_switchboard._tcp.chat.test.":
			var p uint16
			for _, c := range closedPort {
				p = p*10 + uint16(c-'0')
			}
			m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 5}, Port: p, Weight: 1, Target: "n1.chat.test."})
			m.Extra = append(m.Extra, a("n1.chat.test."))
		case q.Qtype == dns.TypeA && (q.Name == "chat.test." || q.Name == "n1.chat.test."):
			m.Answer = append(m.Answer, a(q.Name))
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	defer srv.Shutdown()
	target := "chat.test:" + port

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, target, client.WithUser("plain"), client.WithResolver(pc.LocalAddr().String()), client.WithPlainDNS())
	if err != nil {
		t.Fatalf("Dial with WithPlainDNS: %v", err)
	}
	s.Close()

	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if s, err := client.Dial(short, target, client.WithUser("srv"), client.WithResolver(pc.LocalAddr().String())); err == nil {
		s.Close()
		t.Fatal("Dial without WithPlainDNS attached, though the SRV record names a closed port")
	}
}
