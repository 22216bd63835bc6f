package rtcfront_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
	"github.com/switchboard/switchboard/internal/token"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/rtt"
)

// settle bounds waits for what must happen: generous for loaded CI.
const settle = 30 * time.Second

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startFront runs a WebRTC front for n on loopback, mounted on n's HTTP
// at rtcfront.Path, and returns it with the endpoint's URL.
func startFront(t *testing.T, n *node.Node, edit func(*rtcfront.Config)) (*rtcfront.Server, string) {
	t.Helper()
	cfg := rtcfront.Config{
		Service:   n.Service(),
		NodeID:    n.ID(),
		NodeAddr:  n.Addr(),
		ICEAddr:   "127.0.0.1:0",
		Interval:  50 * time.Millisecond,
		Directory: n.Directory,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := rtcfront.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.HandleHTTP(rtcfront.Path, s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutting the front down: %v", err)
		}
	})
	return s, "http://" + n.HTTPAddr() + rtcfront.Path
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
	sess   *client.Session
	mu     sync.Mutex
	room   *rtt.Room
	joined []string
	left   []string
}

func join(t *testing.T, n *node.Node, user, room string, opts ...client.Option) *member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	s, err := client.Dial(ctx, n.Addr(), append([]client.Option{client.WithUser(user), client.WithPolicy(pinned(n.ID()))}, opts...)...)
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
				if re.Joined {
					m.joined = append(m.joined, re.User)
				} else {
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
	return slices.Contains(m.left, user)
}

func (m *member) hasJoined(user string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.joined, user)
}

// rtcPeer is a pion peer on loopback: the other end a browser would be.
type rtcPeer struct {
	pc   *webrtc.PeerConnection
	dc   *webrtc.DataChannel
	open chan struct{}
	mu   sync.Mutex
	got  strings.Builder
	shut chan struct{} // closed when the channel closes
}

// newPeer makes a peer whose offer has a data channel of the given
// subprotocol (and the options given), its candidates gathered.
func newPeer(t *testing.T, protocol string, init *webrtc.DataChannelInit) (*rtcPeer, string) {
	t.Helper()
	return newPeerWith(t, protocol, init, nil)
}

// newPeerWith is newPeer with the peer's settings edited.
func newPeerWith(t *testing.T, protocol string, init *webrtc.DataChannelInit, edit func(*webrtc.SettingEngine)) (*rtcPeer, string) {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if edit != nil {
		edit(&se)
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if init == nil {
		init = &webrtc.DataChannelInit{}
	}
	init.Protocol = &protocol
	dc, err := pc.CreateDataChannel("t140", init)
	if err != nil {
		t.Fatal(err)
	}
	p := &rtcPeer{pc: pc, dc: dc, open: make(chan struct{}), shut: make(chan struct{})}
	dc.OnOpen(func() { close(p.open) })
	dc.OnClose(func() { close(p.shut) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		p.mu.Lock()
		p.got.Write(m.Data)
		p.mu.Unlock()
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(settle):
		t.Fatal("the test peer gathered no candidates")
	}
	return p, pc.LocalDescription().SDP
}

// postClient posts from 127.0.0.2: a peer of its own address, counted
// per source, where one from 127.0.0.1 to the node's 127.0.0.1 would be
// the node's own host (a proxy beside it), which is not.
var postClient = &http.Client{Transport: &http.Transport{
	DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
}}

// post sends an offer from 127.0.0.2 and returns the status and body.
func post(t *testing.T, url, ctype, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1] // the name the browser dialled
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := postClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// connect posts the peer's offer, applies the answer and returns it.
func (p *rtcPeer) connect(t *testing.T, url, offer string, hdr ...string) string {
	t.Helper()
	code, body := post(t, url, "application/sdp", offer, hdr...)
	if code != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", url, code, body)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatalf("applying the answer: %v", err)
	}
	return body
}

func (p *rtcPeer) waitOpen(t *testing.T) {
	t.Helper()
	select {
	case <-p.open:
	case <-time.After(settle):
		t.Fatalf("the t140 channel did not open (connection %s)", p.pc.ConnectionState())
	}
}

func (p *rtcPeer) received() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got.String()
}

// TestPeerTalksWithMemberOnAnotherNode: a WebRTC peer on n1's front and a
// TCP member on n2 share a room both ways, the member's text labelled
// with their name, and the peer's hangup leaves the room.
func TestPeerTalksWithMemberOnAnotherNode(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front, url := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[1], "bob", "lobby")

	p, offer := newPeer(t, rtcfront.Protocol, nil)
	p.connect(t, url+"?room=lobby&user=alice", offer)
	p.waitOpen(t)
	for _, s := range []string{"\uFEFFhel", "lo", " bob\bB"} {
		if err := p.dc.SendText(s); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("alice"); got != "hello boB" {
			return fmt.Errorf("bob sees alice type %q", got)
		}
		return nil
	})
	if _, err := bob.sess.SendText("lobby", "hi alice"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := p.received(); !strings.Contains(got, "[bob]: hi alice") {
			return fmt.Errorf("the peer received %q", got)
		}
		return nil
	})
	if got := p.received(); strings.Contains(got, "[alice]") {
		t.Errorf("the peer's own text was echoed: %q", got)
	}
	if front.Peers() != 1 {
		t.Errorf("Peers() = %d, want 1", front.Peers())
	}
	_ = p.pc.Close()
	nodetest.Eventually(t, settle, func() error {
		if !bob.hasLeft("alice") {
			return fmt.Errorf("bob has not seen alice leave")
		}
		if n := front.Peers(); n != 0 {
			return fmt.Errorf("the front holds %d peers", n)
		}
		return nil
	})
}

// TestBadOffers: every malformed or unwelcome request gets its status and
// a reason, and the front serves a good peer afterwards.
func TestBadOffers(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	_, url := startFront(t, c.Nodes[0], func(cfg *rtcfront.Config) { cfg.MaxOffer = 8 << 10 })
	_, offer := newPeer(t, rtcfront.Protocol, nil)
	audioOnly := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\n"
	good := url + "?room=lobby&user=alice"
	for _, tc := range []struct {
		name, url, ctype, body string
		hdr                    []string
		code                   int
		says                   string
	}{
		{"not sdp", good, "application/json", offer, nil, http.StatusUnsupportedMediaType, "application/sdp"},
		{"no room", url + "?user=alice", "application/sdp", offer, nil, http.StatusBadRequest, "room"},
		{"bad room", url + "?room=a/b&user=alice", "application/sdp", offer, nil, http.StatusBadRequest, "room"},
		{"no user", url + "?room=lobby", "application/sdp", offer, nil, http.StatusBadRequest, "user"},
		{"garbage", good, "application/sdp", "this is not SDP", nil, http.StatusBadRequest, "does not parse"},
		{"no data channel", good, "application/sdp", audioOnly, nil, http.StatusBadRequest, "no data channel"},
		{"too large", good, "application/sdp", offer + strings.Repeat("a=x-pad:0123456789\r\n", 500), nil, http.StatusRequestEntityTooLarge, "larger"},
		{"other origin", good, "application/sdp", offer, []string{"Origin", "https://evil.example"}, http.StatusForbidden, "own pages"},
		// A DNS-rebinding page: a name of the attacker's resolving to the
		// node, so that Origin and Host agree.
		{"rebinding page", good, "application/sdp", offer, []string{"Host", "evil.example:7071", "Origin", "http://evil.example:7071"}, http.StatusForbidden, "own pages"},
		{"not bearer", good, "application/sdp", offer, []string{"Authorization", "Basic YTpi"}, http.StatusUnauthorized, "Bearer"},
		{"bad token", good, "application/sdp", offer, []string{"Authorization", "Bearer not.a.token"}, http.StatusUnauthorized, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, tc.url, tc.ctype, tc.body, tc.hdr...)
			if code != tc.code || !strings.Contains(body, tc.says) {
				t.Errorf("got %d %q, want %d saying %q", code, body, tc.code, tc.says)
			}
		})
	}
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", res.StatusCode)
	}
	// A channel of another subprotocol, or unreliable, is closed; the
	// peer is dropped when no t140 channel opens in time.
	for _, tc := range []struct {
		name     string
		protocol string
		init     *webrtc.DataChannelInit
	}{
		{"chat", "chat", nil},
		{"unreliable", rtcfront.Protocol, &webrtc.DataChannelInit{MaxRetransmits: new(uint16)}},
	} {
		p, offer := newPeer(t, tc.protocol, tc.init)
		p.connect(t, good, offer)
		select {
		case <-p.shut:
		case <-time.After(settle):
			t.Errorf("%s: the channel was not closed", tc.name)
		}
	}
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	answer := p.connect(t, good, offer)
	// The peer's stack refuses messages over the node's bound.
	if !strings.Contains(answer, "a=max-message-size:4096") {
		t.Errorf("the answer announces no max-message-size of 4096:\n%s", answer)
	}
	p.waitOpen(t)
}

// TestLimitsAndShutdown: peers beyond the per-source and per-node limits
// are refused with 429 and 503, a peer that never opens its channel is
// dropped, and Shutdown ends the peers (their channels close).
func TestLimitsAndShutdown(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front, url := startFront(t, c.Nodes[0], func(cfg *rtcfront.Config) {
		cfg.MaxPeersPerSource = 1
		cfg.OpenTimeout = 3 * time.Second
	})
	bob := join(t, c.Nodes[0], "bob", "lobby")
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	p.connect(t, url+"?room=lobby&user=alice", offer)
	p.waitOpen(t)
	_, offer2 := newPeer(t, rtcfront.Protocol, nil)
	if code, body := post(t, url+"?room=lobby&user=carol", "application/sdp", offer2); code != http.StatusTooManyRequests {
		t.Errorf("a second peer from one address: %d %q, want 429", code, body)
	}

	// A peer that takes an answer and never connects is dropped once
	// the open timeout passes, never having been in the room.
	_ = p.pc.Close()
	nodetest.Eventually(t, settle, func() error {
		if code, body := post(t, url+"?room=lobby&user=dan", "application/sdp", offer2); code != http.StatusCreated {
			return fmt.Errorf("posting an offer after alice left: %d %q", code, body)
		}
		return nil
	})
	nodetest.Eventually(t, settle, func() error {
		if n := front.Peers(); n != 0 {
			return fmt.Errorf("dan, who never connected, is still held (%d peers)", n)
		}
		return nil
	})

	// The node's limit, on a second front served apart.
	one, err := rtcfront.New(rtcfront.Config{Service: c.Config.Service, NodeID: c.Nodes[0].ID(), NodeAddr: c.Nodes[0].Addr(), ICEAddr: "127.0.0.1:0", MaxPeers: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(one)
	t.Cleanup(srv.Close)
	q, offer3 := newPeer(t, rtcfront.Protocol, nil)
	q.connect(t, srv.URL+"?room=lobby&user=erin", offer3)
	q.waitOpen(t)
	// The front joins erin once her channel is open, a moment after her
	// side sees it open: a Shutdown before that would leave nothing to
	// leave.
	nodetest.Eventually(t, settle, func() error {
		if !bob.hasJoined("erin") {
			return fmt.Errorf("erin is not in the room yet")
		}
		return nil
	})
	_, offer4 := newPeer(t, rtcfront.Protocol, nil)
	if code, body := post(t, srv.URL+"?room=lobby&user=fay", "application/sdp", offer4); code != http.StatusServiceUnavailable {
		t.Errorf("a peer beyond the node's limit: %d %q, want 503", code, body)
	}
	// Shutdown ends erin's peer: her channel closes and she leaves.
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := one.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case <-q.shut:
	case <-time.After(settle):
		t.Error("erin's channel stayed open after Shutdown")
	}
	nodetest.Eventually(t, settle, func() error {
		if !bob.hasLeft("erin") {
			return fmt.Errorf("erin is still in the room")
		}
		return nil
	})
	// Presence is ordered: bob saw erin join after dan was dropped.
	if bob.hasJoined("dan") {
		t.Error("dan, who never connected, joined the room")
	}
	if code, _ := post(t, srv.URL+"?room=lobby&user=gil", "application/sdp", offer4); code != http.StatusServiceUnavailable {
		t.Errorf("an offer after Shutdown: %d, want 503", code)
	}
}

// TestRefusedTokensAreBoundedPerAddress: each offer's member attaches on
// a connection of its own, so the node's close at a connection's third
// refused attach does not bound an address that sends offer after offer
// with another token each time; the front does, as a connection would:
// after 3 refused tokens within 10 s, the address's offers get 429 until
// the 10 s have passed, even one with a good token.
func TestRefusedTokensAreBoundedPerAddress(t *testing.T) {
	priv, pubFile := nodetest.TokenKey(t)
	stranger, _ := nodetest.TokenKey(t)
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.TokenKey = pubFile }})
	c.WaitRoomsReady(settle)
	mint := func(key ed25519.PrivateKey, user string) string {
		tok, err := token.Mint(key, token.Claims{User: user, Service: c.Config.Service, Expires: time.Now().Add(time.Hour)}, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	front, url := startFront(t, c.Nodes[0], nil)
	var mu sync.Mutex
	now := time.Now()
	front.SetClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	})
	for i := range 3 {
		_, offer := newPeer(t, rtcfront.Protocol, nil)
		if code, body := post(t, url+"?room=lobby", "application/sdp", offer, "Authorization", "Bearer "+mint(stranger, fmt.Sprint("eve", i))); code != http.StatusForbidden {
			t.Fatalf("forged token %d: %d %q, want 403", i+1, code, body)
		}
	}
	_, offer := newPeer(t, rtcfront.Protocol, nil)
	code, body := post(t, url+"?room=lobby", "application/sdp", offer, "Authorization", "Bearer "+mint(priv, "ann"))
	if code != http.StatusTooManyRequests || !strings.Contains(body, "refused") {
		t.Errorf("a good token after 3 refused: %d %q, want 429", code, body)
	}
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	p.connect(t, url+"?room=lobby", offer, "Authorization", "Bearer "+mint(priv, "ann"))
	p.waitOpen(t)
}

// TestTokens: with user tokens on the service, a peer without one gets
// 401, one whose token does not allow the room 403, and one with a good
// token joins as the token's user.
func TestTokens(t *testing.T) {
	priv, pubFile := nodetest.TokenKey(t)
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.TokenKey = pubFile }})
	c.WaitRoomsReady(settle)
	mint := func(user string, rooms ...string) string {
		tok, err := token.Mint(priv, token.Claims{User: user, Service: c.Config.Service, Expires: time.Now().Add(time.Hour), Rooms: rooms}, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	_, url := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby", client.WithToken(mint("bob")))
	_, offer := newPeer(t, rtcfront.Protocol, nil)

	code, body := post(t, url+"?room=lobby&user=mallory", "application/sdp", offer)
	if code != http.StatusUnauthorized || !strings.Contains(body, "token") {
		t.Errorf("no token: %d %q, want 401 asking for a token", code, body)
	}
	code, body = post(t, url+"?room=lobby", "application/sdp", offer, "Authorization", "Bearer "+mint("ann", "attic"))
	if code != http.StatusForbidden {
		t.Errorf("a token for another room: %d %q, want 403", code, body)
	}
	other, _, _ := strings.Cut(mint("ann"), ".") // a header...
	forged := other + "." + strings.Split(mint("eve"), ".")[1] + "." + strings.Split(mint("ann"), ".")[2]
	code, body = post(t, url+"?room=lobby", "application/sdp", offer, "Authorization", "Bearer "+forged)
	if code != http.StatusForbidden && code != http.StatusUnauthorized {
		t.Errorf("a forged token: %d %q, want 401 or 403", code, body)
	}

	p, offer := newPeer(t, rtcfront.Protocol, nil)
	p.connect(t, url+"?room=lobby", offer, "Authorization", "Bearer "+mint("ann", "lobby"))
	p.waitOpen(t)
	if err := p.dc.SendText("hi from ann"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("ann"); got != "hi from ann" {
			return fmt.Errorf("bob sees ann type %q", got)
		}
		return nil
	})
}
