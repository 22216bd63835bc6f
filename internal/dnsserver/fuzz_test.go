package dnsserver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/directory"
)

// FuzzHandler feeds arbitrary messages to the handler through a fake
// ResponseWriter, over "UDP" and "TCP". Every reply must pack, unpack again,
// answer the query's ID and fit the transport's size. Found inputs go in
// testdata/fuzz/FuzzHandler as regression cases.
func FuzzHandler(f *testing.F) {
	seed := func(name string, qtype uint16, udpSize uint16, edit func(*dns.Msg)) {
		m := query(name, qtype, udpSize)
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed("chat.test.", dns.TypeA, 0, nil)
	seed("CHAT.test.", dns.TypeAAAA, 1232, nil)
	seed("_switchboard._tcp.chat.test.", dns.TypeSRV, 512, nil)
	seed("n001.node.chat.test.", dns.TypeA, 0, nil)
	seed("chat.test.", dns.TypeANY, 4096, nil)
	seed("chat.test.", dns.TypeNS, 0, nil)
	seed("chat.test.", dns.TypeSOA, 0, nil)
	seed("nope.chat.test.", dns.TypeTXT, 0, nil)
	seed("example.com.", dns.TypeA, 0, nil)
	seed("chat.test.", dns.TypeA, 0, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify })
	seed("chat.test.", dns.TypeA, 1232, func(m *dns.Msg) { m.IsEdns0().SetVersion(1) })
	seed("chat.test.", dns.TypeA, 0, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) })
	f.Add([]byte{})
	f.Add(make([]byte, 12))

	nodes := append(manyNodes(40),
		upNode("v6", "[2001:db8::1]:7070", 1, 10),
		upNode("named", "host.example.net:7070", 1, 10),
		directory.Node{ID: "down", Addr: "127.0.0.9:7070", Status: directory.Down},
		directory.Node{ID: "bad", Addr: "no port", Status: directory.Up, Capacity: 1},
	)
	s := newServer(f, newDir(nodes...))

	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(data); err != nil {
			return // miekg/dns's server answers FORMERR before the handler
		}
		for _, tcp := range []bool{false, true} {
			w := &fakeWriter{tcp: tcp}
			s.ServeDNS(w, req)
			if req.Response {
				if w.n != 0 {
					t.Fatalf("answered a response")
				}
				continue
			}
			if w.n != 1 {
				t.Fatalf("tcp=%v: %d replies, want 1", tcp, w.n)
			}
			packed, err := w.msg.Pack()
			if err != nil {
				t.Fatalf("tcp=%v: reply does not pack: %v\n%v", tcp, err, w.msg)
			}
			back := new(dns.Msg)
			if err := back.Unpack(packed); err != nil {
				t.Fatalf("tcp=%v: packed reply does not unpack: %v\n%v", tcp, err, w.msg)
			}
			if back.Id != req.Id || !back.Response {
				t.Fatalf("tcp=%v: reply id %d response %v, want id %d response", tcp, back.Id, back.Response, req.Id)
			}
			if !tcp && len(packed) > DefaultMaxUDPSize {
				t.Fatalf("UDP reply of %d bytes, over %d", len(packed), DefaultMaxUDPSize)
			}
			if !tcp && req.IsEdns0() == nil && len(packed) > dns.MinMsgSize {
				t.Fatalf("UDP reply of %d bytes without EDNS0, over 512", len(packed))
			}
		}
	})
}
