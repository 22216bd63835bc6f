package rtcfront_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// newBrowser starts a headless Chromium. Chromium missing is a failure,
// not a skip: CI installs it (.ci/run).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("no Chromium to run the browser test: install it (apt-get install chromium; .ci/run does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // Debian's chromium as root
		chromedp.Flag("disable-dev-shm-usage", true),
		// Chromium's host candidates stay hidden behind mDNS names
		// (.local), as browsers ship: the node resolves none, and needs
		// not, since it answers the checks from the address they come
		// from (a peer-reflexive candidate). Loopback is allowed so that
		// a machine with no other interface can run the test too.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	if err := chromedp.Listen(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value))
			}
			t.Logf("console.%s: %s", ev.Type, strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			t.Logf("uncaught: %s", ev.ExceptionDetails.Text)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return bctx
}

// callRoom is what a page does to call a room over WebRTC: open the
// t140 channel, make the offer with every candidate, POST it to the
// node, apply the answer. What arrives on the channel collects in
// window.rtt.got.
const callRoom = `(async (url) => {
  const pc = new RTCPeerConnection();
  const dc = pc.createDataChannel("t140", {protocol: "t140"});
  window.rtt = {pc, dc, got: "", state: "connecting"};
  dc.onmessage = (e) => { window.rtt.got += e.data; };
  dc.onopen = () => { window.rtt.state = "open"; };
  dc.onclose = () => { window.rtt.state = "closed"; };
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((done) => pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") done();
    }));
  }
  const res = await fetch(url, {method: "POST", headers: {"Content-Type": "application/sdp"}, body: pc.localDescription.sdp});
  const body = await res.text();
  if (res.status !== 201) return res.status + " " + body;
  await pc.setRemoteDescription({type: "answer", sdp: body});
  return "answered";
})`

// TestChromiumCallsRoom: headless Chromium opens the RFC 8865 data
// channel to n1 of a two-node cluster and exchanges text with a TCP
// member attached to n2.
func TestChromiumCallsRoom(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front, _ := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[1], "bob", "lobby")
	browser := newBrowser(t)
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	// A page of the node itself: the offer goes to its own origin.
	if err := chromedp.Do(tab, chromedp.Navigate("http://"+c.Nodes[0].HTTPAddr()+"/healthz")); err != nil {
		t.Fatal(err)
	}
	ans, err := chromedp.Run(tab, chromedp.Evaluate[string](callRoom+`("/v1/rtc?room=lobby&user=carol")`, chromedp.EvalAwaitPromise))
	if err != nil || ans != "answered" {
		t.Fatalf("calling the room: %q %v", ans, err)
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(settle))); err != nil {
			state, _ := chromedp.Run(tab, chromedp.Evaluate[string](`window.rtt.state + " " + window.rtt.pc.connectionState + " " + JSON.stringify(window.rtt.got)`))
			t.Fatalf("waiting for %s: %v (the page: %s)", what, err, state)
		}
	}
	poll("the t140 channel to open", `window.rtt.state === "open"`)
	for _, s := range []string{"hello ", "from chro", "mium\u2028"} {
		if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](fmt.Sprintf(`window.rtt.dc.send(%q) || true`, s))); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("carol"); got != "hello from chromium\n" {
			return fmt.Errorf("bob sees carol type %q", got)
		}
		return nil
	})
	if _, err := bob.sess.SendText("lobby", "hi carol"); err != nil {
		t.Fatal(err)
	}
	poll("bob's text, labelled", `window.rtt.got.includes("[bob]: hi carol")`)

	// Closing the connection leaves the room.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.rtt.pc.close() || true`)); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if !bob.hasLeft("carol") || front.Peers() != 0 {
			return fmt.Errorf("carol is still in the room (%d peers)", front.Peers())
		}
		return nil
	})
}
