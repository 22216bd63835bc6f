package dnsserver

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
)

// These tests ask the server with BIND's dig, a DNS client we did not write.
// dig is required: CI installs it (Debian package dnsutils).

// digReply is what the tests read from dig's output.
type digReply struct {
	Status     string
	Flags      []string
	Answer     []string // "TYPE rdata" per record
	Authority  []string
	Additional []string
	Retried    bool // dig saw TC over UDP and asked again over TCP
	Raw        string
}

var (
	digStatus = regexp.MustCompile(`status: ([A-Z]+),`)
	digFlags  = regexp.MustCompile(`;; flags: ([a-z ]*);`)
)

// dig runs dig against the server at addr and parses its reply.
func dig(t *testing.T, addr string, args ...string) digReply {
	t.Helper()
	bin, err := exec.LookPath("dig")
	if err != nil {
		t.Fatalf("dig is not installed; these tests need it: apt-get install -y dnsutils (%v)", err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	argv := append([]string{"@" + host, "-p", port, "+tries=1", "+time=3", "+nocookie"}, args...)
	out, err := exec.CommandContext(ctx, bin, argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	r := digReply{Raw: string(out)}
	if m := digStatus.FindAllStringSubmatch(r.Raw, -1); len(m) > 0 {
		r.Status = m[len(m)-1][1] // the last reply, after any TCP retry
	}
	if m := digFlags.FindAllStringSubmatch(r.Raw, -1); len(m) > 0 {
		r.Flags = strings.Fields(m[len(m)-1][1])
	}
	r.Retried = strings.Contains(r.Raw, "Truncated, retrying in TCP mode")
	var section *[]string
	sc := bufio.NewScanner(strings.NewReader(r.Raw))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION"):
			section = &r.Answer
		case strings.HasPrefix(line, ";; AUTHORITY SECTION"):
			section = &r.Authority
		case strings.HasPrefix(line, ";; ADDITIONAL SECTION"):
			section = &r.Additional
		case line == "" || strings.HasPrefix(line, ";"):
			section = nil
		case section != nil:
			// owner TTL class type rdata...
			f := strings.Fields(line)
			if len(f) >= 5 {
				*section = append(*section, f[3]+" "+strings.Join(f[4:], " "))
			}
		}
	}
	return r
}

func (r digReply) hasFlag(f string) bool {
	for _, g := range r.Flags {
		if g == f {
			return true
		}
	}
	return false
}

func rdata(records []string) []string {
	var out []string
	for _, r := range records {
		_, v, _ := strings.Cut(r, " ")
		out = append(out, v)
	}
	return out
}

func TestDigRoundRobin(t *testing.T) {
	d := newDir(manyNodes(3)...)
	s := startServer(t, d)
	base := []string{"127.1.0.1", "127.1.0.2", "127.1.0.3"}
	firsts := map[string]bool{}
	for range 3 {
		r := dig(t, s.Addr(), "chat.test", "A")
		if r.Status != "NOERROR" || !r.hasFlag("aa") {
			t.Fatalf("status %s flags %v, want NOERROR with aa\n%s", r.Status, r.Flags, r.Raw)
		}
		got := rdata(r.Answer)
		if !isRotation(got, base) {
			t.Fatalf("answer %v is not a rotation of %v\n%s", got, base, r.Raw)
		}
		firsts[got[0]] = true
	}
	if len(firsts) != 3 {
		t.Errorf("3 answers started at %d distinct records, want 3", len(firsts))
	}

	// A node that goes down leaves the very next answer.
	d.update("n001", func(n *directory.Node) { n.Status = directory.Down })
	r := dig(t, s.Addr(), "CHAT.TEST", "A")
	if got, want := sortedCopy(rdata(r.Answer)), []string{"127.1.0.1", "127.1.0.3"}; !cmp.Equal(got, want) {
		t.Errorf("after n001 went down: %v, want %v\n%s", got, want, r.Raw)
	}
}

func TestDigSRV(t *testing.T) {
	d := newDir(
		upNode("big", "127.0.0.1:7001", 0, 100),
		upNode("half", "127.0.0.2:7002", 50, 100),
	)
	s := startServer(t, d)
	r := dig(t, s.Addr(), "_switchboard._tcp.chat.test", "SRV")
	want := []string{"SRV 0 32768 7002 half.node.chat.test.", "SRV 0 65535 7001 big.node.chat.test."}
	if diff := cmp.Diff(sortedCopy(r.Answer), want); diff != "" {
		t.Errorf("SRV answer (-got +want):\n%s\n%s", diff, r.Raw)
	}
	wantExtra := []string{"A 127.0.0.1", "A 127.0.0.2"}
	if diff := cmp.Diff(sortedCopy(r.Additional), wantExtra); diff != "" {
		t.Errorf("SRV additional (-got +want):\n%s\n%s", diff, r.Raw)
	}
}

func TestDigRcodes(t *testing.T) {
	d := newDir(upNode("a", "127.0.0.1:7001", 0, 10))
	s := startServer(t, d)
	tests := []struct {
		name, qname, qtype string
		status             string
		aa                 bool
		authority          []string
	}{
		{"outside the zone", "example.com", "A", "REFUSED", false, nil},
		{"unknown name inside", "missing.chat.test", "A", "NXDOMAIN", true, []string{"SOA"}},
		{"no AAAA", "chat.test", "AAAA", "NOERROR", true, []string{"SOA"}},
		{"no MX", "chat.test", "MX", "NOERROR", true, []string{"SOA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dig(t, s.Addr(), tt.qname, tt.qtype)
			var auth []string
			for _, a := range r.Authority {
				typ, _, _ := strings.Cut(a, " ")
				auth = append(auth, typ)
			}
			got := []any{r.Status, r.hasFlag("aa"), auth, len(r.Answer)}
			want := []any{tt.status, tt.aa, tt.authority, 0}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("status, aa, authority, answers (-got +want):\n%s\n%s", diff, r.Raw)
			}
		})
	}
}

// dig without +tcp gets a truncated UDP reply for 200 nodes and retries over
// TCP by itself; the answer it ends with is complete.
func TestDigTCPFallback(t *testing.T) {
	d := newDir(manyNodes(200)...)
	s := startServer(t, d)
	for _, args := range [][]string{{"+noedns"}, {"+bufsize=1232"}} {
		r := dig(t, s.Addr(), append(args, "chat.test", "A")...)
		if !r.Retried {
			t.Errorf("dig %v did not retry over TCP\n%s", args, r.Raw)
		}
		if r.Status != "NOERROR" || r.hasFlag("tc") || len(r.Answer) != 200 {
			t.Errorf("dig %v: status %s flags %v, %d answers; want NOERROR without tc and 200 answers", args, r.Status, r.Flags, len(r.Answer))
		}
	}
	// +ignore keeps the truncated UDP reply: TC and only part of the answer.
	r := dig(t, s.Addr(), "+ignore", "+noedns", "chat.test", "A")
	if !r.hasFlag("tc") || len(r.Answer) >= 200 {
		t.Errorf("UDP reply: flags %v with %d answers, want tc and fewer than 200", r.Flags, len(r.Answer))
	}
}

func TestDigEDNSSize(t *testing.T) {
	d := newDir(manyNodes(60)...)
	s := startServer(t, d)
	small := dig(t, s.Addr(), "+ignore", "+bufsize=512", "chat.test", "A")
	if !small.hasFlag("tc") {
		t.Errorf("bufsize 512: flags %v, want tc\n%s", small.Flags, small.Raw)
	}
	big := dig(t, s.Addr(), "+ignore", "+bufsize=4096", "chat.test", "A")
	if big.hasFlag("tc") || len(big.Answer) != 60 {
		t.Errorf("bufsize 4096: flags %v with %d answers, want all 60 without tc", big.Flags, len(big.Answer))
	}
	if !strings.Contains(big.Raw, "EDNS: version: 0") {
		t.Errorf("reply has no OPT record:\n%s", big.Raw)
	}
}

var digSize = regexp.MustCompile(`;; MSG SIZE\s+rcvd: (\d+)`)

// size is the byte size of the last reply dig received.
func (r digReply) size(t *testing.T) int {
	t.Helper()
	m := digSize.FindAllStringSubmatch(r.Raw, -1)
	if len(m) == 0 {
		t.Fatalf("no MSG SIZE in dig's output:\n%s", r.Raw)
	}
	n, err := strconv.Atoi(m[len(m)-1][1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ANY is answered as RFC 8482 says, with one small record whatever the
// directory holds, so that a spoofed ANY query cannot be amplified into
// kilobytes at a victim.
func TestDigANYIsMinimal(t *testing.T) {
	d := newDir(manyNodes(200)...)
	s := startServer(t, d)
	for _, name := range []string{"chat.test", "_switchboard._tcp.chat.test", "n001.node.chat.test"} {
		r := dig(t, s.Addr(), "+ignore", "+bufsize=4096", name, "ANY")
		if r.Status != "NOERROR" || r.hasFlag("tc") || !r.hasFlag("aa") {
			t.Errorf("%s ANY: status %s flags %v, want NOERROR, aa, no tc\n%s", name, r.Status, r.Flags, r.Raw)
		}
		if diff := cmp.Diff(r.Answer, []string{`HINFO "RFC8482" ""`}); diff != "" {
			t.Errorf("%s ANY answer (-got +want):\n%s\n%s", name, diff, r.Raw)
		}
		if n := r.size(t); n > 150 {
			t.Errorf("%s ANY: reply of %d bytes, want at most 150", name, n)
		}
	}
	r := dig(t, s.Addr(), "missing.chat.test", "ANY")
	if r.Status != "NXDOMAIN" {
		t.Errorf("missing name ANY: status %s, want NXDOMAIN\n%s", r.Status, r.Raw)
	}
}

// By default a UDP reply never exceeds 1232 bytes, however much a client
// offers: the rest of a large directory comes over TCP.
func TestDigDefaultUDPSize(t *testing.T) {
	d := newDir(manyNodes(100)...) // about 1.6 KB of A records
	s := startServer(t, d)
	r := dig(t, s.Addr(), "+ignore", "+bufsize=4096", "chat.test", "A")
	if n := r.size(t); n > 1232 {
		t.Errorf("reply of %d bytes, want at most 1232\n%s", n, r.Raw)
	}
	if !r.hasFlag("tc") || !strings.Contains(r.Raw, "udp: 1232") {
		t.Errorf("flags %v, want tc and an OPT advertising 1232\n%s", r.Flags, r.Raw)
	}
	full := dig(t, s.Addr(), "+bufsize=4096", "chat.test", "A")
	if !full.Retried || len(full.Answer) != 100 {
		t.Errorf("dig retried over TCP %v with %d answers, want a retry and all 100\n%s", full.Retried, len(full.Answer), full.Raw)
	}
}

// An answer spells its owner name as the question did (DNS 0x20), and a
// later query in another case gets its own spelling, not the last one's.
func TestDigAnswerKeepsTheQuestionsCase(t *testing.T) {
	d := newDir(manyNodes(2)...)
	s := startServer(t, d)
	for _, name := range []string{"ChAt.TeSt.", "cHaT.tEsT.", "chat.test."} {
		r := dig(t, s.Addr(), name, "A")
		var owners []string
		in := false
		for line := range strings.Lines(r.Raw) {
			switch {
			case strings.HasPrefix(line, ";; ANSWER SECTION"):
				in = true
			case strings.TrimSpace(line) == "" || strings.HasPrefix(line, ";"):
				in = false
			case in:
				owners = append(owners, strings.Fields(line)[0])
			}
		}
		if want := []string{name, name}; !cmp.Equal(owners, want) {
			t.Errorf("dig %s A: owners %v, want %v\n%s", name, owners, want, r.Raw)
		}
	}
}
