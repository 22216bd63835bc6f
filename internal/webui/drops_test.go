package webui_test

import (
	"strings"
	"testing"
)

// TestBrowserDropsInARowWaitLonger drives client.js against scripted
// stand-ins for fetch and WebSocket: a node that takes each session and
// drops it at once (a crash loop, say). As the Go client does
// (failover.Config.DropBase), the page must wait longer after each drop
// of a session that lived less than 10 s, up to 2 s, not come back
// within 250 ms every time. The random draws are scripted to take the
// top of each range, so the waits the page asks its timers for are the
// bounds themselves, less a microsecond.
func TestBrowserDropsInARowWaitLonger(t *testing.T) {
	tab := scriptPage(t, "drops")
	got := eval[[]string](t, tab, `(async () => {
  const { Session } = await import("/static/client.js");
  const node = { id: "n1", addr: "n1.test:7070", http: "n1.test:7071", status: "up", users: 0, capacity: 100, age_ms: 0 };
  const dir = { op: "directory", v: 1, service: "s", self: "n1", nodes: [node] };
  window.fetch = async () => ({ ok: true, json: async () => dir });
  let attaches = 0;
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
      if (m.op !== "attach") return;
      attaches++;
      reply({ op: "attached", user: m.user, node: "n1", session: "s" + attaches });
      // The first five sessions end as soon as they begin.
      if (attaches <= 5) setTimeout(() => { this.readyState = 3; this.onclose && this.onclose({ code: 1006, reason: "" }); }, 0);
    }
    close() { this.readyState = 3; }
  }
  window.WebSocket = FakeWS;
  const waits = [];
  const setTimeout0 = window.setTimeout;
  window.setTimeout = (f, ms, ...args) => {
    if (ms > 100 && ms % 1 !== 0) waits.push(Math.round(ms * 1000) + "us");
    return setTimeout0(f, ms, ...args);
  };
  const top = { intN: (n) => (n > 1000 ? n - 2 : 0) };
  const s = new Session({ user: "ann", policy: "least-users", common: "http://common.test", rand: top });
  await new Promise((resolve, reject) => {
    s.addEventListener("status", (e) => { if (e.detail.state === "attached" && attaches === 6) resolve(); });
    setTimeout0(() => reject(new Error("attached " + attaches + " times; waits " + waits.join(" "))), 25000);
    s.start();
  });
  s.close();
  window.setTimeout = setTimeout0;
  return waits;
})()`)
	want := []string{"249999us", "499999us", "999999us", "1999999us", "1999999us"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the page waited %v after the drops; want %v", got, want)
	}
}
