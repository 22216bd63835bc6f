package webui_test

import (
	"strings"
	"testing"
)

// fakeNodes is a script for the tests below: stand-ins for fetch and
// WebSocket, in the page, for the nodes n1 (no users) and n2 (some),
// so that least-users picks n1 first. Each node's attached carries
// limits[id]; a join is answered by joinReply(host, m) (a room state
// when it returns nothing). Every text and join sent is logged with the
// node it went to. A test may set window.fakeOnSend(ws, m, reply) to
// answer a message itself (true: answered). hold(host) keeps that node's next dials from
// opening until release(); drop(host) closes its open sockets and
// makes every later dial to it fail.
const fakeNodes = `
  const log = [];
  const node = (id, users) => ({ id, addr: id + ".test:7070", http: id + ".test:7071", status: "up", users, capacity: 100, age_ms: 0 });
  const dir = { op: "directory", v: 1, service: "s", self: "n1", nodes: [node("n1", 0), node("n2", 5)] };
  const dead = new Set(), held = new Map(), open = [];
  window.fetch = async (url) => {
    if (dead.has(new URL(url).host.split(".")[0])) throw new TypeError("unreachable");
    return { ok: true, json: async () => dir };
  };
  const hold = (id) => held.set(id, []);
  const release = (id) => { const q = held.get(id); held.delete(id); for (const f of q) f(); };
  const drop = (id) => {
    dead.add(id);
    for (const ws of open.filter((w) => w.id === id)) { ws.readyState = 3; ws.onclose && ws.onclose({ code: 1006, reason: "" }); }
  };
  class FakeWS {
    static OPEN = 1;
    constructor(url) {
      this.id = new URL(url).host.split(".")[0];
      this.readyState = 0;
      const opening = () => setTimeout(() => {
        if (dead.has(this.id)) { this.readyState = 3; this.onclose && this.onclose({ code: 1006, reason: "" }); return; }
        this.readyState = 1;
        open.push(this);
        this.onopen && this.onopen();
      }, 0);
      if (held.has(this.id)) held.get(this.id).push(opening); else opening();
    }
    send(data) {
      const m = JSON.parse(data);
      const reply = (r) => setTimeout(() => this.onmessage && this.onmessage({ data: typeof r === "string" ? r : JSON.stringify(r) }), 0);
      if (window.fakeOnSend && window.fakeOnSend(this, m, reply)) return;
      if (m.op === "hello") reply(dir);
      if (m.op === "attach") reply({ op: "attached", user: m.user, node: this.id, session: this.id, limits: limits[this.id] });
      if (m.op === "join") {
        log.push(this.id + " join " + m.room);
        reply(joinReply(this.id, m) || { op: "room", room: m.room, state: { seqs: {}, users: [m.user] } });
      }
      if (m.op === "text") log.push(this.id + " text " + m.seq + " " + m.t.length);
    }
    close() { this.readyState = 3; }
  }
  window.WebSocket = FakeWS;
  const settled = (s, id) => new Promise((resolve, reject) => {
    const f = (e) => { if (e.detail.state === "attached" && e.detail.node.id === id) { s.removeEventListener("status", f); resolve(); } };
    s.addEventListener("status", f);
    setTimeout(() => reject(new Error("not attached to " + id + ": " + log.join("; "))), 20000);
  });
  const roomState = (s) => new Promise((resolve) => {
    const f = (e) => { if (e.detail.state) { s.removeEventListener("room", f); resolve(); } };
    s.addEventListener("room", f);
  });
`

// TestBrowserRecutForSmallerNode: text typed while the page has no node
// was cut for the node before (4,096 bytes a chunk); the node it attaches
// to next takes 1,000. As the Go client does (client/session.go,
// recutLocked), the page cuts what never went out again for the new
// node, numbered on from the first of it, rather than send a chunk that
// node refuses for good, which would hold every later keystroke.
func TestBrowserRecutForSmallerNode(t *testing.T) {
	got := scriptedSession(t, "recut", `
  limits = { n1: { max_chunk: 4096 }, n2: { max_chunk: 1000 } };
`, `
  const first = settled(s, "n1"), joined = roomState(s);
  s.start();
  await first;
  s.join("lobby");
  await joined;
  s.sendText("lobby", "a".repeat(10));
  hold("n2");
  drop("n1");
  // No node now: this waits in the page, cut for n1.
  s.sendText("lobby", "b".repeat(2500));
  const second = settled(s, "n2"), rejoined = roomState(s);
  release("n2");
  await second;
  await rejoined;
`)
	want := []string{
		"n1 join lobby",
		"n1 text 1 10",
		"n2 join lobby",
		"n2 text 1 10",
		"n2 text 2 1000",
		"n2 text 3 1000",
		"n2 text 4 500",
	}
	wantTranscript(t, "the page sent", got, want)
}

// TestBrowserFirstJoinRefusedForgetsRoom: a node refuses the page's
// first join of a room for good (limit: the room is full). As the Go
// client does, the page is then not in the room: sending text to it is
// an error, not a chunk queued for ever, and the next node it attaches
// to is not asked for the room.
func TestBrowserFirstJoinRefusedForgetsRoom(t *testing.T) {
	got := scriptedSession(t, "refused", `
  joinReply = (id, m) => (m.room === "full" ? { op: "error", room: m.room, code: "limit", message: "room full is full" } : null);
`, `
  const first = settled(s, "n1");
  s.start();
  await first;
  const refused = new Promise((resolve) => s.addEventListener("error", (e) => resolve(e.detail.code)));
  const joined = roomState(s);
  s.join("full");
  log.push("error " + (await refused));
  s.join("lobby");
  await joined;
  try {
    s.sendText("full", "x");
    log.push("text to full taken");
  } catch (e) {
    log.push("text to full refused");
  }
  const second = settled(s, "n2"), rejoined = roomState(s);
  drop("n1");
  await second;
  await rejoined;
`)
	want := []string{
		"n1 join full",
		"error limit",
		"n1 join lobby",
		"text to full refused",
		"n2 join lobby",
	}
	wantTranscript(t, "the page did", got, want)
}

// TestBrowserRejoinRefusedForgetsRoom: after a failover the new node
// refuses the page's join of a room it was in for good (the room filled
// up meanwhile). As the Go client does, the page is then out of the
// room: sendText throws rather than queue text for ever.
func TestBrowserRejoinRefusedForgetsRoom(t *testing.T) {
	got := scriptedSession(t, "rejoin-refused", `
  joinReply = (id, m) => (id === "n2" ? { op: "error", room: m.room, code: "limit", message: "room lobby is full" } : null);
`, `
  const first = settled(s, "n1");
  s.start();
  await first;
  const joined = roomState(s);
  s.join("lobby");
  await joined;
  const second = settled(s, "n2");
  const refused = new Promise((resolve) => s.addEventListener("error", (e) => resolve(e.detail.code)));
  drop("n1");
  await second;
  log.push("error " + (await refused));
  try {
    s.sendText("lobby", "x");
    log.push("text to lobby taken");
  } catch (e) {
    log.push("text to lobby refused");
  }
`)
	want := []string{
		"n1 join lobby",
		"n2 join lobby",
		"error limit",
		"text to lobby refused",
	}
	wantTranscript(t, "the page did", got, want)
}

// TestBrowserRemovedForgetsRoom: the page's node says, unasked, that the
// page is out of a room (removed: the room filled while the node was cut
// off, and the node's join again for the page was refused). As the Go
// client does (TestRemovedLeavesTheRoom), the page asks once more: limit
// leaves it out of the room, a state puts it back. A limit refusal that
// answers its own re-join on the connection it is in the room on keeps
// the room.
func TestBrowserRemovedForgetsRoom(t *testing.T) {
	got := scriptedSession(t, "removed", `
  let joins = 0, push = null;
  const refusals = { 2: "joining room lobby: its state does not fit a line", 3: "room lobby is full" };
  joinReply = (id, m) => {
    const why = refusals[++joins];
    return why ? { op: "error", room: m.room, code: "limit", message: why } : null;
  };
  window.fakeOnSend = (ws, m, reply) => { if (m.op === "attach") push = reply; return false; };
`, `
  const first = settled(s, "n1");
  s.start();
  await first;
  let joined = roomState(s);
  s.join("lobby");
  await joined;
  const text = () => {
    try {
      s.sendText("lobby", "x");
      log.push("text to lobby taken");
    } catch (e) {
      log.push("text to lobby refused");
    }
  };
  const refusal = () => new Promise((resolve) => {
    const f = (e) => { s.removeEventListener("error", f); resolve(e.detail.code); };
    s.addEventListener("error", f);
  });
  const removed = () => push({ op: "error", room: "lobby", code: "removed", message: "room lobby is full; this session lost its place" });
  let refused = refusal();
  s.join("lobby");
  log.push("re-join " + (await refused));
  text();
  refused = refusal();
  removed();
  log.push("unasked " + (await refused));
  refused = refusal();
  log.push("asked again: " + (await refused));
  text();
  joined = roomState(s);
  s.join("lobby");
  await joined;
  refused = refusal();
  joined = roomState(s);
  removed();
  log.push("unasked " + (await refused));
  await joined;
  log.push("asked again: in");
  text();
`)
	want := []string{
		"n1 join lobby",
		"n1 join lobby",
		"re-join limit",
		"n1 text 1 1",
		"text to lobby taken",
		"n1 join lobby", // asked once more, as the removal is handled
		"unasked removed",
		"asked again: limit",
		"text to lobby refused",
		"n1 join lobby",
		"n1 join lobby",
		"unasked removed",
		"asked again: in",
		"n1 text 1 1", // a room joined anew numbers from 1
		"text to lobby taken",
	}
	wantTranscript(t, "the page did", got, want)
}

// wantTranscript fails t when the page's transcript got is not want,
// showing both; what says whose it is ("the page sent").
func wantTranscript(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
