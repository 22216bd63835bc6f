package dnsserver

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkQPS compares the responder with a static miekg/dns handler that
// always returns the same fixed A answer (the same five records the
// responder serves, unrotated), both served by a dns.Server on a loopback
// UDP socket and driven by the same load client: b.RunParallel goroutines,
// each with its own UDP socket and one query in flight. Run:
//
//	go test -run '^$' -bench QPS -cpu 1 ./internal/dnsserver/
//
// and compare the qps metric of BenchmarkQPS/responder and
// BenchmarkQPS/static.
func BenchmarkQPS(b *testing.B) {
	const nodes = 5
	d := newDir(manyNodes(nodes)...)

	b.Run("responder", func(b *testing.B) {
		s := startServer(b, d)
		benchQPS(b, s.Addr(), nodes)
	})
	b.Run("static", func(b *testing.B) {
		// The records the responder would serve, built once.
		ref := newServer(b, d).Answer(query(testZone, dns.TypeA, 0), false).Answer
		fixed := make([]dns.RR, len(ref))
		copy(fixed, ref)
		h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			m.Answer = fixed
			_ = w.WriteMsg(m)
		})
		benchQPS(b, serveStatic(b, h), nodes)
	})
}

// serveStatic serves h over UDP on 127.0.0.1:0 until the benchmark ends.
func serveStatic(b *testing.B, h dns.Handler) string {
	b.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	up := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(up) }}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-up:
	case err := <-done:
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = srv.Shutdown()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return pc.LocalAddr().String()
}

// benchQPS sends A queries for the zone to addr from b.RunParallel
// goroutines and reports queries per second. Each reply must carry the
// query's ID, NOERROR and wantAnswers records.
func benchQPS(b *testing.B, addr string, wantAnswers int) {
	q, err := query(testZone, dns.TypeA, 0).Pack()
	if err != nil {
		b.Fatal(err)
	}
	var ids atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		msg := append([]byte(nil), q...)
		buf := make([]byte, 4096)
		for pb.Next() {
			id := uint16(ids.Add(1))
			binary.BigEndian.PutUint16(msg, id)
			n, err := roundTrip(conn, msg, buf, id)
			if err != nil {
				b.Error(err)
				return
			}
			if buf[3]&0x0f != dns.RcodeSuccess || int(binary.BigEndian.Uint16(buf[6:])) != wantAnswers {
				b.Errorf("bad reply % x", buf[:min(n, 12)])
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "qps")
}

// roundTrip sends the query msg (with ID id) on conn and reads replies into
// buf until the one with that ID comes. A datagram lost on a loaded machine
// is sent again after a second, up to five times, as a real client would.
func roundTrip(conn net.Conn, msg, buf []byte, id uint16) (int, error) {
	var err error
	for range 5 {
		if _, err = conn.Write(msg); err != nil {
			return 0, err
		}
		if err = conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			return 0, err
		}
		for {
			var n int
			n, err = conn.Read(buf)
			if err != nil {
				break // timed out: send again
			}
			if n >= 12 && binary.BigEndian.Uint16(buf) == id {
				return n, nil
			}
			// A late reply to an earlier query: keep reading.
		}
	}
	return 0, fmt.Errorf("no reply to query %d after 5 tries: %w", id, err)
}

// BenchmarkAnswer measures the handler alone, without sockets, for a
// directory of 200 nodes.
func BenchmarkAnswer(b *testing.B) {
	s := newServer(b, newDir(manyNodes(200)...))
	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
		size  uint16
	}{
		{"A-udp512", testZone, dns.TypeA, 0},
		{"A-edns4096", testZone, dns.TypeA, 4096},
		{"SRV-edns4096", "_switchboard._tcp." + testZone, dns.TypeSRV, 4096},
		{"NXDOMAIN", "nope." + testZone, dns.TypeA, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := query(tc.qname, tc.qtype, tc.size)
			b.ReportAllocs()
			for b.Loop() {
				m := s.Answer(q, false)
				if _, err := m.Pack(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
