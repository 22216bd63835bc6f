package webui_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/webui"
	"github.com/switchboard/switchboard/wire"
)

// scriptPage is a tab with the room page, idle without a user, served by
// the page's handler alone (as a node serves it): for tests that drive
// client.js against stand-ins for every node. It makes the test parallel.
func scriptPage(t *testing.T, name string) context.Context {
	t.Helper()
	// These tests mostly wait on the page's timers, each in a browser of
	// its own: they run beside each other.
	t.Parallel()
	srv := httptest.NewServer(webui.Handler())
	t.Cleanup(srv.Close)
	tab := newTab(t, sharedBrowser(t), name)
	do(t, tab, "loading the page", chromedp.Navigate(srv.URL+"/"))
	return tab
}

// scriptedSession runs body in a page of the service's, after the
// fakeNodes preamble and setup (which may set limits and joinReply), with
// a Session s of user ann (least-users, so n1 first, unless setup sets
// window.sessionOpts), and returns the log body fills.
func scriptedSession(t *testing.T, name, setup, body string) []string {
	t.Helper()
	return eval[[]string](t, scriptPage(t, name), `(async () => {
  const { Session } = await import("/static/client.js");
  let limits = {};
  let joinReply = () => null;
`+fakeNodes+setup+`
  const s = new Session({ user: "ann", policy: "least-users", common: "http://common.test", ...(window.sessionOpts || {}) });
`+body+`
  s.close();
  return log;
})()`)
}

// TestBrowserProbeTakesAnyAnswer: the page's node stops answering pings,
// and the second connection the page opens to ask whether it runs at
// all is refused by a node at its connection limit
// (too_many_connections). As in the Go client (client/heartbeat.go,
// probe), any answer there says the node is alive, busy: the page must
// not fail over. Before, it counted only a pong, and every page of a
// crowd behind one address left a node that was merely slow.
func TestBrowserProbeTakesAnyAnswer(t *testing.T) {
	got := scriptedSession(t, "probe", `
  let main = null;
  window.fakeOnSend = (ws, m, reply) => {
    if (m.op === "attach") main = ws;
    if (m.op !== "ping") return false;
    if (ws !== main) {
      reply({ op: "error", code: "too_many_connections", message: "too many connections from your address" });
      setTimeout(() => { ws.readyState = 3; ws.onclose && ws.onclose({ code: 1008, reason: "" }); }, 0);
    }
    return true; // the session's own pings go unanswered
  };
`, `
  const first = settled(s, "n1");
  s.start();
  await first;
  log.push(await new Promise((resolve) => {
    s.addEventListener("status", (e) => { if (e.detail.state === "lost") resolve("failed over"); });
    const check = setInterval(() => { if (s.hb && s.hb.probeOK) { clearInterval(check); resolve("busy, kept"); } }, 5);
  }));
`)
	if strings.Join(got, "\n") != "busy, kept" {
		t.Errorf("the page did %q; want it to keep a node whose second connection was answered", got)
	}
}

// TestBrowserBadFrameDropsTheNode: a node sends a message longer than a
// line of the protocol may be (wire.MaxLine). As the Go client does, the
// page leaves that node as after a drop and attaches elsewhere, rather
// than take a message of any size. Before, it parsed any frame and let
// ones that did not parse pass unseen.
func TestBrowserBadFrameDropsTheNode(t *testing.T) {
	badFrameDropsTheNode(t, "frame", `"x".repeat(70000)`)
}

// TestBrowserBadFrameIsMeasuredInBytes: the line limit is in bytes of
// UTF-8, as the node writes them and the Go client reads them. A message
// of 25,000 euro signs is 25,000 UTF-16 units, within the limit when
// counted as JavaScript counts a string's length, and 75,000 bytes: the
// page leaves that node as for any message past a line. Before, it
// measured in UTF-16 units and took messages of up to 192 KiB.
func TestBrowserBadFrameIsMeasuredInBytes(t *testing.T) {
	badFrameDropsTheNode(t, "frame-bytes", `"\u20ac".repeat(25000)`)
}

// badFrameDropsTheNode runs a scripted session whose node n1, once the
// page is attached, sends a directory whose node n3 has the address
// addrJS (a JavaScript expression), and checks that the page leaves n1
// for n2.
func badFrameDropsTheNode(t *testing.T, name, addrJS string) {
	t.Helper()
	got := scriptedSession(t, name, `
  window.fakeOnSend = (ws, m, reply) => {
    if (m.op === "ping") {
      reply({ op: "pong" }); // alive: only the bad message is to blame
      return true;
    }
    if (m.op !== "attach" || ws.id !== "n1") return false;
    reply({ op: "attached", user: m.user, node: ws.id, session: ws.id });
    reply({ op: "directory", v: 1, service: "s", self: "n1", delta: true, nodes: [node("n3", `+addrJS+`)] });
    return true;
  };
`, `
  const first = settled(s, "n1"), second = settled(s, "n2");
  s.addEventListener("status", (e) => { if (e.detail.state === "lost") log.push("lost " + e.detail.node.id); });
  s.start();
  await first;
  await second;
  log.push("attached to " + s.node.id);
`)
	if strings.Join(got, "\n") != "lost n1\nattached to n2" {
		t.Errorf("the page did %q; want it to leave n1 and attach to n2", got)
	}
}

// TestBrowserHaltedSessionTakesNoText: a node refuses the page's attach
// in a way no retry mends (bad_request). As the Go client fails SendText
// once the session has given up, the page's sendText throws, rather than
// queue text that will never go out (and the room page shuts its box).
func TestBrowserHaltedSessionTakesNoText(t *testing.T) {
	got := scriptedSession(t, "halted", `
  window.fakeOnSend = (ws, m, reply) => {
    if (m.op !== "attach") return false;
    reply({ op: "error", code: "bad_request", message: "not a user name" });
    return true;
  };
`, `
  s.join("lobby");
  await new Promise((resolve) => {
    s.addEventListener("status", (e) => { if (e.detail.state === "failed") resolve(); });
    s.start();
  });
  try {
    s.sendText("lobby", "x");
    log.push("text taken");
  } catch (e) {
    log.push("text refused");
  }
`)
	if strings.Join(got, "\n") != "text refused" {
		t.Errorf("after the session gave up, the page did %q; want the text refused", got)
	}
}

// TestBrowserEmptyChunkFromAnother: another member sends an empty chunk
// (the Go client's SendText(room, "") does), which the node relays
// without its text field. The page must take it as no text: before, its
// text handler threw ("text is not iterable") on every such chunk.
func TestBrowserEmptyChunkFromAnother(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	n := c.Nodes[0]
	ann := page(t, newBrowser(t), n.HTTPAddr(), "ann")
	eval[bool](t, ann, `(() => { window.pageErrors = []; window.addEventListener("error", (e) => window.pageErrors.push(e.message)); return true; })()`)
	bob := joinTCP(t, n.Addr(), "bob")
	st := bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	seq := st.State.Seqs["bob"]
	bob.send(t, wire.Message{Op: wire.OpText, Room: "lobby", Seq: seq + 1})
	bob.send(t, wire.Message{Op: wire.OpText, Room: "lobby", Seq: seq + 2, T: "hi"})
	poll[bool](t, ann, "bob's text on ann's page", liveOf("bob")+` === "hi"`)
	if errs := eval[[]string](t, ann, `window.pageErrors`); len(errs) > 0 {
		t.Errorf("the page threw on bob's chunks: %q", errs)
	}
}

// TestBrowserPickIgnoresTheServingNode: the directory comes from n2 (its
// self), n2 has one user and n1 none. The Go client prefers the node
// that answered its hello, within a little slack, to keep that
// connection; the page has none to keep (it fetched over HTTP), so it
// must pick by load alone, among the nodes near the least: here the
// first of them, n1, by its scripted draws. Before, it passed the directory's self
// and a crowd opening the page at once all landed on the serving node.
func TestBrowserPickIgnoresTheServingNode(t *testing.T) {
	got := scriptedSession(t, "self", `
  dir.self = "n2";
  dir.nodes[1].users = 1;
  // Draws of the top of each range: of the nodes near the least load,
  // the first (n1) stays drawn, unless one is preferred for being
  // connected.
  window.sessionOpts = { policy: "default", rand: { intN: (n) => n - 1 } };
`, `
  const attached = new Promise((resolve) => s.addEventListener("status", (e) => { if (e.detail.state === "attached") resolve(e.detail.node.id); }));
  s.start();
  log.push("attached to " + (await attached));
`)
	if strings.Join(got, "\n") != "attached to n1" {
		t.Errorf("the page did %q; want the least loaded node, n1", got)
	}
}
