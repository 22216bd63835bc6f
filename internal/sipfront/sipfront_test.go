package sipfront_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipcall"
	"github.com/switchboard/switchboard/internal/sipfront"
	"github.com/switchboard/switchboard/internal/t140"
	"github.com/switchboard/switchboard/internal/textsdp"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/rtt"
)

// settle bounds waits for what must happen: generous for loaded CI.
const settle = 30 * time.Second

// startFront runs a SIP front for n, stopped at cleanup.
func startFront(t *testing.T, n *node.Node, edit func(*sipfront.Config)) *sipfront.Server {
	t.Helper()
	cfg := sipfront.Config{
		Service:  n.Service(),
		NodeID:   n.ID(),
		NodeAddr: n.Addr(),
		Nodes:    n.Nodes,
		Interval: 50 * time.Millisecond,
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := sipfront.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutting the front down: %v", err)
		}
		if err := <-served; !errors.Is(err, sipfront.ErrClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return s
}

// pinned picks the node with the given ID.
func pinned(id string) pick.Policy {
	return pick.PolicyFunc(func(nodes []directory.Node, _ pick.Request) (pick.Result, error) {
		for _, n := range nodes {
			if n.ID == id {
				return pick.Result{Node: n, Reason: "pinned"}, nil
			}
		}
		return pick.Result{}, pick.ErrNoNode
	})
}

// member is a TCP member of a room on a given node, whose view of the
// room is kept with the rtt model.
type member struct {
	sess *client.Session
	mu   sync.Mutex
	room *rtt.Room
	left []string
}

func join(t *testing.T, n *node.Node, user, room string) *member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	s, err := client.Dial(ctx, n.Addr(), client.WithUser(user), client.WithPolicy(pinned(n.ID())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m := &member{sess: s, room: rtt.NewRoom(0)}
	go func() {
		for e := range s.Events() {
			re, ok := e.Room()
			if !ok {
				continue
			}
			m.mu.Lock()
			switch re.Kind {
			case client.TextEvent:
				m.room.Apply(re.From, re.Seq, re.Text)
			case client.PresenceEvent:
				if !re.Joined {
					m.left = append(m.left, re.User)
				}
			}
			m.mu.Unlock()
		}
	}()
	if _, err := s.JoinWait(ctx, room); err != nil {
		t.Fatal(err)
	}
	return m
}

// text is what the member's view shows of from: completed lines joined
// with "\n", then the live line.
func (m *member) text(from string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.room.State()
	var parts []string
	for _, l := range st.Lines {
		if l.From == from {
			parts = append(parts, l.Text+"\n")
		}
	}
	return strings.Join(parts, "") + st.Live[from]
}

func (m *member) hasLeft(user string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.left {
		if u == user {
			return true
		}
	}
	return false
}

func sipTarget(s *sipfront.Server, room string) string {
	return fmt.Sprintf("sip:%s@%s", room, s.Addr())
}

func dial(t *testing.T, target string, cfg sipcall.Config) *sipcall.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	c, err := sipcall.Dial(ctx, target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Hang up while the front still runs (cleanups run last first), so
		// that it need not wait for a BYE nobody answers.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Hangup(ctx)
	})
	return c
}

// collect gathers what a call receives until want is in it.
func collect(t *testing.T, c *sipcall.Call, want string) string {
	t.Helper()
	var got strings.Builder
	deadline := time.After(settle)
	for !strings.Contains(got.String(), want) {
		select {
		case s := <-c.Text():
			got.WriteString(s)
		case <-deadline:
			t.Fatalf("the caller received %q, not %q", got.String(), want)
		}
	}
	return got.String()
}

// TestCallerTalksWithMemberOnAnotherNode: a SIP caller on n1's front and a
// TCP member on n2 share a room both ways, through loss of the caller's
// packets that redundancy mends, and the caller's hangup leaves the room.
func TestCallerTalksWithMemberOnAnotherNode(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[1], "bob", "lobby")

	// Lose packets 1 and 2 (two in a row, within the two generations of
	// redundancy) and 6.
	lost := map[int]bool{1: true, 2: true, 6: true}
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{
		User: "alice", Interval: 20 * time.Millisecond,
		Drop: func(i int) bool { return lost[i] },
	})
	if call.Answer.Format.RED == 0 {
		t.Fatalf("the answer has no redundancy: %+v", call.Answer)
	}
	caller := "sip:alice@127.0.0.1"
	for _, ch := range []string{"h", "e", "l", "l", "o", "\r\n", "w", "o", "r", "l", "d"} {
		call.Send(ch)
		time.Sleep(30 * time.Millisecond) // one chunk per packet, as typed
	}
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text(caller); got != "hello\nworld" {
			return fmt.Errorf("bob sees %q from the caller", got)
		}
		return nil
	})

	if _, err := bob.sess.SendText("lobby", "hi alice\n"); err != nil {
		t.Fatal(err)
	}
	got := collect(t, call, "hi alice")
	if want := "[bob]: hi alice"; !strings.Contains(got, want) {
		t.Errorf("the caller received %q, want it to hold %q", got, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if n := front.Calls(); n != 0 {
			return fmt.Errorf("%d calls still held", n)
		}
		if !bob.hasLeft(caller) {
			return errors.New("bob has not seen the caller leave")
		}
		return nil
	})
}

// TestRTPFromStrangersIgnored: a packet from another address than the one
// the caller's SDP named never reaches the room.
func TestRTPFromStrangersIgnored(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "alice"})

	stranger, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	enc := t140.NewEncoder(call.Answer.Format, 1, 1, 0)
	for i := range 3 {
		p, err := enc.Packet([]byte("evil"), uint32(i*300))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := p.Marshal()
		if _, err := stranger.WriteToUDPAddrPort(raw, call.Answer.Addr); err != nil {
			t.Fatal(err)
		}
	}
	// The stranger's packets reached the socket before the caller's text:
	// once that arrives, they were read and dropped.
	call.Send("ok")
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:alice@127.0.0.1"); got != "ok" {
			return fmt.Errorf("bob sees %q", got)
		}
		return nil
	})
}

// rawInvite sends an INVITE with the given body and content type and
// returns the final response.
func rawInvite(t *testing.T, target string, contentType string, body []byte) *sip.Response {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.INVITE, uri)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "x", Host: "127.0.0.1", Port: 5999}})
	if contentType != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	res, err := cl.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBadInvitesGetSIPErrors(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	audioOnly := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	tests := []struct {
		name, room, ctype, body string
		code                    int
	}{
		{"not a room name", "a!b", "application/sdp", audioOnly, 404},
		{"no offer", "lobby", "", "", 415},
		{"not SDP", "lobby", "application/sdp", "hello there", 400},
		{"no text stream", "lobby", "application/sdp", audioOnly, 488},
		{"text refused", "lobby", "application/sdp", strings.Replace(audioOnly, "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000", "m=text 0 RTP/AVP 98\r\na=rtpmap:98 t140/1000", 1), 488},
		{"a call begun on hold", "lobby", "application/sdp", strings.Replace(strings.Replace(audioOnly, "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000", "m=text 4000 RTP/AVP 98\r\na=rtpmap:98 t140/1000", 1), "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1), 488},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := rawInvite(t, sipTarget(front, tt.room), tt.ctype, []byte(tt.body))
			if res.StatusCode != tt.code {
				t.Errorf("status %d %s, want %d", res.StatusCode, res.Reason, tt.code)
			}
		})
	}
	if n := front.Calls(); n != 0 {
		t.Errorf("%d calls held after refusals", n)
	}
}

func TestCallLimits(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	reg := prometheus.NewRegistry()
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) {
		cfg.MaxCallsPerSource = 1
		cfg.MaxCalls = 2
		cfg.Metrics = reg
		cfg.AckGrace = time.Hour // no answered call gives its place up here
	})
	// A call counts as being set up until the front has taken its ACK,
	// which the caller sends as its dial returns: the test waits for
	// that, or the next call met the limit of calls being set up (one,
	// a quarter of two) instead of the one it is about.
	confirmed := func() {
		t.Helper()
		nodetest.Eventually(t, settle, func() error {
			if n := front.Unconfirmed(); n != 0 {
				return fmt.Errorf("%d calls not confirmed", n)
			}
			return nil
		})
	}
	dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "a"})
	confirmed()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	_, err := sipcall.Dial(ctx, sipTarget(front, "lobby"), sipcall.Config{User: "b"})
	var se *sipcall.StatusError
	if !errors.As(err, &se) || se.Code != 486 {
		t.Fatalf("a second call from one address: %v, want 486", err)
	}
	// From another source address (127.0.0.2 is loopback too on Linux).
	dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "c", Host: "127.0.0.2"})
	confirmed()
	_, err = sipcall.Dial(ctx, sipTarget(front, "lobby"), sipcall.Config{User: "d", Host: "127.0.0.3"})
	if !errors.As(err, &se) || se.Code != 503 {
		t.Fatalf("a call above the node's limit: %v, want 503", err)
	}
	for reason, want := range map[string]float64{"per_source": 1, "total": 1} {
		if got := metricValue(t, reg, "switchboard_sip_calls_refused_total", reason); got != want {
			t.Errorf("switchboard_sip_calls_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := metricValue(t, reg, "switchboard_sip_calls", ""); got != 2 {
		t.Errorf("switchboard_sip_calls = %v, want 2", got)
	}
	// A second front cannot register its metrics in the same registry.
	if _, err := sipfront.Listen("127.0.0.1:0", sipfront.Config{Service: "s", NodeID: "n1", NodeAddr: "127.0.0.1:1",
		Nodes: c.Nodes[0].Nodes, Metrics: reg}); err == nil {
		t.Error("a second front registered its metrics in the first one's registry")
	}
}

// TestRedirectToPickedNode: the policy picks n2, so n1's front answers
// 302 to n2's front, which takes the call; the member is on n2.
func TestRedirectToPickedNode(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(settle)
	var f2 *sipfront.Server
	f2 = startFront(t, c.Nodes[1], func(cfg *sipfront.Config) { cfg.Redirect = true; cfg.Policy = pinned("n2") })
	f1 := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) {
		cfg.Redirect = true
		cfg.Policy = pinned("n2")
		cfg.SIPAddrOf = func(n directory.Node) (string, bool) {
			if n.ID == "n2" {
				return f2.Addr().String(), true
			}
			return "", false
		}
	})
	bob := join(t, c.Nodes[0], "bob", "lobby")
	call := dial(t, sipTarget(f1, "lobby"), sipcall.Config{User: "alice"})
	if f1.Calls() != 0 || f2.Calls() != 1 {
		t.Fatalf("calls: n1 %d, n2 %d; want the call on n2", f1.Calls(), f2.Calls())
	}
	call.Send("via n2")
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:alice@127.0.0.1"); got != "via n2" {
			return fmt.Errorf("bob sees %q", got)
		}
		return nil
	})
}

// TestShutdownEndsCallsWithReason: a front that stops sends BYE with a
// Reason saying so.
func TestShutdownEndsCallsWithReason(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "alice"})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := front.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Ended():
	case <-time.After(settle):
		t.Fatal("no BYE from the front that stopped")
	}
	if r := call.Reason(); !strings.Contains(r, "shutting down") {
		t.Errorf("Reason %q does not say the node is shutting down", r)
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestGarbageDoesNotStopTheFront: datagrams that are not SIP are dropped,
// and the front answers the next request.
func TestGarbageDoesNotStopTheFront(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	front := startFront(t, c.Nodes[0], nil)
	conn := dialFrontUDP(t, front)
	for _, junk := range []string{"\x00\x01\x02", "INVITE\r\n\r\n", "SIP/2.0 200 OK\r\n\r\n", strings.Repeat("A", 1400)} {
		if _, err := conn.Write([]byte(junk)); err != nil {
			t.Fatal(err)
		}
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var uri sip.Uri
	if err := sip.ParseUri(sipTarget(front, "lobby"), &uri); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	res, err := cl.Do(ctx, sip.NewRequest(sip.OPTIONS, uri))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.Contains(res.GetHeader("Allow").Value(), "INVITE") {
		t.Errorf("OPTIONS after garbage: %d %s, Allow %v", res.StatusCode, res.Reason, res.GetHeader("Allow"))
	}
}

// TestKeepAliveLearnsTheCallIsGone: a caller pinging in the dialog keeps
// its call while the front answers; when the front stops without a BYE
// (as a node killed), the caller ends the call saying the node stopped
// answering, or, when a front is back on the same address and knows no
// such call, saying the call is gone (481). The member leaves the room.
func TestKeepAliveLearnsTheCallIsGone(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	for _, tt := range []struct {
		name    string
		restart bool
		want    error
	}{
		{"nothing answers", false, sipcall.ErrNoAnswer},
		{"a front restarted", true, sipcall.ErrCallGone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sipfront.Config{Service: c.Nodes[0].Service(), NodeID: c.Nodes[0].ID(), NodeAddr: c.Nodes[0].Addr(), Nodes: c.Nodes[0].Nodes}
			front, err := sipfront.Listen("127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = front.Serve() }()
			user := "ka-" + strings.ReplaceAll(tt.name, " ", "-")
			bob := join(t, c.Nodes[0], "bob", "lobby")
			call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: user, KeepAlive: 50 * time.Millisecond, KeepAliveTimeout: 2 * time.Second})
			nodetest.Eventually(t, settle, func() error {
				if n := call.Pongs(); n < 3 {
					return fmt.Errorf("%d pings answered", n)
				}
				return nil
			})
			select {
			case <-call.Ended():
				t.Fatalf("the call ended while the front answered: %s", call.Reason())
			default:
			}

			if err := front.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.restart {
				again, err := sipfront.Listen(front.Addr().String(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				go func() { _ = again.Serve() }()
				t.Cleanup(func() { _ = again.Close() })
			}
			select {
			case <-call.Ended():
			case <-time.After(settle):
				t.Fatal("the call did not end after its front closed")
			}
			t.Logf("the call ended: %s", call.Reason())
			if !errors.Is(call.Err(), tt.want) {
				t.Errorf("the call ended with %v (%q), want %v", call.Err(), call.Reason(), tt.want)
			}
			caller := "sip:" + user + "@127.0.0.1"
			nodetest.Eventually(t, settle, func() error {
				if !bob.hasLeft(caller) {
					return errors.New("bob has not seen the caller leave")
				}
				return nil
			})
		})
	}
}

// TestReInviteRefreshesTheSession: a re-INVITE with the same offer, as a
// phone refreshing its session (RFC 4028) sends, gets 200 and the call
// goes on; once the front that held the call is gone and another listens
// on its address, the refresh gets 481.
func TestReInviteRefreshesTheSession(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	cfg := sipfront.Config{Service: c.Nodes[0].Service(), NodeID: c.Nodes[0].ID(), NodeAddr: c.Nodes[0].Addr(), Nodes: c.Nodes[0].Nodes}
	front, err := sipfront.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = front.Serve() }()
	bob := join(t, c.Nodes[0], "bob", "lobby")
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "alice"})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := call.Refresh(ctx); err != nil {
		t.Fatalf("refreshing the session: %v", err)
	}
	call.Send("still here")
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:alice@127.0.0.1"); got != "still here" {
			return fmt.Errorf("bob sees %q", got)
		}
		return nil
	})

	if err := front.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := sipfront.Listen(front.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = again.Serve() }()
	defer again.Close()
	var se *sipcall.StatusError
	if err := call.Refresh(ctx); !errors.As(err, &se) || se.Code != 481 {
		t.Errorf("refreshing a call the front does not hold: %v, want 481", err)
	}
}

// A front on every address answers a caller who dialled a name
// (sip:lobby@chat.example) with this host's address on the route back to
// the caller, and one who dialled an address with that address. Before,
// the name gave 0.0.0.0 in the answer, where no phone sends its text.
func TestAnswerAddrOnEveryAddress(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	n := c.Nodes[0]
	s, err := sipfront.Listen("0.0.0.0:0", sipfront.Config{Service: n.Service(), NodeID: n.ID(), NodeAddr: n.Addr(), Nodes: n.Nodes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, tc := range []struct {
		name, host, source string
		want               netip.Addr
	}{
		{"a name, from loopback", "chat.example", "127.0.0.1:5070", netip.MustParseAddr("127.0.0.1")},
		{"an address", "127.0.0.9", "127.0.0.1:5070", netip.MustParseAddr("127.0.0.9")},
	} {
		req := sip.NewRequest(sip.INVITE, sip.Uri{User: "lobby", Host: tc.host})
		req.SetSource(tc.source)
		if got := s.AnswerAddr(req); got != tc.want {
			t.Errorf("%s: answer address %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Callers who withhold their name (RFC 3323) are members of their own,
// one per call: before, every such caller was sip:anonymous@..., one
// member for the room, and each bridge passed over the others' text as
// its own.
func TestAnonymousCallersAreDistinct(t *testing.T) {
	invite := func(from, callID string) *sip.Request {
		req := sip.NewRequest(sip.INVITE, sip.Uri{User: "lobby", Host: "chat.example"})
		if from != "" {
			var u sip.Uri
			if err := sip.ParseUri(from, &u); err != nil {
				t.Fatal(err)
			}
			req.AppendHeader(&sip.FromHeader{Address: u})
		}
		req.AppendHeader(sip.NewHeader("Call-ID", callID))
		return req
	}
	one := sipfront.CallerName(invite("sip:anonymous@anonymous.invalid", "c1"))
	two := sipfront.CallerName(invite("sip:Anonymous@anonymous.invalid", "c2"))
	none := sipfront.CallerName(invite("", "c3"))
	if one == two || one == none || two == none || !strings.HasPrefix(one, "sip:anonymous-") {
		t.Errorf("anonymous callers named %q, %q and %q: want three names, each sip:anonymous-TAG", one, two, none)
	}
	if again := sipfront.CallerName(invite("sip:anonymous@anonymous.invalid", "c1")); again != one {
		t.Errorf("the same call named %q, then %q", one, again)
	}
	if got := sipfront.CallerName(invite("sip:alice@example.org", "c4")); got != "sip:alice@example.org" {
		t.Errorf("a named caller is %q, want sip:alice@example.org", got)
	}
}

// TestHoldKeepsTheRoomsTextForTheCaller: a caller puts the call on hold
// with a re-INVITE offering sendonly (RFC 3264, section 8.4). The front
// answers recvonly, sends the caller nothing while it holds, keeps what
// the room says meanwhile, still takes the caller's text, and sends what
// it kept once the caller resumes (sendrecv again). Before, the front
// answered a hold with its first answer (sendrecv) and sent on.
func TestHoldKeepsTheRoomsTextForTheCaller(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "alice"})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	held, err := call.Hold(ctx, textsdp.SendOnly)
	if err != nil {
		t.Fatalf("putting the call on hold: %v", err)
	}
	if held.Direction != textsdp.RecvOnly {
		t.Errorf("a hold (sendonly) answered %v, want recvonly", held.Direction)
	}
	const away = "while you were away"
	if _, err := bob.sess.SendText("lobby", away); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if unsent, relayed := front.Unsent(); relayed < int64(len(away)) || unsent < int64(len(away)) {
			return fmt.Errorf("the front took %d bytes of the room's text and holds %d unsent; want %d held", relayed, unsent, len(away))
		}
		return nil
	})
	select {
	case s := <-call.Text():
		t.Errorf("the caller received %q while it held the call", s)
	default:
	}
	call.Send("back soon")
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:alice@127.0.0.1"); got != "back soon" {
			return fmt.Errorf("bob sees %q from the caller on hold", got)
		}
		return nil
	})
	resumed, err := call.Hold(ctx, textsdp.SendRecv)
	if err != nil {
		t.Fatalf("resuming the call: %v", err)
	}
	if resumed.Direction != textsdp.SendRecv {
		t.Errorf("a resume (sendrecv) answered %v", resumed.Direction)
	}
	collect(t, call, away)

	// Inactive: what the caller sends meanwhile is not taken, nor brought
	// back by the redundancy of its packets once it resumes.
	if held, err := call.Hold(ctx, textsdp.Inactive); err != nil || held.Direction != textsdp.Inactive {
		t.Fatalf("an inactive hold answered %v, %v; want inactive", held.Direction, err)
	}
	before := front.Packets()
	call.Send("unsaid")
	nodetest.Eventually(t, settle, func() error {
		if got := front.Packets(); got == before {
			return fmt.Errorf("the front read no packet of the inactive caller (%d)", got)
		}
		return nil
	})
	if _, err := call.Hold(ctx, textsdp.SendRecv); err != nil {
		t.Fatalf("resuming the call: %v", err)
	}
	call.Send(" again")
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:alice@127.0.0.1"); got != "back soon again" {
			return fmt.Errorf("bob sees %q from the caller, want %q", got, "back soon again")
		}
		return nil
	})

	// The hold of RFC 2543: the address 0.0.0.0, answered as a caller
	// that does not receive.
	held, err = call.HoldByAddress(ctx, textsdp.SendRecv)
	if err != nil {
		t.Fatalf("putting the call on hold with the address 0.0.0.0: %v", err)
	}
	if held.Direction != textsdp.RecvOnly {
		t.Errorf("a hold with the address 0.0.0.0 answered %v, want recvonly", held.Direction)
	}
	const later = "and later"
	_, relayed := front.Unsent()
	if _, err := bob.sess.SendText("lobby", later); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if unsent, now := front.Unsent(); now < relayed+int64(len(later)) || unsent < int64(len(later)) {
			return fmt.Errorf("the front took %d bytes of the room's text and holds %d unsent; want %d held", now-relayed, unsent, len(later))
		}
		return nil
	})
	if _, err := call.Hold(ctx, textsdp.SendRecv); err != nil {
		t.Fatalf("resuming the call: %v", err)
	}
	collect(t, call, later)
}

// TestCallThatReachesNoNodeEndsWithABye: the bridged session of a call
// loses its node and reaches no other (its node halted, no other up, as
// on the minority side of a partition). Once the session gives up (30 s
// in serve, 1 s here) the call ends with a BYE whose Reason says why,
// and a new INVITE is refused with 503 and a Retry-After, the front
// still answering.
func TestCallThatReachesNoNodeEndsWithABye(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) {
		cfg.ClientOptions = append(cfg.ClientOptions, client.WithReconnectTimeout(time.Second))
		cfg.SetupTimeout = 2 * time.Second // the refused INVITE's attach tries
	})
	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "alice"})
	c.Nodes[0].Halt()
	select {
	case <-call.Ended():
	case <-time.After(settle):
		t.Fatal("no BYE for the call whose session reached no node")
	}
	if r := call.Reason(); !strings.Contains(r, "the room session ended") || !strings.Contains(r, "gave up") {
		t.Errorf("Reason %q does not say the session gave up", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	again, err := sipcall.Dial(ctx, sipTarget(front, "lobby"), sipcall.Config{User: "bob"})
	if err == nil {
		again.Hangup(ctx)
		t.Fatal("a call was set up with no node up")
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("a new call with no node up: %v, want 503", err)
	}
}
