package sipfront_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipcall"
	"github.com/switchboard/switchboard/internal/sipfront"
	"github.com/switchboard/switchboard/internal/t140"
	"github.com/switchboard/switchboard/internal/textsdp"
	"github.com/switchboard/switchboard/wire"
)

// TestCallerFasterThanTheRoomIsBounded: a caller whose text comes faster
// than the node takes a session's chunks costs the bridge at most
// MaxBacklog chunks held for resending; each run of text shed past it is
// marked U+FFFD once in the room, and the call goes on. Before, the client
// package's queue of unacknowledged text grew with every packet (it held
// 600 here; a caller at the front's packet rate with 2 KB packets grew
// it by about 50 KB a second, without end).
func TestCallerFasterThanTheRoomIsBounded(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.ChunkRate, cfg.ChunkBurst = 100, 100
	}})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) { cfg.PacketRate, cfg.PacketBurst = 1e6, 1e6 })
	bob := join(t, c.Nodes[0], "bob", "lobby")
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "flood"})
	caller := "sip:flood@127.0.0.1"

	enc := t140.NewEncoder(call.Answer.Format, 9, 1, 0)
	const packets, batch = 700, 50
	highest := 0
	for sent := 0; sent < packets; {
		// A batch at once, then wait until the front has read it, so that
		// the caller outruns the node but not the socket's buffer.
		for range batch {
			p, err := enc.Packet([]byte("x"), uint32(sent*10))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := p.Marshal()
			if err := call.SendRTP(raw); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		nodetest.Eventually(t, settle, func() error {
			if n := front.Packets(); n < int64(sent) {
				return fmt.Errorf("the front read %d packets of %d", n, sent)
			}
			return nil
		})
		for _, b := range front.Backlogs() {
			highest = max(highest, b)
		}
	}
	t.Logf("the bridge held at most %d chunks unacknowledged", highest)
	if highest > sipfront.MaxBacklog {
		t.Fatalf("the bridge held %d chunks of the caller's text unacknowledged, above %d", highest, sipfront.MaxBacklog)
	}
	// Text the caller sends once the queue has room is taken again.
	nodetest.Eventually(t, settle, func() error {
		if b := front.Backlogs(); len(b) != 1 || b[0] >= sipfront.MaxBacklog {
			return fmt.Errorf("backlogs %v", b)
		}
		return nil
	})
	call.Send("after")
	nodetest.Eventually(t, settle, func() error {
		got := bob.text(caller)
		// Each run of text shed is marked once, and text is taken again
		// once the queue has room.
		if !strings.HasSuffix(got, "after") || !strings.Contains(got, t140.Missing) ||
			strings.Contains(got, t140.Missing+t140.Missing) || strings.Count(got, "x") >= packets {
			return fmt.Errorf("bob sees %d x, %d U+FFFD, and ends %q", strings.Count(got, "x"), strings.Count(got, t140.Missing), got[max(0, len(got)-12):])
		}
		return nil
	})
}

// TestTCPConnectionsBounded: the SIP port's TCP connections are bounded
// per source address and in all, a source holding fewer takes the place
// of the oldest of the source holding the most once all are held (before,
// it was refused: 16 addresses held all 256 for good), a connection that
// says nothing is closed after the idle timeout, and the front answers
// over TCP once connections are given back. Before, sipgo held every connection
// accepted for as long as the peer liked: a stranger could use up the
// node's descriptors through the SIP port (the client listener's limits
// did not cover it).
func TestTCPConnectionsBounded(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	reg := prometheus.NewRegistry()
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) { cfg.MaxConns = 20; cfg.Metrics = reg })

	var closed atomic.Int32
	var conns []net.Conn
	open := func(from string, n int) {
		for range n {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			conn, err := d.Dial("tcp", front.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			conns = append(conns, conn)
			go func() {
				if _, err := conn.Read(make([]byte, 1)); err != nil {
					closed.Add(1)
				}
			}()
		}
	}
	wait := func(wantClosed int32, wantHeld int) {
		t.Helper()
		nodetest.Eventually(t, settle, func() error {
			if n, held := closed.Load(), front.TCPConns(); n != wantClosed || held != wantHeld {
				return fmt.Errorf("%d connections closed by the front, %d held; want %d and %d", n, held, wantClosed, wantHeld)
			}
			return nil
		})
	}
	// 40 from one address: 16 held (MaxConnsPerSource), 24 closed.
	open("127.0.0.1", 40)
	wait(24, 16)
	// 10 from another: 4 fit under MaxConns, and each of the other 6
	// takes the place of the first address's oldest, which holds more.
	open("127.0.0.2", 10)
	wait(30, 20)
	// One from a third address takes the place of one of theirs (10
	// each); none is refused for the total.
	open("127.0.0.3", 1)
	wait(31, 20)
	// Each refusal is counted by its limit.
	for reason, want := range map[string]float64{"per_source": 24, "evicted": 7, "total": 0} {
		if got := metricValue(t, reg, "switchboard_sip_tcp_refused_total", reason); got != want {
			t.Errorf("switchboard_sip_tcp_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := metricValue(t, reg, "switchboard_sip_tcp_conns", ""); got != 20 {
		t.Errorf("switchboard_sip_tcp_conns = %v, want 20", got)
	}
	// Given back, the places serve a SIP request over TCP again.
	for _, conn := range conns {
		conn.Close()
	}
	nodetest.Eventually(t, settle, func() error {
		if held := front.TCPConns(); held != 0 {
			return fmt.Errorf("%d connections held after the clients closed them", held)
		}
		return nil
	})
	if line := optionsOverTCP(t, front); !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Errorf("OPTIONS over TCP answered %q", line)
	}

	// A connection that sends nothing is closed after the idle timeout.
	idle := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) { cfg.ConnIdleTimeout = 100 * time.Millisecond })
	conn, err := net.Dial("tcp", idle.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(settle)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("a silent connection: read %v, want EOF (closed by the front)", err)
	}
	nodetest.Eventually(t, settle, func() error {
		if held := idle.TCPConns(); held != 0 {
			return fmt.Errorf("%d connections held after the idle timeout", held)
		}
		return nil
	})
}

// optionsOverTCP sends OPTIONS over a new TCP connection and returns the
// status line of the answer.
func optionsOverTCP(t *testing.T, front *sipfront.Server) string {
	t.Helper()
	conn, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	req := fmt.Sprintf("OPTIONS sip:lobby@%s;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-opt1\r\nMax-Forwards: 70\r\n"+
		"From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:lobby@%s>\r\nCall-ID: opt-tcp-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		front.Addr(), local, front.Addr())
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(settle)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer to OPTIONS over TCP: %v", err)
	}
	return strings.TrimSpace(line)
}

// TestTCPSurvivesRunningOutOfDescriptors: when the process has no
// descriptor left for a connection (accept fails with EMFILE), the SIP
// front goes on accepting once some are free. Before, sipgo stopped
// serving TCP at the first error of Accept, for good: one moment out of
// descriptors ended SIP over TCP until a restart. The descriptor limit
// is the process's, so the test runs in a child process of its own.
func TestTCPSurvivesRunningOutOfDescriptors(t *testing.T) {
	if os.Getenv("SIPFRONT_TEST_EMFILE") != "1" {
		t.Parallel()
		cmd := exec.Command(os.Args[0], "-test.run=^TestTCPSurvivesRunningOutOfDescriptors$", "-test.v")
		cmd.Env = append(os.Environ(), "SIPFRONT_TEST_EMFILE=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the child process: %v\n%s", err, out)
		}
		return
	}
	nodes := func() []directory.Node { return nil }
	front, err := sipfront.Listen("127.0.0.1:0", sipfront.Config{Service: "s", NodeID: "n1", NodeAddr: "127.0.0.1:1", Nodes: nodes,
		MaxConns: 1 << 16, MaxConnsPerSource: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- front.Serve() }()
	defer front.Close()
	if line := optionsOverTCP(t, front); !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("OPTIONS over TCP answered %q", line)
	}

	// Take every descriptor the process may have, give one back, and
	// connect with it: the kernel completes the connection, and the
	// front's accept finds no descriptor for it.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("counting descriptors: %v", err)
	}
	low := lim
	low.Cur = uint64(len(fds) + 50)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var held []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		held = append(held, f)
	}
	if len(held) == 0 {
		t.Fatal("no descriptor to take")
	}
	held[len(held)-1].Close()
	held = held[:len(held)-1]
	conn, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatalf("connecting with the last descriptor: %v", err)
	}
	defer conn.Close()
	nodetest.Eventually(t, settle, func() error {
		if n := front.FailedAccepts(); n == 0 {
			return errors.New("no accept of the front failed yet")
		}
		return nil
	})
	for _, f := range held {
		f.Close()
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		t.Fatalf("the front stopped serving: %v", err)
	default:
	}
	if line := optionsOverTCP(t, front); !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Errorf("OPTIONS over TCP after running out of descriptors answered %q", line)
	}
}

// countingHandler counts the records and bytes logged through it.
type countingHandler struct {
	mu       sync.Mutex
	records  int
	bytes    int
	messages map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	return h.handle(r, 0)
}

func (h *countingHandler) handle(r slog.Record, withBytes int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records++
	h.bytes += len(r.Message) + withBytes
	r.Attrs(func(a slog.Attr) bool {
		h.bytes += attrBytes(a)
		return true
	})
	if h.messages == nil {
		h.messages = map[string]int{}
	}
	h.messages[r.Message]++
	return nil
}

func attrBytes(a slog.Attr) int { return len(a.Key) + len(a.Value.String()) }

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingWith{h: h, bytes: attrsBytes(as)}
}
func (h *countingHandler) WithGroup(string) slog.Handler { return h }

func attrsBytes(as []slog.Attr) int {
	n := 0
	for _, a := range as {
		n += attrBytes(a)
	}
	return n
}

// countingWith counts the attributes a logger's With added in each of its
// records.
type countingWith struct {
	h     *countingHandler
	bytes int
}

func (w *countingWith) Enabled(context.Context, slog.Level) bool { return true }
func (w *countingWith) Handle(_ context.Context, r slog.Record) error {
	return w.h.handle(r, w.bytes)
}
func (w *countingWith) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingWith{h: w.h, bytes: w.bytes + attrsBytes(as)}
}
func (w *countingWith) WithGroup(string) slog.Handler { return w }

func (h *countingHandler) counts() (int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.records, h.bytes
}

// TestJunkDoesNotFloodTheLog: datagrams that are not SIP cost the log a
// line at most every few seconds, cut short, however many come. Before,
// sipgo logged each one at error level with its whole text, to
// slog.Default (past the node's log settings): 200 datagrams of 8 KB wrote
// 200 lines and 1.6 MB. Not parallel: it looks at slog.Default, which
// the tests that run in parallel leave alone until it is done.
func TestJunkDoesNotFloodTheLog(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	logs := &countingHandler{}
	old := slog.Default()
	slog.SetDefault(slog.New(logs))
	defer slog.SetDefault(old)
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) { cfg.Logger = slog.New(logs) })
	conn := dialFrontUDP(t, front)
	before, _ := logs.counts()
	const junk, size = 200, 8 << 10
	for i := range junk {
		if _, err := conn.Write(bytes.Repeat([]byte{byte('A' + i%26)}, size)); err != nil {
			t.Fatal(err)
		}
	}
	// The front reads its socket in order: once OPTIONS is answered on
	// the same socket, the junk before it was read.
	if line := optionsOverUDP(t, conn, front); !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("OPTIONS after junk answered %q", line)
	}
	after, logged := logs.counts()
	t.Logf("%d records, %d bytes logged for %d datagrams of junk and one OPTIONS", after-before, logged, junk)
	if after-before > 20 || logged > 16<<10 {
		t.Errorf("%d datagrams of junk logged %d records, %d bytes: want a few lines, cut short", junk, after-before, logged)
	}

	// What sipgo logs to its package's default logger is thinned too: a
	// peer that resets its connections with requests in flight makes it
	// log "TCP ref went negative" once for each of them.
	before, _ = logs.counts()
	for range 100 {
		sip.DefaultLogger().With("caller", "test").Warn("TCP ref went negative", "ip", "127.0.0.1:5060", "ref", -1)
	}
	if after, _ := logs.counts(); after-before > 1 {
		t.Errorf("100 lines to sipgo's default logger logged %d records, want one at most", after-before)
	}
}

// optionsOverUDP sends OPTIONS on conn and returns the answer's status line.
func optionsOverUDP(t *testing.T, conn net.Conn, front *sipfront.Server) string {
	t.Helper()
	local := conn.LocalAddr().String()
	req := fmt.Sprintf("OPTIONS sip:lobby@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-optu1\r\nMax-Forwards: 70\r\n"+
		"From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:lobby@%s>\r\nCall-ID: opt-udp-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		front.Addr(), local, front.Addr())
	return askOverUDP(t, conn, req)
}

// dialFrontUDP is a UDP socket connected to the front's SIP port, closed
// when the test ends.
func dialFrontUDP(t *testing.T, front *sipfront.Server) net.Conn {
	t.Helper()
	conn, err := net.Dial("udp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// askOverUDP sends the request req on conn and returns the status line of
// the first datagram that comes back.
func askOverUDP(t *testing.T, conn net.Conn, req string) string {
	t.Helper()
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(settle)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		method, _, _ := strings.Cut(req, " ")
		t.Fatalf("reading the answer to %s: %v", method, err)
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}

// TestVanishedCallerIsDropped: the front pings each caller in the dialog;
// a caller that answers keeps its call, and one that vanished without a
// BYE (a phone that lost power) is dropped once a ping goes unanswered:
// its member leaves the room and its place under the limits is free for
// the next call. Before, such a call was held until the node stopped,
// so callers that went away one after another (or an attacker from a few
// addresses) took every place of --sip-max-calls for good.
func TestVanishedCallerIsDropped(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) {
		cfg.KeepAlive, cfg.KeepAliveTimeout = 100*time.Millisecond, 5*time.Second
		cfg.MaxCallsPerSource = 1
	})
	bob := join(t, c.Nodes[0], "bob", "lobby")
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "gone"})
	nodetest.Eventually(t, settle, func() error {
		if n := front.Pongs(); n < 3 {
			return fmt.Errorf("the caller answered %d pings", n)
		}
		return nil
	})
	if n := front.Calls(); n != 1 {
		t.Fatalf("%d calls held while the caller answers, want 1", n)
	}

	call.Close() // no BYE: the phone is gone
	nodetest.Eventually(t, settle, func() error {
		if n := front.Calls(); n != 0 {
			return fmt.Errorf("%d calls held after the caller vanished", n)
		}
		if !bob.hasLeft("sip:gone@127.0.0.1") {
			return errors.New("bob has not seen the vanished caller leave")
		}
		return nil
	})
	again := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "back"})
	again.Send("back")
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:back@127.0.0.1"); got != "back" {
			return fmt.Errorf("bob sees %q", got)
		}
		return nil
	})
}

// TestChattyRoomCostsTheCallerBoundedMemory: a member typing far faster
// than a call's stream carries (the front sends at most 1,000 bytes an
// interval) costs each call at most MaxSendBacklog of text held; the
// rest is dropped and marked U+FFFD, and later text reaches the caller.
// Before, the text held for the caller grew for as long as the member
// typed (400 KB here, and 5 KB a second per call at the node's default
// rate, without end).
func TestChattyRoomCostsTheCallerBoundedMemory(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.ByteRate, cfg.ByteBurst = 1<<20, 1<<20
		cfg.ChunkRate, cfg.ChunkBurst = 1000, 1000
	}})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "slow"})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	// Each chunk stored before the next is sent: the text reaches the
	// front over many of its intervals, as a member typing steadily
	// faster than the stream would send it.
	chunk := strings.Repeat("b", 4000)
	for range 100 {
		if _, err := bob.sess.SendTextWait(ctx, "lobby", chunk); err != nil {
			t.Fatal(err)
		}
	}
	// Once the front has taken all of it and sent what it held, later
	// text reaches the caller.
	if _, err := bob.sess.SendTextWait(ctx, "lobby", "\n"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if unsent, relayed := front.Unsent(); unsent != 0 || relayed < 100*4000+1 {
			return fmt.Errorf("the front took %d bytes of the room's text, %d not yet sent to the caller", relayed, unsent)
		}
		return nil
	})
	if _, err := bob.sess.SendText("lobby", "end\n"); err != nil {
		t.Fatal(err)
	}
	got := collect(t, call, "end")
	t.Logf("the caller received %d bytes of 400,000; at most %d held for it", len(got), front.Held())
	if held := front.Held(); held > sipfront.MaxSendBacklog+16 {
		t.Errorf("the front held %d bytes of text for the caller, above %d", held, sipfront.MaxSendBacklog)
	}
	if !strings.Contains(got, t140.Missing) {
		t.Errorf("text dropped for the caller was not marked")
	}
}

// TestPacketsToTheCallerFitTheMTU: a long text (a paste, or a waiting
// sender's queue shown at once) reaches the caller whole, in packets
// that fit a path's MTU with their redundancy. Before, a packet carried
// up to 1,000 bytes of text three times (its own and two generations of
// redundancy): 3 KB datagrams, sent in IP fragments and cut short by
// the 1,500- to 2,048-byte RTP buffers of phones' stacks.
func TestPacketsToTheCallerFitTheMTU(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "phone"})
	long := strings.Repeat("é0123456789", 300) // 3,900 bytes, a character cut at every boundary
	if _, err := bob.sess.SendText("lobby", long+"\n"); err != nil {
		t.Fatal(err)
	}
	got := collect(t, call, "\u2028")
	if want := "[bob]: " + long + "\u2028"; !strings.Contains(got, want) {
		t.Errorf("the caller received %d bytes, not the %d sent whole", len(got), len(want))
	}
	if n := call.LargestRTP(); n > 1200 {
		t.Errorf("the largest RTP packet to the caller was %d bytes, above 1200", n)
	}
}

// TestShutdownStoresTheCallersText: a front that stops gracefully ends
// its calls only once the node has stored the text their callers typed.
// Before, Shutdown closed the bridged session at once, and the text it
// still held to resend (here held back by the node's rate) was lost:
// RTP has no acknowledgements, so the caller could not send it again.
func TestShutdownStoresTheCallersText(t *testing.T) {
	t.Parallel()
	typeThenEnd(t, func(ctx context.Context, front *sipfront.Server, _ *sipcall.Call) error { return front.Shutdown(ctx) })
}

// TestByeStoresTheCallersText: a caller that hangs up right after typing
// has its text stored before its member leaves the room. Before, the
// front closed the bridged session as the BYE came, and the text it
// still held to resend (here held back by the node's rate) was lost: the
// other member saw "abc" of "abcdefghij".
func TestByeStoresTheCallersText(t *testing.T) {
	t.Parallel()
	bob := typeThenEnd(t, func(ctx context.Context, _ *sipfront.Server, call *sipcall.Call) error { return call.Hangup(ctx) })
	// The member leaves once its text is stored.
	nodetest.Eventually(t, settle, func() error {
		if !bob.hasLeft("sip:typist@127.0.0.1") {
			return errors.New("the caller's member is still in the room")
		}
		return nil
	})
}

// typeThenEnd has a caller type ten characters into a room of a node
// that takes four chunks a second, so that the front still holds some
// of them, then ends the call with end, and checks that bob, in the
// room, sees all of them. It returns bob.
func typeThenEnd(t *testing.T, end func(context.Context, *sipfront.Server, *sipcall.Call) error) *member {
	t.Helper()
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.ChunkRate, cfg.ChunkBurst = 4, 4
	}})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "typist"})
	enc := t140.NewEncoder(call.Answer.Format, 5, 1, 0)
	const typed = "abcdefghij"
	for i, r := range typed {
		p, err := enc.Packet([]byte(string(r)), uint32(i*10))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := p.Marshal()
		if err := call.SendRTP(raw); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Eventually(t, settle, func() error {
		if n, b := front.Packets(), front.Backlogs(); n < int64(len(typed)) || len(b) != 1 || b[0] == 0 {
			return fmt.Errorf("the front read %d packets, holds %v chunks unacknowledged", n, b)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := end(ctx, front, call); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:typist@127.0.0.1"); got != typed {
			return fmt.Errorf("bob sees %q of %q", got, typed)
		}
		return nil
	})
	return bob
}

// metricValue reads a counter or gauge from reg: the series whose reason
// label is reason, or the unlabelled one when reason is "".
func metricValue(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			label := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					label = l.GetValue()
				}
			}
			if label != reason {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s{reason=%q}", name, reason)
	return 0
}

// TestEmptyChunksAndALeaveDoNotStopTheFront: a member sends two empty
// chunks (a room takes them) and leaves, while another member is mid-line
// on the caller's screen. Before, each empty chunk put its sender in the
// mixer's waiting line again; the leave took out one entry, and the next
// look at the other crashed the process. The call goes on.
func TestEmptyChunksAndALeaveDoNotStopTheFront(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	mallory := join(t, c.Nodes[0], "mallory", "lobby")
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "alice"})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if _, err := bob.sess.SendTextWait(ctx, "lobby", "typing"); err != nil {
		t.Fatal(err)
	}
	collect(t, call, "[bob]: typing") // bob is shown, mid-line
	for range 2 {
		if _, err := mallory.sess.SendTextWait(ctx, "lobby", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := mallory.sess.Leave("lobby"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if !bob.hasLeft("mallory") {
			return errors.New("bob has not seen mallory leave")
		}
		return nil
	})
	// Still mid-line: the mixer looks at the waiting line again.
	if _, err := bob.sess.SendTextWait(ctx, "lobby", " on"); err != nil {
		t.Fatal(err)
	}
	collect(t, call, "on")
}

// TestInviteWithoutCallID: one INVITE with no Call-ID, from anyone who
// can reach the front, gets 400. Before, the front read the missing
// header and the process died.
func TestInviteWithoutCallID(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	front := startFront(t, c.Nodes[0], nil)
	conn := dialFrontUDP(t, front)
	from := conn.LocalAddr().String()
	msg := "INVITE sip:lobby@" + front.Addr().String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + from + ";branch=z9hG4bK-nocallid\r\n" +
		"From: <sip:x@127.0.0.1>;tag=abc\r\n" +
		"To: <sip:lobby@127.0.0.1>\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Max-Forwards: 70\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(settle))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer to an INVITE without Call-ID: %v", err)
	}
	if got := string(buf[:n]); !strings.HasPrefix(got, "SIP/2.0 400") {
		t.Errorf("the front answered %q, want 400", got)
	}
}

// TestRefusedInvitesDoNotFloodTheLog: INVITEs that parse but are refused
// (a room name that is not one, a body that is no SDP offer) cost the log
// a line of each kind every few seconds, with the caller's strings cut
// short, however many come. Before, each wrote a line at Info with the
// whole Request-URI user and Call-ID.
func TestRefusedInvitesDoNotFloodTheLog(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	logs := &countingHandler{}
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) { cfg.Logger = slog.New(logs) })
	conn := dialFrontUDP(t, front)
	local := conn.LocalAddr().String()
	before, _ := logs.counts()
	const invites = 200
	// Short enough that the 404 fits a UDP answer (RFC 3261 sends a
	// larger one over TCP, which this caller does not listen on).
	room := "bad!" + strings.Repeat("x", 300)
	// In batches, each answered before the next goes, so that no socket
	// buffer overflows on a slow machine; each refusal is logged before
	// it is answered.
	const batch = 20
	buf := make([]byte, 64<<10)
	for sent := 0; sent < invites; sent += batch {
		for i := sent; i < sent+batch; i++ {
			req := fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-flood%d\r\nMax-Forwards: 70\r\n"+
				"From: <sip:flood@127.0.0.1>;tag=f%d\r\nTo: <sip:lobby@%s>\r\nCall-ID: flood-%d-%s\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
				room, front.Addr(), local, i, i, front.Addr(), i, strings.Repeat("c", 300))
			if _, err := conn.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
		}
		for refused := 0; refused < batch; {
			if err := conn.SetReadDeadline(time.Now().Add(settle)); err != nil {
				t.Fatal(err)
			}
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("waiting for the answers after %d refusals: %v", sent+refused, err)
			}
			if strings.HasPrefix(string(buf[:n]), "SIP/2.0 404") {
				refused++
			}
		}
	}
	after, logged := logs.counts()
	logs.mu.Lock()
	t.Logf("%d records, %d bytes logged for %d refused INVITEs: %v", after-before, logged, invites, logs.messages)
	logs.mu.Unlock()
	if after-before > 20 || logged > 16<<10 {
		t.Errorf("%d refused INVITEs logged %d records, %d bytes: want a few lines, cut short", invites, after-before, logged)
	}
}

// TestOversizedRTPIsDropped: a datagram longer than the front reads
// (8 KiB) is dropped whole, not cut to 8 KiB and taken (a character cut
// in two, and text the caller's stack never meant as one packet).
func TestOversizedRTPIsDropped(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	// Plain T.140, so that the packet is text and nothing else.
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "big", Format: t140.Format{T140: textsdp.DefaultT140PT}})
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: call.Answer.Format.T140, SequenceNumber: 1, SSRC: 7}, Payload: bytes.Repeat([]byte("Z"), 9000)}
	raw, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := call.SendRTP(raw); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if n := front.Packets(); n < 1 {
			return fmt.Errorf("the front read %d packets", n)
		}
		return nil
	})
	call.Send("after")
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:big@127.0.0.1"); !strings.HasSuffix(got, "after") {
			return fmt.Errorf("bob sees %q", wire.Clip(got, 64))
		}
		return nil
	})
	if got := bob.text("sip:big@127.0.0.1"); strings.Contains(got, "Z") {
		t.Errorf("bob sees %d Z of an oversized packet", strings.Count(got, "Z"))
	}
}

// TestUnmatchedCancelIsAnswered481: a CANCEL of no INVITE the front holds
// (one that came after the call was answered, or a stray) gets 481, as
// RFC 3261 section 9.2 says. Before, it got nothing, and its sender sent
// it again for 32 s.
func TestUnmatchedCancelIsAnswered481(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	front := startFront(t, c.Nodes[0], nil)
	conn := dialFrontUDP(t, front)
	req := fmt.Sprintf("CANCEL sip:lobby@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-stray1\r\nMax-Forwards: 70\r\n"+
		"From: <sip:stray@127.0.0.1>;tag=s1\r\nTo: <sip:lobby@%s>\r\nCall-ID: stray-cancel-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
		front.Addr(), conn.LocalAddr(), front.Addr())
	if line := askOverUDP(t, conn, req); !strings.HasPrefix(line, "SIP/2.0 481") {
		t.Errorf("a stray CANCEL was answered %q, want 481", line)
	}
}

// blockingDialer holds every dial until its context ends, and hands that
// context to the test first: an attach that takes as long as the caller
// lets it.
type blockingDialer chan context.Context

func (d blockingDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	select {
	case d <- ctx:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestCancelStopsTheCallSetup: the caller hangs up (CANCEL) while the
// front is still attaching its member. The INVITE gets 487 and the
// CANCEL 200, and the attach stops then, not when the setup's own
// timeout (here far off) ends it: the member must not go on to join the
// room of a call that is over.
func TestCancelStopsTheCallSetup(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	dials := make(blockingDialer, 1)
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) {
		cfg.SetupTimeout = time.Hour
		// Nothing but the CANCEL ends a dial: no attempt of its own
		// times out either.
		cfg.ClientOptions = append(cfg.ClientOptions, client.WithDialer(dials), client.WithAttemptTimeout(time.Hour))
	})
	conn := dialFrontUDP(t, front)
	offer, err := textsdp.Offer(netip.MustParseAddrPort("127.0.0.1:5004"), t140.Format{T140: 98, RED: 100}, 2, textsdp.SendRecv, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("sip:lobby@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-cancel1\r\nMax-Forwards: 70\r\n"+
		"From: <sip:carol@127.0.0.1>;tag=c1\r\nTo: <sip:lobby@%s>\r\nCall-ID: cancel-setup-1\r\n",
		front.Addr(), conn.LocalAddr(), front.Addr())
	invite := fmt.Sprintf("INVITE %sCSeq: 1 INVITE\r\nContact: <sip:carol@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		head, conn.LocalAddr(), len(offer), offer)
	if _, err := conn.Write([]byte(invite)); err != nil {
		t.Fatal(err)
	}
	var setup context.Context
	select {
	case setup = <-dials:
	case <-time.After(settle):
		t.Fatal("the front never dialled its node for the call")
	}
	if _, err := conn.Write([]byte("CANCEL " + head + "CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	var cancelled, terminated bool
	buf := make([]byte, 4096)
	for !cancelled || !terminated {
		if err := conn.SetReadDeadline(time.Now().Add(settle)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for the answers to the CANCEL (200: %v) and the INVITE (487: %v): %v", cancelled, terminated, err)
		}
		msg := string(buf[:n])
		switch {
		case strings.HasPrefix(msg, "SIP/2.0 200") && strings.Contains(msg, "CSeq: 1 CANCEL"):
			cancelled = true
		case strings.HasPrefix(msg, "SIP/2.0 487") && strings.Contains(msg, "CSeq: 1 INVITE"):
			terminated = true
		case strings.HasPrefix(msg, "SIP/2.0 100"):
		default:
			line, _, _ := strings.Cut(msg, "\r\n")
			t.Errorf("the front answered %q", line)
		}
	}
	select {
	case <-setup.Done():
	case <-time.After(settle):
		t.Error("the attach went on after the caller cancelled the call")
	}
}
