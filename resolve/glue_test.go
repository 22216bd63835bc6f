package resolve

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/dnsserver"
)

// countingDNS passes every query to h and records it, with the network it
// came over and, for UDP, the reply h wrote.
type countingDNS struct {
	h dns.Handler

	mu      sync.Mutex
	queries []string // "udp SRV _switchboard._tcp.chat.test.", say
	udp     []*dns.Msg
}

func (c *countingDNS) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	network := "tcp"
	if isUDP(w) {
		network = "udp"
	}
	q := r.Question[0]
	c.mu.Lock()
	c.queries = append(c.queries, fmt.Sprintf("%s %s %s", network, dns.TypeToString[q.Qtype], q.Name))
	c.mu.Unlock()
	c.h.ServeDNS(&recordingWriter{ResponseWriter: w, c: c, udp: network == "udp"}, r)
}

func (c *countingDNS) asked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.queries)
}

// recordingWriter keeps the UDP replies written through it.
type recordingWriter struct {
	dns.ResponseWriter
	c   *countingDNS
	udp bool
}

func (w *recordingWriter) WriteMsg(m *dns.Msg) error {
	if w.udp {
		w.c.mu.Lock()
		w.c.udp = append(w.c.udp, m.Copy())
		w.c.mu.Unlock()
	}
	return w.ResponseWriter.WriteMsg(m)
}

// With about 30 nodes the SRV records fit in a UDP reply and their
// addresses do not: the Switchboard responder then drops the additional
// section without setting TC (RFC 2181, section 9). Lookup asks the same
// question again over TCP, whose reply has every address, rather than
// look targets up one by one (8 of them at most): every node comes back,
// in 2 queries.
func TestLookupGlueDroppedOverUDP(t *testing.T) {
	const n = 30
	nodes := make([]directory.Node, n)
	var want []string
	for i := range nodes {
		nodes[i] = up(fmt.Sprintf("n%02d", i), fmt.Sprintf("127.1.0.%d:7070", i+1), 0, 100)
		want = append(want, nodes[i].Addr)
	}
	srv, err := dnsserver.New(dnsserver.DefaultConfig("chat.test", func() []directory.Node { return nodes }))
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingDNS{h: srv}
	addr := staticServer(t, counting.ServeDNS)

	got, err := Lookup(t.Context(), Config{Resolver: addr, DefaultPort: 7070}, "chat.test")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if diff := cmp.Diff(sorted(got), sorted(want)); diff != "" {
		t.Errorf("Lookup (-got +want):\n%s", diff)
	}
	asked := counting.asked()
	if len(asked) > 2 {
		t.Errorf("Lookup sent %d queries, want at most 2: %q", len(asked), asked)
	}

	// The case at hand: the UDP reply was whole but for its addresses.
	counting.mu.Lock()
	if len(counting.udp) == 0 {
		counting.mu.Unlock()
		t.Fatal("no query came over UDP")
	}
	r := counting.udp[0]
	var glue int
	for _, rr := range r.Extra {
		if _, ok := addrOf(rr); ok {
			glue++
		}
	}
	if r.Truncated || len(r.Answer) != n || glue == n {
		t.Errorf("the responder's UDP reply has TC %v, %d SRV records and %d addresses; want no TC, %d records and fewer addresses", r.Truncated, len(r.Answer), glue, n)
	}
	counting.mu.Unlock()

	// The same through a started responder, its own listeners and all.
	started, _ := responder(t, nodes...)
	got, err = Lookup(t.Context(), Config{Resolver: started}, "chat.test.")
	if err != nil {
		t.Fatalf("Lookup via a started responder: %v", err)
	}
	if diff := cmp.Diff(sorted(got), sorted(want)); diff != "" {
		t.Errorf("Lookup via a started responder (-got +want):\n%s", diff)
	}
}

// When the TCP question gives no addresses either (a server that never
// sends the additional section), the targets are still looked up one by
// one; when TCP is refused, or accepted and silent (a firewall that eats
// DNS over TCP: the TCP query has its own share of the Timeout), as well.
func TestLookupGlueDroppedNoTCP(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server func(*testing.T, dns.HandlerFunc) string
		tcp    bool // TCP reaches the server
	}{
		{"TCP without addresses", staticServer, true},
		{"TCP refused", udpOnlyServer, false},
		{"TCP silent", udpServerSilentTCP, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counting := &countingDNS{h: dns.HandlerFunc(noGlueDNS)}
			addr := tc.server(t, counting.ServeDNS)
			got, err := Lookup(t.Context(), Config{Resolver: addr, Timeout: 5 * time.Second}, "cache.test")
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"127.0.3.1:7001", "127.0.3.2:7002", "[::1]:7002"}
			if diff := cmp.Diff(sorted(got), want); diff != "" {
				t.Errorf("Lookup (-got +want):\n%s", diff)
			}
			srvTCP := 0
			for _, q := range counting.asked() {
				if q == "tcp SRV _switchboard._tcp.cache.test." {
					srvTCP++
				}
			}
			if tc.tcp && srvTCP != 1 {
				t.Errorf("SRV asked %d times over TCP, want once: %q", srvTCP, counting.asked())
			}
		})
	}
}
