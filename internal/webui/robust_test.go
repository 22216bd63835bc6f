package webui_test

import (
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/webui"
)

// TestBrowserDirectoryBodyHasDeadline: the common address answers the
// directory fetch with its headers and the start of the body, then goes
// silent. The fetch's deadline (2 s, the Go client's attempt timeout)
// must bound the body too, so that the page asks the next address and
// attaches. Before, the deadline ended with the headers and the page
// waited for the rest of the body for ever.
func TestBrowserDirectoryBodyHasDeadline(t *testing.T) {
	got := scriptedSession(t, "body-deadline", `
  const answer = window.fetch;
  window.fetch = async (url, opts) => {
    const host = new URL(url).host;
    log.push(host === "common.test" ? "fetch common" : "fetch a node");
    if (host !== "common.test") return answer(url, opts);
    // As a real fetch's body does, the stream fails when the fetch is
    // aborted, and not before.
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"op":"directory","v":1,'));
        opts.signal.addEventListener("abort", () => c.error(new DOMException("aborted", "AbortError")));
      },
    });
    return new Response(body, { headers: { "Content-Type": "application/json" } });
  };
`, `
  // As after a failover: the page holds a directory, whose nodes it asks
  // once the common address has failed.
  s.setDirectory(dir);
  const first = settled(s, "n1");
  s.start();
  await first;
  log.push("attached to n1");
`)
	wantTranscript(t, "the page did", got, []string{"fetch common", "fetch a node", "attached to n1"})
}

// TestBrowserPrototypeUserNames: users named after properties of
// Object.prototype join a fresh room and type. The room's state lists
// no seq of theirs (seqs {}), so their first chunk is seq 1. Before,
// seqs[user] read Object.prototype's function, and the chunk went out
// with seq null.
func TestBrowserPrototypeUserNames(t *testing.T) {
	got := scriptedSession(t, "proto-names", "", `
  for (const user of ["constructor", "__proto__", "toString"]) {
    const u = new Session({ user, policy: "least-users", common: "http://common.test" });
    const up = settled(u, "n1"), joined = roomState(u);
    u.start();
    await up;
    u.join("lobby");
    await joined;
    log.push(user);
    u.sendText("lobby", "hi");
    u.close();
  }
`)
	var want []string
	for _, user := range []string{"constructor", "__proto__", "toString"} {
		want = append(want, "n1 join lobby", user, "n1 text 1 2")
	}
	wantTranscript(t, "the page sent", got, want)
}

// TestBrowserMalformedDirectoryRefused: the page's node pushes a
// directory whose nodes are not nodes ([null]), and changes to it that
// are not either, then drops. As the Go client takes no message that
// does not decode, the page refuses both and keeps the directory it
// held, from which it picks n2. Before, it held [null], and the pick
// after the drop threw, ending the failover for good.
func TestBrowserMalformedDirectoryRefused(t *testing.T) {
	got := scriptedSession(t, "bad-directory", `
  window.fakeOnSend = (ws, m, reply) => {
    if (m.op !== "attach" || ws.id !== "n1") return false;
    reply({ op: "attached", user: m.user, node: ws.id, session: ws.id });
    reply({ op: "directory", v: 1, service: "s", self: "n1", nodes: [null] });
    reply({ op: "directory", v: 1, service: "s", self: "n1", delta: true, nodes: [null] });
    reply({ op: "presence", room: "lobby", user: "bob", event: "join" }); // after both
    return true;
  };
`, `
  const first = settled(s, "n1"), second = settled(s, "n2");
  const pushed = new Promise((resolve) => s.addEventListener("presence", resolve));
  s.start();
  await first;
  await pushed;
  log.push("nodes held: " + s.dir.nodes.map((n) => n && n.id).join(","));
  drop("n1");
  await second;
  log.push("attached to " + s.node.id);
`)
	wantTranscript(t, "the page did", got, []string{"nodes held: n1,n2", "attached to n2"})
}

// TestBrowserAckOnlySentChunks: the node refuses the page's chunk 1 for
// now (unavailable); chunks 2 and 3 are typed while the room waits for
// its next state, so they do not go out; then a stray ack of seq 3
// comes. As the Go client does (client/session.go, ackLocked), the ack
// forgets only chunks that went out (1): 2 and 3 are kept, and go out
// once the room's state is in again. Before, the ack forgot all three,
// and 2 and 3 were never sent.
func TestBrowserAckOnlySentChunks(t *testing.T) {
	got := scriptedSession(t, "ack-sent", `
  let push = null, refuse = true, rejoined = null;
  const rejoin = new Promise((resolve) => { rejoined = resolve; });
  window.fakeOnSend = (ws, m, reply) => {
    if (m.op === "attach") push = reply;
    if (m.op === "text" && refuse) {
      refuse = false;
      log.push(ws.id + " text " + m.seq + " refused");
      reply({ op: "error", room: m.room, seq: m.seq, code: "unavailable", message: "no leader" });
      return true;
    }
    if (m.op === "join" && !refuse) {
      // The page's join after the refusal: answered when the test says.
      log.push(ws.id + " join " + m.room + " again");
      rejoined(() => reply({ op: "room", room: m.room, state: { seqs: {}, users: ["ann"] } }));
      return true;
    }
    return false;
  };
`, `
  const first = settled(s, "n1"), joined = roomState(s);
  s.start();
  await first;
  s.join("lobby");
  await joined;
  const refusal = new Promise((resolve) => s.addEventListener("error", resolve, { once: true }));
  s.sendText("lobby", "a");
  await refusal;
  s.sendText("lobby", "b");
  s.sendText("lobby", "c");
  const acked = new Promise((resolve) => s.addEventListener("ack", resolve, { once: true }));
  push({ op: "ack", room: "lobby", seq: 3 });
  await acked;
  const answer = await rejoin;
  log.push("unacked " + s.unacked("lobby").map((m) => m.seq).join(","));
  const synced = roomState(s);
  answer();
  await synced;
`)
	want := []string{
		"n1 join lobby",
		"n1 text 1 refused",
		"n1 join lobby again",
		"unacked 2,3",
		"n1 text 2 1",
		"n1 text 3 1",
	}
	wantTranscript(t, "the page did", got, want)
}

// TestBrowserUnknownPolicyShown: the page is opened with a ?policy= it
// does not know. It must say so under its status, with the join form
// still there to pick another. Before, it hid the form and then threw,
// and the page stayed blank.
func TestBrowserUnknownPolicyShown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(webui.Handler())
	t.Cleanup(srv.Close)
	tab := newTab(t, sharedBrowser(t), "policy")
	do(t, tab, "opening the page", chromedp.Navigate(srv.URL+"/?user=a&room=b&policy=bogus"))
	why := poll[string](t, tab, "the page's error", `(() => {
  const why = document.querySelector("#why");
  return why.checkVisibility() && why.textContent.includes("bogus") ? why.textContent : "";
})()`)
	t.Logf("the page says: %s", why)
	if !eval[bool](t, tab, `document.querySelector("#join-form").checkVisibility()`) {
		t.Error("the join form is hidden; want it shown, to pick another policy")
	}
}

// TestBrowserDirectoryFetchesAreStaggered: the common address is out of
// reach and the nodes the page asks next (n2 and n3, up) take the fetch
// and answer nothing. As the Go client staggers its hellos' connections
// (client/session.go, firstHello), the page asks the next node after
// staggerMs without waiting for a fetch to time out, two fetches at
// most under way at once: n1 is asked once the first silent node's
// fetch has timed out (ATTEMPT_MS), not before; its directory is taken
// and the other fetch aborted. Before, the fetches went one at a time:
// each silent node held the page for a whole ATTEMPT_MS (2 s).
func TestBrowserDirectoryFetchesAreStaggered(t *testing.T) {
	got := scriptedSession(t, "fetch-stagger", `
  const answer = window.fetch;
  window.fetch = (url, opts) => {
    const host = new URL(url).host.split(".")[0];
    if (host === "common") {
      log.push("fetch common");
      return Promise.reject(new TypeError("unreachable"));
    }
    if (host === "n2" || host === "n3") {
      // Paused: nothing comes until the page aborts the fetch.
      log.push("fetch a silent node");
      return new Promise((_, reject) => opts.signal.addEventListener("abort", () => {
        log.push("a silent node's fetch aborted");
        reject(new DOMException("aborted", "AbortError"));
      }));
    }
    log.push("fetch " + host);
    return answer(url, opts);
  };
`, `
  // As after a failover: the page holds a directory listing n2 and n3 up
  // and n1 starting, so that n1 is asked last; n1's answer lists n1 up.
  s.setDirectory({ ...dir, nodes: [{ ...dir.nodes[0], status: "starting" }, dir.nodes[1], { ...dir.nodes[1], id: "n3", addr: "n3.test:7070", http: "n3.test:7071" }] });
  s.staggerMs = 50;
  const first = settled(s, "n1");
  s.start();
  await first;
  log.push("attached to n1");
`)
	wantTranscript(t, "the page did", got, []string{
		"fetch common", "fetch a silent node", "fetch a silent node",
		"a silent node's fetch aborted", // its ATTEMPT_MS
		"fetch n1",
		"a silent node's fetch aborted", // n1 answered
		"attached to n1",
	})
}
