package client

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// A resolver that answers nothing (its node paused or cut off) does not
// hold the lookup up for its whole timeout: the next one is asked after a
// short wait, and its answer is taken. The first resolver's timeout (30
// s) is far past the context's deadline (10 s), so waiting it out would
// fail the lookup.
func TestLookupPassesASilentResolver(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(127, 0, 3, 1)})
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	defer srv.Shutdown()

	tg := target{resolvers: []string{silent.LocalAddr().String(), pc.LocalAddr().String()}, plainDNS: true}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := tg.lookup(ctx, "chat.test", 7070, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []string{"127.0.3.1:7070"}); diff != "" {
		t.Errorf("lookup (-got +want):\n%s", diff)
	}
}
