package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/nodetest"
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

	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	proto := "t140"
	dc, err := pc.CreateDataChannel("t140", &webrtc.DataChannelInit{Protocol: &proto})
	if err != nil {
		t.Fatal(err)
	}
	opened, closed, heard := make(chan struct{}), make(chan struct{}), make(chan string, 16)
	dc.OnOpen(func() { close(opened) })
	dc.OnClose(func() { close(closed) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) { heard <- string(m.Data) })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	res, err := http.Post(offerURL+"?room=lobby&user=ann", "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
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
	wait := func(what string, c <-chan struct{}) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(30 * time.Second):
			t.Fatalf("waiting for %s", what)
		}
	}
	wait("the channel to open", opened)
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
	wait("the channel to close at the node's stop", closed)
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
