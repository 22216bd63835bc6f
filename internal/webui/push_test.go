package webui_test

import "testing"

// TestBrowserPushBeforeAttached drives client.js against a scripted
// WebSocket stand-in that does what a node may: count the session
// attached a moment before it says so, and push a change of the
// directory (a delta) in between. The page must send one attach, not
// a second one the node would refuse (bad_request), and apply the push
// to the directory it holds rather than take the delta for the whole.
func TestBrowserPushBeforeAttached(t *testing.T) {
	tab := scriptPage(t, "push")
	got := eval[[]string](t, tab, `(async () => {
  const { Session } = await import("/static/client.js");
  const log = [];
  const node = (id, users) => ({ id, addr: id + ".test:7070", http: id + ".test:7071", status: "up", users, capacity: 100, age_ms: 0 });
  const dir = { op: "directory", v: 1, service: "s", self: "n1", nodes: [node("n1", 0), node("n2", 5), node("n3", 50)] };
  window.fetch = async () => ({ ok: true, json: async () => dir });
  class FakeWS {
    static OPEN = 1;
    constructor() {
      this.readyState = 0;
      setTimeout(() => { this.readyState = 1; this.onopen && this.onopen(); }, 0);
    }
    send(data) {
      const m = JSON.parse(data);
      log.push("sent " + m.op);
      const reply = (r) => setTimeout(() => this.onmessage && this.onmessage({ data: JSON.stringify(r) }), 0);
      if (m.op === "hello") reply(dir);
      if (m.op === "attach") {
        reply({ op: "directory", v: 1, service: "s", self: "n1", delta: true, nodes: [node("n2", 6)] });
        setTimeout(() => reply({ op: "attached", user: m.user, node: "n1", session: "x" }), 0);
      }
    }
    close() { this.readyState = 3; }
  }
  window.WebSocket = FakeWS;
  const s = new Session({ user: "ann", policy: "least-users", common: "http://common.test" });
  await new Promise((resolve, reject) => {
    s.addEventListener("status", (e) => { if (e.detail.state === "attached") resolve(); });
    setTimeout(() => reject(new Error("not attached: " + log.join("; "))), 20000);
    s.start();
  });
  log.push("directory " + s.dir.nodes.map((n) => n.id + ":" + n.users).join(" "));
  s.close();
  return log;
})()`)
	want := []string{"sent hello", "sent attach", "directory n1:0 n2:6 n3:50"}
	wantTranscript(t, "the client did", got, want)
}
