package webui_test

import (
	"strings"
	"testing"
)

// TestBrowserFetchSkipsDownNodes drives client.js against scripted
// stand-ins for fetch and WebSocket. When the common address does not
// answer, the page asks the nodes of the directory it holds, as the Go
// client does (client/session.go, helloOrder): those up first, then the
// others, and never one the directory says is down: a down node may be a
// paused one, which holds the fetch up for a whole timeout (n2 here
// never answers).
func TestBrowserFetchSkipsDownNodes(t *testing.T) {
	tab := scriptPage(t, "fetch")
	got := eval[[]string](t, tab, `(async () => {
  const { Session } = await import("/static/client.js");
  const log = [];
  const node = (id, status, users) => ({ id, addr: id + ".test:7070", http: id + ".test:7071", status, users, capacity: 100, age_ms: 0 });
  const first = { op: "directory", v: 1, service: "s", self: "n1", nodes: [node("n1", "up", 0), node("n2", "down", 0), node("n3", "up", 50), node("n4", "draining", 0)] };
  const later = { op: "directory", v: 1, service: "s", self: "n4", nodes: [node("n4", "draining", 0), node("n5", "up", 0)] };
  let commonUp = true;
  window.fetch = (url, opts) => {
    const host = new URL(url).host;
    log.push("fetch " + host);
    if (host === "n2.test:7071") {
      // Paused: nothing comes until the page gives up.
      return new Promise((_, reject) => opts.signal.addEventListener("abort", () => reject(new Error("aborted"))));
    }
    if (host === "common.test" && commonUp) {
      commonUp = false;
      return Promise.resolve({ ok: true, json: async () => first });
    }
    if (host === "n4.test:7071") return Promise.resolve({ ok: true, json: async () => later });
    return Promise.reject(new TypeError("unreachable"));
  };
  let n1 = null;
  class FakeWS {
    static OPEN = 1;
    constructor(url) {
      this.host = new URL(url).host;
      this.readyState = 0;
      const live = this.host === "n5.test:7071" || (this.host === "n1.test:7071" && !n1);
      if (this.host === "n1.test:7071" && !n1) n1 = this;
      log.push("dial " + this.host);
      setTimeout(() => {
        if (!live) { this.readyState = 3; this.onclose && this.onclose({ code: 1006, reason: "" }); return; }
        this.readyState = 1;
        this.onopen && this.onopen();
      }, 0);
    }
    send(data) {
      const m = JSON.parse(data);
      const reply = (r) => setTimeout(() => this.onmessage && this.onmessage({ data: JSON.stringify(r) }), 0);
      if (m.op === "hello") reply(this.host === "n1.test:7071" ? first : later);
      if (m.op === "attach") reply({ op: "attached", user: m.user, node: this.host.split(".")[0], session: "x" });
    }
    close() { this.readyState = 3; }
  }
  window.WebSocket = FakeWS;
  const s = new Session({ user: "ann", policy: "least-users", common: "http://common.test" });
  const attachedTo = (id) => new Promise((resolve, reject) => {
    const on = (e) => { if (e.detail.state === "attached" && e.detail.node.id === id) { s.removeEventListener("status", on); resolve(); } };
    s.addEventListener("status", on);
    setTimeout(() => reject(new Error("not attached to " + id + ": " + log.join("; "))), 20000);
  });
  let up = attachedTo("n1");
  s.start();
  await up;
  // n1 dies: the page must end on n5, which only n4 lists.
  up = attachedTo("n5");
  n1.readyState = 3;
  n1.onclose({ code: 1006, reason: "" });
  await up;
  s.close();
  return log;
})()`)
	joined := strings.Join(got, "\n")
	t.Logf("the client did:\n%s", joined)
	if strings.Contains(joined, "n2.test") {
		t.Errorf("the page asked n2, which its directory lists down")
	}
	if !strings.Contains(joined, "fetch n4.test:7071\ndial n5.test:7071") {
		t.Errorf("the page did not get the directory from n4, the node not down, and attach to n5 from it")
	}
}
