package webui_test

import (
	"testing"
)

// TestBrowserReaderOfABusyRoomPings drives client.js against a scripted
// node that sends the page a message every 20 ms, as a busy room does.
// The heartbeat pings only when the node is silent, so the page would
// send nothing at all, and a real node closes a session that sends
// nothing for its idle timeout (5 minutes): a page that only read was
// closed every five minutes. The page pings after its keep-alive
// (lowered here to 200 ms) without a line, however much arrives.
func TestBrowserReaderOfABusyRoomPings(t *testing.T) {
	tab := scriptPage(t, "keepalive")
	pings := eval[int](t, tab, `(async () => {
  const { Session } = await import("/static/client.js");
  const node = { id: "n1", addr: "n1.test:7070", http: "n1.test:7071", status: "up", users: 0, capacity: 100, age_ms: 0 };
  const dir = { op: "directory", v: 1, service: "s", self: "n1", nodes: [node] };
  window.fetch = async () => ({ ok: true, json: async () => dir });
  let pings = 0, done = null;
  class FakeWS {
    static OPEN = 1;
    constructor() {
      this.readyState = 0;
      setTimeout(() => { this.readyState = 1; this.onopen && this.onopen(); }, 0);
    }
    send(data) {
      const m = JSON.parse(data);
      const reply = (r) => setTimeout(() => this.onmessage && this.onmessage({ data: JSON.stringify(r) }), 0);
      if (m.op === "hello") reply(dir);
      // Pings on the attached connection only, not a second one's.
      if (m.op === "ping" && this.attached && ++pings === 2) done();
      if (m.op !== "attach") return;
      this.attached = true;
      reply({ op: "attached", user: m.user, node: "n1", session: "s1" });
      this.stream = setInterval(() => reply({ op: "pong" }), 20);
    }
    close() { this.readyState = 3; clearInterval(this.stream); }
  }
  window.WebSocket = FakeWS;
  const s = new Session({ user: "ann", policy: "least-users", common: "http://common.test" });
  s.keepAliveMs = 200;
  await new Promise((resolve, reject) => {
    done = resolve;
    setTimeout(() => reject(new Error("pings after attached: " + pings)), 20000);
    s.start();
  });
  s.close();
  return pings;
})()`)
	if pings < 2 {
		t.Errorf("the page pinged %d times while it only read", pings)
	}
}
