package webui_test

import "testing"

// attachOrder runs client.js's Session in the browser against scripted
// fetch and WebSocket stand-ins, until it attaches, and returns what it
// did: the fetches and dials in order, then the node it attached to.
// stand-ins is JavaScript that sets window.fetch and window.WebSocket; it
// sees log (push a line to it), node(id, users) (a directory entry) and
// dir (the directory of n1, n2 and n3, with 0, 5 and 50 users: the
// least-users policy picks n1, then n2). The room page is idle without a
// user: nothing else on it fetches.
func attachOrder(t *testing.T, name, standIns string) []string {
	t.Helper()
	tab := scriptPage(t, name)
	return eval[[]string](t, tab, `(async () => {
  const { Session } = await import("/static/client.js");
  const log = [];
  const node = (id, users) => ({ id, addr: id + ".test:7070", http: id + ".test:7071", status: "up", users, capacity: 100, age_ms: 0 });
  const dir = { op: "directory", v: 1, service: "s", self: "n2", nodes: [node("n1", 0), node("n2", 5), node("n3", 50)] };
`+standIns+`
  const s = new Session({ user: "ann", policy: "least-users", common: "http://common.test" });
  await new Promise((resolve, reject) => {
    s.addEventListener("status", (e) => { if (e.detail.state === "attached") resolve(); });
    setTimeout(() => reject(new Error("not attached: " + log.join("; "))), 20000);
    s.start();
  });
  log.push("attached to " + s.node.id);
  s.close();
  return log;
})()`)
}

// TestBrowserFailoverOrder checks the order the design asks for: the
// picked node is dialled again (three dials in all), then the directory
// is asked of the common address, then of every node the client knows,
// the failed one last, and the failed node is left out of the next pick.
func TestBrowserFailoverOrder(t *testing.T) {
	got := attachOrder(t, "order", `
  const dead = new Set(["n1.test:7071"]);
  let commonUp = true;
  window.fetch = async (url) => {
    log.push("fetch " + url);
    const host = new URL(url).host;
    if ((host === "common.test" && !commonUp) || dead.has(host)) throw new TypeError("unreachable");
    if (host === "common.test") commonUp = false; // up for the first fetch only
    return { ok: true, json: async () => dir };
  };
  class FakeWS {
    static OPEN = 1;
    constructor(url, proto) {
      log.push("dial " + url + " " + proto);
      this.readyState = 0;
      const host = new URL(url).host;
      setTimeout(() => {
        if (dead.has(host)) { this.readyState = 3; this.onclose && this.onclose({ code: 1006, reason: "" }); return; }
        this.readyState = 1;
        this.onopen && this.onopen();
      }, 0);
    }
    send(data) {
      const m = JSON.parse(data);
      const reply = (r) => setTimeout(() => this.onmessage && this.onmessage({ data: JSON.stringify(r) }), 0);
      if (m.op === "hello") reply(dir);
      if (m.op === "attach") reply({ op: "attached", user: m.user, node: "n2", session: "x" });
    }
    close() { this.readyState = 3; }
  }
  window.WebSocket = FakeWS;`)
	want := []string{
		"fetch http://common.test/v1/directory",
		"dial ws://n1.test:7071/v1/ws switchboard.v1",
		"dial ws://n1.test:7071/v1/ws switchboard.v1",
		"dial ws://n1.test:7071/v1/ws switchboard.v1",
		"fetch http://common.test/v1/directory",
		// n1, left out, would be asked last: n2 and n3, both up, are
		// asked first, in random order, and the first answers.
		"fetch http://n2.test:7071/v1/directory",
		"dial ws://n2.test:7071/v1/ws switchboard.v1",
		"attached to n2",
	}
	if len(got) == len(want) && got[5] == "fetch http://n3.test:7071/v1/directory" {
		want[5] = got[5]
	}
	wantTranscript(t, "the client did", got, want)
}

// TestBrowserAtItsLimitPicksAnother: a node that refuses the connection
// with too_many_connections (alive, at its limit) is not dialled again
// and no directory is asked for: the page picks another node from the
// directory it holds, as the Go client does.
func TestBrowserAtItsLimitPicksAnother(t *testing.T) {
	got := attachOrder(t, "limit", `
  window.fetch = async (url) => {
    log.push("fetch " + url);
    return { ok: true, json: async () => dir };
  };
  class FakeWS {
    static OPEN = 1;
    constructor(url, proto) {
      log.push("dial " + url + " " + proto);
      this.readyState = 0;
      this.host = new URL(url).host;
      setTimeout(() => { this.readyState = 1; this.onopen && this.onopen(); }, 0);
    }
    send(data) {
      const m = JSON.parse(data);
      const reply = (r) => setTimeout(() => this.onmessage && this.onmessage({ data: JSON.stringify(r) }), 0);
      if (this.host === "n1.test:7071") {
        // Sent instead of serving the connection, then closed.
        reply({ op: "error", code: "too_many_connections", message: "the node holds as many connections as it admits", fatal: true });
        setTimeout(() => { this.readyState = 3; this.onclose && this.onclose({ code: 1000, reason: "" }); }, 0);
        return;
      }
      if (m.op === "hello") reply(dir);
      if (m.op === "attach") reply({ op: "attached", user: m.user, node: "n2", session: "x" });
    }
    close() { this.readyState = 3; }
  }
  window.WebSocket = FakeWS;`)
	wantTranscript(t, "the client did", got, []string{
		"fetch http://common.test/v1/directory",
		"dial ws://n1.test:7071/v1/ws switchboard.v1",
		"dial ws://n2.test:7071/v1/ws switchboard.v1",
		"attached to n2",
	})
}
