package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// The WebRTC front is off by default, needs the HTTP listener its
// offers arrive on, and an IP address to offer as its candidate.
func TestRTCFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"loopback", []string{"--rtc", "127.0.0.1:7073"}, 0, "settings are valid"},
		{"no http", []string{"--rtc", "127.0.0.1:7073", "--http", ""}, 2, "--rtc needs --http"},
		{"a host name", []string{"--rtc", "localhost:7073"}, 2, "must be an IP address"},
		{"not an address", []string{"--rtc", "7073"}, 2, `--rtc "7073"`},
		{"trusted proxies", []string{"--rtc", "127.0.0.1:7073", "--trusted-proxies", "10.0.0.0/8, 192.0.2.7,2001:db8::/32"}, 0, "settings are valid"},
		{"a proxy by name", []string{"--rtc", "127.0.0.1:7073", "--trusted-proxies", "10.0.0.0/8,proxy.example"}, 2, `"proxy.example" is neither`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			code, stdout, stderr := runArgs(t, append(append([]string{"serve"}, tt.args...), "--check")...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\n%s%s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("output lacks %q:\n%s%s", tt.want, stdout, stderr)
			}
		})
	}
}

// serve --rtc answers a WebRTC peer's offer on its HTTP listener: the
// peer's text on its t140 channel reaches a TCP member of the room, the
// member's reaches the peer, and stopping serve closes the channel.
func TestServeRTC(t *testing.T) {
	var stdout, stderr nodetest.LockedBuffer
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, []string{"--service", "rtc.test", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", t.TempDir(),
			"--rtc", "127.0.0.1:0", "--drain-grace", "0", "--log-level", "warn"}, &stdout, &stderr)
	}()
	var nodeAddr, offerURL string
	addrs := regexp.MustCompile(`on (127\.0\.0\.1:\d+) \(http.*\n(?s:.*)WebRTC front on .*POST offers to (http://\S+)\?room=ROOM`)
	nodetest.Eventually(t, 30*time.Second, func() error {
		m := addrs.FindStringSubmatch(stdout.String())
		if m == nil {
			return fmt.Errorf("serve printed %q", stdout.String())
		}
		nodeAddr, offerURL = m[1], m[2]
		return nil
	})
	if !strings.Contains(stderr.String(), "users are not authenticated") {
		t.Errorf("the log does not say WebRTC users are unauthenticated:\n%s", stderr.String())
	}
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bob, err := client.Dial(dctx, nodeAddr, client.WithUser("bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if _, err := bob.JoinWait(dctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	go func() {
		for e := range bob.Events() {
			if re, ok := e.Room(); ok && re.Kind == client.TextEvent && re.From == "ann" {
				got <- re.Text
			}
		}
	}()

	ann := callRTC(t, offerURL, "lobby", "ann", nil)
	dc, closed, heard := ann.dc, ann.closed, ann.heard
	waitFor(t, "the channel to open", ann.opened)
	if err := dc.SendText("hi bob"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "hi bob" {
			t.Errorf("bob got %q from ann", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bob got nothing from ann")
	}
	if _, err := bob.SendText("lobby", "hi ann"); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for !strings.Contains(all.String(), "[bob]: hi ann") {
		select {
		case s := <-heard:
			all.WriteString(s)
		case <-time.After(30 * time.Second):
			t.Fatalf("ann heard %q", all.String())
		}
	}
	stop()
	waitFor(t, "the channel to close at the node's stop", closed)
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// rtcPeer is a WebRTC peer as a page makes one: a t140 data channel to a
// node's WebRTC front, over UDP on loopback.
type rtcPeer struct {
	dc             *webrtc.DataChannel
	opened, closed chan struct{}
	heard          chan string
	failed         chan struct{} // closed once ICE says failed
	failedOnce     sync.Once
}

// callRTC posts a peer's offer to offerURL for room as user and sets the
// answer; se, when given, tunes the peer's ICE. The peer closes when the
// test ends.
func callRTC(t *testing.T, offerURL, room, user string, tune func(*webrtc.SettingEngine)) *rtcPeer {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if tune != nil {
		tune(&se)
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	p := &rtcPeer{opened: make(chan struct{}), closed: make(chan struct{}), heard: make(chan string, 64), failed: make(chan struct{})}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed {
			p.failedOnce.Do(func() { close(p.failed) })
		}
	})
	proto := "t140"
	if p.dc, err = pc.CreateDataChannel("t140", &webrtc.DataChannelInit{Protocol: &proto}); err != nil {
		t.Fatal(err)
	}
	p.dc.OnOpen(func() { close(p.opened) })
	p.dc.OnClose(func() { close(p.closed) })
	p.dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case p.heard <- string(m.Data):
		default:
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	res, err := http.Post(offerURL+"?room="+room+"&user="+user, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", offerURL, res.StatusCode, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	return p
}

// rtcLab is three node processes, each with its WebRTC front, and bob, a
// member of lobby over TCP on n2, who keeps what ann types and who joins
// and leaves.
type rtcLab struct {
	c       *localcluster.Cluster
	logs    *nodetest.LockedBuffer // the nodes' logs
	mu      sync.Mutex
	fromAnn strings.Builder
	joined  map[string]bool
	left    map[string]bool
}

// newRTCLab starts the lab for service, stopped when the test ends, its
// nodes' data under dataDir ("": the cluster's own).
func newRTCLab(ctx context.Context, t *testing.T, service, dataDir string) *rtcLab {
	t.Helper()
	c, logs := startLogged(ctx, t, localcluster.Config{Binary: binary, Nodes: 3, Service: service, DataDir: dataDir,
		ArgsFor: func(i int) []string { return []string{"--rtc", "127.0.0." + strconv.Itoa(i+1) + ":0"} }})
	if err := c.WaitCaughtUp(ctx, settle); err != nil {
		t.Fatal(err)
	}
	// bob stays on n2, which no test here hurts: a member who moved
	// would find what he missed in the room's state, not as text.
	bob, err := client.Dial(ctx, c.Nodes[1].Addr, client.WithUser("bob"), client.WithPolicy(homeNode("n2")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	if id := bob.Node().ID; id != "n2" {
		t.Fatalf("bob is on %s, want n2", id)
	}
	if _, err := bob.JoinWait(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	l := &rtcLab{c: c, logs: logs, joined: map[string]bool{}, left: map[string]bool{}}
	go func() {
		for e := range bob.Events() {
			re, ok := e.Room()
			l.mu.Lock()
			switch {
			case ok && re.Kind == client.TextEvent && re.From == "ann":
				l.fromAnn.WriteString(re.Text)
			case ok && re.Kind == client.PresenceEvent && re.Joined:
				l.joined[re.User] = true
			case ok && re.Kind == client.PresenceEvent:
				l.left[re.User] = true
			}
			l.mu.Unlock()
		}
	}()
	return l
}

// offerURL is where node i's front takes offers.
func (l *rtcLab) offerURL(i int) string { return "http://" + l.c.Nodes[i].HTTP + rtcfront.Path }

// bobHas waits until ann's text as bob has it is want, or fails the test.
func (l *rtcLab) bobHas(ctx context.Context, t *testing.T, want string) {
	t.Helper()
	err := localcluster.Await(ctx, settle, func(context.Context) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if got := l.fromAnn.String(); got != want {
			return fmt.Errorf("bob has %q from ann, want %q", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// bobSawJoin waits until bob has seen user join, or fails the test.
func (l *rtcLab) bobSawJoin(ctx context.Context, t *testing.T, user string) {
	t.Helper()
	err := localcluster.Await(ctx, settle, func(context.Context) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.joined[user] {
			return fmt.Errorf("bob has not seen %s join", user)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A WebRTC peer whose node is killed (kill -9), as rtp.md says: its ICE
// connection fails (here in seconds: the peer's consent timeouts are
// short, a browser's are longer), the page calls again through another
// node's front, as the same user, and goes on typing there. Text typed
// before the kill reached the room. dan, on the same node, does not call
// again: his member is removed like any member of a dead node, and the
// room lists ann, on her new node, and not him.
func TestRTCPeerCallsAgainWhenItsNodeDies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := newRTCLab(ctx, t, "rtckill.test", "")
	// Shorter than a browser's, long enough for a starved moment.
	fastConsent := func(se *webrtc.SettingEngine) {
		se.SetICETimeouts(2*time.Second, 4*time.Second, 500*time.Millisecond)
	}

	ann := callRTC(t, l.offerURL(0), "lobby", "ann", fastConsent)
	waitFor(t, "ann's channel to open on n1", ann.opened)
	dan := callRTC(t, l.offerURL(0), "lobby", "dan", fastConsent)
	waitFor(t, "dan's channel to open on n1", dan.opened)
	l.bobSawJoin(ctx, t, "dan")
	if err := ann.dc.SendText("before "); err != nil {
		t.Fatal(err)
	}
	l.bobHas(ctx, t, "before ")

	if err := l.c.Kill(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ann's connection to fail", ann.failed)
	again := callRTC(t, l.offerURL(1), "lobby", "ann", fastConsent)
	waitFor(t, "ann's channel to open on n2", again.opened)
	if err := again.dc.SendText("after"); err != nil {
		t.Fatal(err)
	}
	l.bobHas(ctx, t, "before after")

	// A newcomer sees ann, and no one left on the dead node.
	nodetest.Eventually(t, time.Minute, func() error {
		carol, err := client.Dial(ctx, l.c.Nodes[2].Addr, client.WithUser("carol"))
		if err != nil {
			return err
		}
		defer carol.Close()
		st, err := carol.JoinWait(ctx, "lobby")
		if err != nil {
			return err
		}
		users := slices.Sorted(slices.Values(st.Users))
		if !slices.Equal(users, []string{"ann", "bob", "carol"}) {
			return fmt.Errorf("carol finds %v in the room", users)
		}
		return nil
	})
}

// A WebRTC peer whose node pauses (SIGSTOP) until its peers list it down,
// then goes on: the peer's connection outlasts the pause (ICE consent
// allows seconds of silence), and what ann typed while the node was
// stopped reaches the room after it, in order, once: the peer's SCTP
// sends it again, and the node's bridge stores it.
func TestRTCPeerRidesOutAPausedNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := newRTCLab(ctx, t, "rtcpause.test", "")
	ann := callRTC(t, l.offerURL(0), "lobby", "ann", nil)
	waitFor(t, "ann's channel to open on n1", ann.opened)
	if err := ann.dc.SendText("before "); err != nil {
		t.Fatal(err)
	}
	l.bobHas(ctx, t, "before ")

	if err := l.c.Pause(0); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			l.c.Resume(0)
		}
	}()
	err := localcluster.Await(ctx, settle, func(ctx context.Context) error {
		if st, err := l.c.Nodes[1].Status(ctx, "n1"); err != nil || st != directory.Down {
			return fmt.Errorf("n2 lists n1 %q (%v), want down", st, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ann.dc.SendText("during "); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if err := l.c.Resume(0); err != nil {
		t.Fatal(err)
	}
	if err := ann.dc.SendText("after"); err != nil {
		t.Fatal(err)
	}
	l.bobHas(ctx, t, "before during after")
	select {
	case <-ann.failed:
		t.Error("ann's connection failed over the pause")
	default:
	}
}

// waitFor waits for c to close, 30 s at most.
func waitFor(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatalf("waiting for %s", what)
	}
}
