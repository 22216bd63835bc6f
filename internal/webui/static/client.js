// client.js: the browser's Switchboard client. It does what the Go
// client does (client/session.go): fetch the directory from the common
// address (the node that served the page), pick a node with the policies
// of pick.js, open a WebSocket to it (subprotocol switchboard.v1), say
// hello and attach. When that fails, or the session drops, what it tries
// next is what the Go client would: failover.js, a port of package
// failover, says when to dial a node again, when to pick again and when
// to fetch the directory again (from the common address, then from the
// nodes it knows that are not down). Attached, it keeps each room's text
// until acknowledged and sends it again, with the same seqs, after a
// failover. A node that drains, rebalances or cannot store
// asks it to move (op "move"): it attaches to another node before it lets
// the old connection go, as the Go client does (client/move.go).
//
// Events (a Session is an EventTarget; each event's detail is given):
//   status    {state, node, reason, note}   connecting / attached / lost / failed
//   moved     {from, node, reason}           asked to move, the session moved, make-before-break
//   room      {room, state}                  a full state: replace the view
//   text      {room, from, seq, t}           a delivery
//   presence  {room, user, event}
//   ack       {room, seq}
//   error     {code, message, room, seq}
//   log       {message}                      a line for the connection log

import { byName, NoNodeError, mathRand } from "./pick.js";
import { Machine } from "./failover.js";

export const SUBPROTOCOL = "switchboard.v1";
// ATTEMPT_MS bounds each step of an attach, as the Go client's attempt
// timeout (client.WithAttemptTimeout, 2 s) does: the connection and the
// hello's directory, then the attach's answer; and each directory
// fetch. A node that misses it timed out and is not dialled again in
// that flow (failover.js).
const ATTEMPT_MS = 2000;
// How long a directory fetch goes unanswered before the next address is
// asked as well: RFC 8305's Connection Attempt Delay, as the Go client's
// hellos (client.DefaultHelloStagger).
const STAGGER_MS = 250;
// How many directory fetches are under way at once at most.
const MAX_FETCHES = 2;
// The codes of an attach refused for now by this node alone. A node that
// is going or at its connection limit is alive and would refuse again at
// once: the page picks another (REFUSED_CODES, as full and draining,
// which carry a directory); one too slow to attach is as a failed dial,
// tried again (DIAL_FAILED_CODES; client/session.go, attach).
// unauthorized asks for a fresh token; any other code is a refusal no
// retry mends, and the page stops (a move's attach refused so ends only
// the move).
const REFUSED_CODES = new Set(["full", "draining", "shutdown", "too_many_connections"]);
const DIAL_FAILED_CODES = new Set(["attach_timeout"]);
// The heartbeat, as the Go client's (client/heartbeat.go): after
// HEARTBEAT_MS without a message the session pings; a ping unanswered for
// SILENT_MS - HEARTBEAT_MS makes it ask the node on a second connection
// whether it runs at all, and one unanswered for SILENT_MS takes the node
// for gone, unless the second connection got its pong (busy, not gone:
// the wait grows to SILENT_MS, 3, 7... times that, up to BUSY_MAX_MS),
// for at most MAX_BUSY_MS without a message (Heartbeat.MaxBusy).
const HEARTBEAT_MS = 500;
const SILENT_MS = 1500;
const BUSY_MAX_MS = 15000;
const MAX_BUSY_MS = 60000;
// KEEPALIVE_MS is the longest the page sends the node nothing: then it
// pings, however much arrives (client.DefaultKeepAlive). The heartbeat
// pings only when the node is silent, and a node closes a session that
// sends nothing for its idle timeout (5 minutes), so a page that only
// reads a busy room would be closed every five minutes.
const KEEPALIVE_MS = 60000;
const MOVE_TIMEOUT_MS = 10000; // how long a move searches for a new node
const RETIRE_AFTER_MS = 10000; // how long a move keeps the old connection while rooms rejoin
// Pauses before a room is asked for again after a refusal, as the Go
// client's (unavailableRetry, rateRetry; retryDelay): storage electing a
// leader comes back within seconds; a rate limit refills, and a room's
// state that did not fit (limit) shrinks only as its members come and
// go, so those wait the longer. RATE_RETRY_MS is also how often a paced
// room sends a round (client/pace.go).
const UNAVAILABLE_RETRY_MS = 250;
const RATE_RETRY_MS = 1000;
// MAX_FIRST_WINDOW bounds the first window after a rate refusal: a
// typist who passed the rate after a long time passed many chunks in the
// round (client/pace.go, maxFirstWindow).
const MAX_FIRST_WINDOW = 64;
// DEFAULT_MAX_CHUNK is the longest chunk, in UTF-8 bytes, for a node that
// does not say its limits: the nodes' default MaxChunk.
const DEFAULT_MAX_CHUNK = 4096;
// MAX_CHUNK_LIMIT is the largest max_chunk a node may announce: a longer
// chunk could make a line no node reads.
const MAX_CHUNK_LIMIT = 8192;

// MAX_ASKED bounds the joins of a room the page follows unanswered on a
// connection; past it (a node that answers none) it forgets them
// (client/session.go, maxAsked).
const MAX_ASKED = 256;

// SENT marks a chunk that went out on some connection (a symbol, so
// that JSON.stringify leaves it out of the message).
const SENT = Symbol("sent");

// MAX_SEQ is the highest text seq (wire.MaxSeq): 2^53-1, the last a
// JavaScript number counts one by one.
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

// MAX_LINE is the longest line of the protocol, in bytes (wire.MaxLine);
// a node sends each line as one WebSocket message.
const MAX_LINE = 64 << 10;

// parseFrame reads a node's WebSocket message: the message object, or
// null for one that is longer than a line may be, in bytes of UTF-8 as
// the node wrote them, or is not a JSON object. A string of n UTF-16
// units takes n to 3n bytes: only one that may pass either way is
// measured.
function parseFrame(data) {
  if (typeof data !== "string" || data.length > MAX_LINE) return null;
  if (data.length * 3 > MAX_LINE && new TextEncoder().encode(data).length > MAX_LINE) return null;
  try {
    const m = JSON.parse(data);
    return m && typeof m === "object" && !Array.isArray(m) ? m : null;
  } catch {
    return null;
  }
}

// cutText cuts text into pieces of at most max UTF-8 bytes, never inside
// a character (the two halves of a surrogate pair would each go out as
// U+FFFD; a lone surrogate counts as U+FFFD's three bytes); a piece is
// longer only when one character is. Text that fits is one piece, the
// empty text included (client/session.go, cutText).
export function cutText(text, max) {
  const pieces = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < text.length; ) {
    const c = text.codePointAt(i);
    const n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (bytes + n > max && i > start) {
      pieces.push(text.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += n;
    i += c > 0xffff ? 2 : 1;
  }
  if (start < text.length || pieces.length === 0) pieces.push(text.slice(start));
  return pieces;
}

// httpBase turns a node's HTTP address into a base URL with the page's
// scheme (https pages reach nodes over https and wss).
function httpBase(addr, page) {
  return `${page.protocol}//${addr}`;
}

// shuffle puts a in a random order, in place, with r ({intN}).
// newDevice draws a device name: 128 random bits as 32 hex digits.
// crypto.getRandomValues works on a page served over plain HTTP too,
// where crypto.randomUUID does not.
function newDevice() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function shuffle(r, a) {
  for (let i = a.length - 1; i > 0; i--) {
    const j = r.intN(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
}

export class Session extends EventTarget {
  // opts: {user, token, group, policy, common (a base URL, default the
  // page's origin), rand, staggerMs}
  constructor(opts) {
    super();
    this.user = opts.user;
    this.token = opts.token || ""; // a signed token, where the service authenticates users
    // The device this page attaches as, the same on every node it moves
    // to, so that the user's chunks typed at the same moment on another
    // device are never taken for resends of its own (docs/protocol.md,
    // "Attach"). Random per page load, as the Go client's per session.
    this.device = opts.device !== undefined ? opts.device : newDevice();
    this.group = opts.group || "";
    this.rand = opts.rand || mathRand;
    this.policy = byName(opts.policy || "default", this.rand);
    // The failover order, its cool-downs and its backoffs.
    this.machine = new Machine(this.rand);
    // How long a directory fetch goes unanswered before the next
    // address is asked too (fetchDirectory).
    this.staggerMs = opts.staggerMs || STAGGER_MS;
    this.page = new URL(opts.common || location.origin);
    this.common = this.page.origin;
    this.dir = null;
    this.dirAt = 0;
    this.deltas = 0; // pushes of changes applied (applyDelta)
    this.ws = null;
    this.node = null;
    this.reason = "";
    // name -> {nextSeq, unacked: [msg], out, pushed, sentSeq, numbered,
    // synced, viaOld, joinedOn, removedOn, asked, askedOn, retry, window,
    // roundSeq, roundAt, pump}.
    // out: how many of the leading unacked chunks went out to a node and
    // were not refused since (the room may have shown them: they keep
    // their seqs); the rest wait for the room's next state.
    // pushed: how many of them went out since the room's last state (on
    // the connection it came on): text goes out in order from there. It
    // is at most out.
    // sentSeq: the highest seq the page sent in the room, acknowledged or
    // not: a delivery of the user's own text at or below it may be an
    // echo of the page's chunk; above it, it cannot be (handle, "text").
    // window, above 0 after a rate refusal, paces the room's text: at
    // most window chunks a round, roundSeq the first seq of the current
    // round, begun at roundAt; pump, the timer that sends what waits
    // once the round or the connection's budget allows (client/pace.go).
    // synced: the room's state came on this.ws, so text goes out on it;
    // viaOld: a move is under way and the room is still joined on the
    // connection it leaves (this.retiring), so text goes out there.
    // joinedOn: the connection the room's last state came on, the one
    // the page is in the room on. removedOn: the connection the node
    // said removed on, until the room's next state; the chunks on their
    // way there meanwhile get bad_request (not in the room) and wait for
    // that state, as refused ones do (client/session.go, removedOn).
    // asked: how many joins of the room went out on askedOn and are not
    // answered yet (sendJoin, answered).
    this.rooms = new Map();
    this.closed = false;
    // ignoreLimits, set only by tests, sends as to nodes that do not say
    // their limits (older than them): no budget, pacing after refusals.
    this.ignoreLimits = false;
    this.limits = null; // what the node said with attached
    // tokenRefused: a node refused the token (unauthorized). Every node
    // would, so the session stops trying until reauth gives another; the
    // rooms and their unacknowledged text are kept.
    this.tokenRefused = false;
    // halted: a node refused the attach in a way that neither a retry
    // nor a fresh token mends (bad_request: a user name the service does
    // not take, say); the session stops and says why. A move's attach
    // refused so only ends the move (steps).
    this.halted = "";
    this.attaches = 0;
    this.pinger = null;
    this.lastRx = 0; // when the last message came on this.ws
    this.lastTx = 0; // when the page last sent on this.ws
    // keepAliveMs is KEEPALIVE_MS; tests set it lower.
    this.keepAliveMs = KEEPALIVE_MS;
    this.hb = null; // the heartbeat's round: {pingAt, wait, busy, probe, probeAt, probeOK}
    this.moving = null; // {ws, node, lost, held, next}: the connection a move is leaving, until attached elsewhere, what it carried meanwhile, and a move the new node asked for meanwhile
    this.retiring = null; // that connection once attached elsewhere, until the rooms have rejoined
    this.retireTimer = null;
    this.moves = 0;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  log(message) {
    this.emit("log", { message });
  }

  // start attaches, failing over until it succeeds or close() is called.
  async start() {
    await this.connect("starting");
  }

  // reauth attaches again with a fresh token after a node refused the
  // one before (docs/protocol.md: on unauthorized, get a new token). The
  // text typed meanwhile was kept, and goes out once the rooms are joined.
  reauth(token) {
    if (this.closed || !this.tokenRefused) return;
    this.token = token;
    this.tokenRefused = false;
    // Already attached: the next attach uses it.
    if (this.ws) return;
    this.connect("attaching with a fresh token");
  }

  close() {
    this.closed = true;
    for (const r of this.rooms.values()) stopPump(r);
    clearInterval(this.pinger);
    this.endProbe();
    this.retire();
    if (this.ws) this.ws.close();
  }

  // fetchDirectory asks for the directory, as the Go client says hello
  // (client/session.go, helloOrder): at the common address, then at the
  // nodes of the directory it holds that are not down, those up first,
  // each group in random order; then the addresses of nodes left out
  // (isExcluded), wherever they are listed; last the nodes listed down (a
  // node cut off in a minority lists its healthy peers down before it
  // steps aside). The fetches are staggered, as the Go client staggers
  // its hellos' connections (firstHello, RFC 8305): the first at once,
  // the next as soon as one fails or after staggerMs (250 ms) without an
  // answer, two at most under way at once; the first directory taken
  // wins and the fetches still under way are aborted. A paused node or a
  // black hole then costs staggerMs, not a whole ATTEMPT_MS. (fetch
  // hides whether its connection is made, which the Go client waits for
  // before it asks another node; two at once bound what a slow service
  // gets from each page, a directory fetch being cheap for a node.) It
  // returns the id of the node that answered ("" if it did not say), or
  // null when none did.
  fetchDirectory(signal) {
    const now = Date.now();
    const late = [];
    const up = [];
    const other = [];
    const down = [];
    const cooling = new Set();
    for (const n of this.dir?.nodes || []) {
      if (n.http && this.isExcluded(n.id, now)) cooling.add(httpBase(n.http, this.page));
    }
    for (const n of this.dir?.nodes || []) {
      if (!n.http) continue;
      const base = httpBase(n.http, this.page);
      if (cooling.has(base)) late.push(base);
      else if (n.status === "down") down.push(base);
      else if (n.status === "up") up.push(base);
      else other.push(base);
    }
    const first = cooling.has(this.common) ? [] : [this.common];
    if (!first.length) late.unshift(this.common);
    shuffle(this.rand, up);
    shuffle(this.rand, other);
    shuffle(this.rand, down);
    const order = [...new Set([...first, ...up, ...other, ...late, ...down])];
    return new Promise((resolve) => {
      let next = 0;
      let pending = 0;
      let done = false;
      let stagger = null;
      const running = new Set(); // the AbortControllers of the fetches under way
      const finish = (self) => {
        if (done) return;
        done = true;
        clearTimeout(stagger);
        for (const ctl of running) ctl.abort();
        signal?.removeEventListener("abort", stop); // not left on the flow's signal
        resolve(self);
      };
      const stop = () => finish(null);
      const start = () => {
        if (done || next >= order.length) return;
        const base = order[next++];
        pending++;
        clearTimeout(stagger);
        stagger = setTimeout(() => {
          if (pending < MAX_FETCHES) start(); // else the next failure starts it
        }, this.staggerMs);
        const ctl = new AbortController();
        running.add(ctl);
        // The timer runs on through the body: a node that sends the
        // headers and part of the body, then goes silent, would hold the
        // flow for ever; the abort also ends a body read under way.
        const t = setTimeout(() => ctl.abort(), ATTEMPT_MS);
        (async () => {
          try {
            const resp = await fetch(base + "/v1/directory", { signal: ctl.signal, cache: "no-store" });
            if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
            const d = await resp.json();
            if (done) return; // another answered first
            if (!this.setDirectory(d)) throw new Error("not a directory");
            this.log(`directory from ${base === this.common ? "the common address" : base}: ${d.nodes.length} nodes`);
            finish(d.self || "");
          } catch (e) {
            if (!done) this.log(`no directory from ${base}: ${e.message}`);
          } finally {
            clearTimeout(t);
            running.delete(ctl);
            pending--;
            if (!done) {
              if (next < order.length) start(); // a failure starts the next at once
              else if (pending === 0) finish(null);
            }
          }
        })();
      };
      if (signal?.aborted || order.length === 0) {
        resolve(null);
        return;
      }
      signal?.addEventListener("abort", stop, { once: true });
      start();
    });
  }

  // setDirectory takes a whole directory in place of the one held, and
  // reports whether it did: one that is not a directory (isDirectory) is
  // refused and the one held kept, as the Go client takes no message
  // that does not decode; held, it would throw in every later pick.
  setDirectory(d) {
    if (!isDirectory(d, false)) {
      this.log("a node sent a directory that is not one; kept the one held");
      return false;
    }
    this.dir = { service: d.service, self: d.self, nodes: d.nodes };
    this.dirAt = Date.now();
    return true;
  }

  // applyDelta applies a push of changes to the directory held, as the Go
  // client does (client/delta.go): the nodes it lists replace those held
  // or join them, the gone ones leave, and the others age by the time
  // since the directory came. The page asks for no bound, so every
  // newcomer joins.
  applyDelta(m) {
    if (!isDirectory(m, true)) {
      this.log("a node sent directory changes that are not; kept the directory held");
      return false;
    }
    const now = Date.now();
    const age = this.dir ? now - this.dirAt : 0;
    const gone = new Set(m.gone || []);
    const nodes = (this.dir ? this.dir.nodes : [])
      .filter((n) => !gone.has(n.id))
      .map((n) => ({ ...n, age_ms: (n.age_ms || 0) + age }));
    for (const n of m.nodes || []) {
      const i = nodes.findIndex((h) => h.id === n.id);
      if (i >= 0) nodes[i] = n;
      else nodes.push(n);
    }
    this.dir = { service: m.service, self: m.self, nodes };
    this.dirAt = now;
    this.deltas++;
    return true;
  }

  // isExcluded reports whether node id is in its cool-down, or left out
  // of the flow until it has tried every other node (failover.js).
  isExcluded(id, now = Date.now()) {
    return this.machine.excluded(id, now);
  }

  // connect runs the failover order until attached: from the start, or,
  // after a drop (lost is the node that dropped the session), from the
  // directory the session holds.
  async connect(why, lost = null) {
    if (this.tokenRefused) {
      this.emit("status", { state: "failed", node: null, reason: "", note: `${why}; the token was refused: give a fresh one` });
      return;
    }
    if (this.halted) return;
    this.emit("status", { state: "connecting", node: null, reason: "", note: why });
    const now = Date.now();
    const first = lost
      ? this.machine.next({ kind: "dropped", node: lost.id, held: !!this.dir }, now)
      : this.machine.next({ kind: "begin" }, now);
    await this.flow(first);
  }

  // flow takes the steps the failover machine asks for, from act, until
  // attached (true) or until it stops (false): the session closed, a
  // refusal no retry mends, or the flow's deadline (a move's). The
  // machine looks at the deadline between steps; one step (a directory
  // asked of every address known, each after the last's ATTEMPT_MS)
  // could outrun it by far, so the deadline also ends the step under way
  // (client/session.go does the same).
  async flow(act) {
    const ctl = new AbortController();
    const deadline = this.machine.deadline;
    const timer = deadline ? setTimeout(() => ctl.abort(), Math.max(0, deadline - Date.now())) : null;
    try {
      return await this.steps(act, ctl.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  // steps is flow's loop; signal ends the step under way.
  async steps(act, signal) {
    let picked = null;
    while (!this.closed && !this.tokenRefused && !this.halted) {
      if (act.after > 0) await sleep(act.after);
      if (this.closed) break;
      let o;
      switch (act.step) {
        case "refresh": {
          const self = await this.fetchDirectory(signal);
          o = self === null ? { kind: "directory failed" } : { kind: "fetched", node: self };
          break;
        }
        case "pick":
          try {
            picked = this.policy(this.dir ? this.dir.nodes : [], {
              group: this.group,
              exclude: (id) => this.isExcluded(id),
              ageMs: Date.now() - this.dirAt,
              // No self: the Go client names the node that answered its
              // hello, to stay on that connection; the page fetched the
              // directory over HTTP and has no connection to keep, and
              // naming the node that served it would draw every page
              // opened at once to that one node.
            });
            this.log(`picked ${picked.node.id}: ${picked.reason}`);
            o = { kind: "picked", node: picked.node.id };
          } catch (e) {
            if (!(e instanceof NoNodeError)) throw e;
            this.log(e.message || "no node to pick");
            // Moving, the session is still attached where it was.
            if (!this.moving) this.emit("status", { state: "connecting", node: null, reason: "", note: e.message });
            o = { kind: "no candidate" };
          }
          break;
        case "dial":
        case "retry": {
          const node = picked.node;
          const out = await this.attachTo(node, picked.reason, signal);
          if (out.ok) {
            this.machine.next({ kind: "attached", node: node.id }, Date.now());
            return true;
          }
          if (out.fatal && this.moving) {
            // A move's attach refused: the move failed, not the session,
            // which is still attached where it was and stays there until
            // that node closes the connection (then it fails over as
            // after any drop). The Go client's attach returns the error,
            // and moveFrom reports that the session did not move
            // (client/move.go).
            this.log(`${node.id}: ${out.fatal}; the move gives up`);
            return false;
          }
          if (out.fatal) {
            if (out.token) this.tokenRefused = true;
            else this.halted = out.fatal;
            this.log(`${node.id}: ${out.fatal}; ${out.token ? "waiting for a fresh token" : "not trying again"}`);
            this.emit("status", { state: "failed", node: null, reason: "", note: out.fatal });
            return false;
          }
          if (out.refused) {
            // Full or draining: its fresh directory came with the
            // refusal; going or at its limit: the directory held.
            if (out.directory) this.setDirectory(out.directory);
            o = { kind: "refused", node: node.id };
          } else {
            o = { kind: out.timeout ? "timeout" : "dial failed", node: node.id };
          }
          act = this.machine.next(o, Date.now());
          const then = { retry: "trying it again", pick: "picking another node", refresh: "asking for a fresh directory" }[act.step];
          this.log(`${node.id}: ${out.error}${then ? "; " + then : ""}`);
          continue;
        }
        case "fail":
          return false;
        default:
          throw new Error(`failover: unexpected step ${act.step}`);
      }
      act = this.machine.next(o, Date.now());
    }
    return false;
  }

  // attachTo opens a WebSocket to node and attaches; it resolves to
  // {ok}, {refused, directory, error}, {fatal, token} (a refusal no
  // retry mends; token: a fresh token would) or {error, timeout}, the
  // last also when signal ends the attempt (an attach answered before
  // that stands).
  attachTo(node, reason, signal) {
    return new Promise((resolve) => {
      if (!node.http) {
        resolve({ error: "the node has no HTTP address" });
        return;
      }
      const scheme = this.page.protocol === "https:" ? "wss:" : "ws:";
      let ws;
      try {
        ws = new WebSocket(`${scheme}//${node.http}/v1/ws`, SUBPROTOCOL);
      } catch (e) {
        resolve({ error: e.message });
        return;
      }
      let settled = false;
      // A move that came before attached (nodes before 2026-12-02 could
      // send one there), acted on once attached.
      let early = null;
      const settle = (v) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", late); // not left on the flow's signal
        if (!v.ok) {
          ws.onclose = null;
          ws.close();
        }
        resolve(v);
      };
      // Each step has ATTEMPT_MS: the connection and the hello's
      // directory, then the attach's answer. A node that misses it timed
      // out (it may have taken the connection and be paused).
      const late = () => settle({ error: "no answer in time", timeout: true });
      let timer = setTimeout(late, ATTEMPT_MS);
      if (signal?.aborted) {
        late();
        return;
      }
      signal?.addEventListener("abort", late, { once: true });
      let hello = false; // the hello's directory came, and the attach went out
      ws.onopen = () => {
        // deltas: pushes then carry only the nodes that changed
        // (docs/protocol.md, "Pushes of changes"; applyDelta).
        ws.send(JSON.stringify({ op: "hello", v: 1, client: "switchboard-web/1", group: this.group, deltas: true }));
      };
      ws.onerror = () => {};
      ws.onclose = (ev) => settle({ error: `connection closed (${ev.code})` });
      ws.onmessage = (ev) => {
        const m = parseFrame(ev.data);
        if (!m) {
          // As the Go client does (its line reader's bound, a line that
          // does not decode): the node is broken or hostile, and the
          // page leaves it as after a drop rather than hold a message
          // of any size or guess at one it cannot read.
          ws.onmessage = null;
          if (settled) this.dropped(ws, { code: 4002, reason: "a message too long or not JSON" });
          else settle({ error: "the node sent a message too long or not JSON" });
          ws.close(4002, "bad message");
          return;
        }
        if (settled) {
          this.handle(ws, m);
          return;
        }
        if (m.op === "directory" && hello) {
          // A push between the attach and its answer (the node counts
          // the session attached a moment before it says so).
          if (m.delta) this.applyDelta(m);
          else this.setDirectory(m);
        } else if (m.op === "directory") {
          hello = true;
          this.setDirectory(m);
          const attach = { op: "attach", user: this.user };
          if (this.token) attach.token = this.token;
          if (this.device) attach.device = this.device;
          ws.send(JSON.stringify(attach));
          clearTimeout(timer);
          timer = setTimeout(late, ATTEMPT_MS);
        } else if (m.op === "move") {
          early = m;
        } else if (m.op === "attached" && this.closed) {
          // close() came while attaching: this connection goes too.
          settle({ error: "the session was closed" });
        } else if (m.op === "attached") {
          this.attached(ws, node, reason, m);
          settle({ ok: true });
          if (early) this.handle(ws, early);
        } else if (m.op !== "error") {
          return;
        } else if (REFUSED_CODES.has(m.code)) {
          // Alive, and not taking the session now: another node.
          settle({ refused: true, directory: m.directory, error: `${m.code}: ${m.message}` });
        } else if (!hello || DIAL_FAILED_CODES.has(m.code)) {
          // Refused before the hello was answered, or too slow to
          // attach: as if the dial had failed.
          settle({ error: `${m.code}: ${m.message}` });
        } else {
          // Every node would say the same: retrying cannot mend it, a
          // fresh token may (unauthorized).
          settle({ fatal: `${m.code}: ${m.message}`, token: m.code === "unauthorized" });
        }
      };
    });
  }

  attached(ws, node, reason, m) {
    this.ws = ws;
    budgets.set(ws, newBudget(m.limits, Date.now())); // kept to: pump
    this.limits = m.limits || null;
    this.node = node;
    this.reason = reason;
    this.attaches++;
    ws.onclose = (ev) => this.dropped(ws, ev);
    this.emit("status", { state: "attached", node, reason, note: `session ${m.session}` });
    clearInterval(this.pinger);
    this.endProbe();
    this.lastRx = this.lastTx = Date.now();
    this.hb = { pingAt: 0, wait: SILENT_MS, busy: 0, probe: null, probeAt: 0, probeOK: false };
    this.pinger = setInterval(() => this.beat(), HEARTBEAT_MS / 2);
    for (const [name, r] of this.rooms) {
      r.synced = false;
      // Text cut for the node before may be longer than this one takes.
      recut(r, this.maxChunk());
      // A retry planned on the connection before is moot: this join
      // replaces it.
      clearTimeout(r.retry);
      r.retry = null;
      stopPump(r); // its state starts the next round
      this.sendJoin(name, r);
    }
  }

  dropped(ws, ev) {
    if (this.moving && ws === this.moving.ws) {
      // The draining node closed it while the move searches: the move
      // carries on, and fails over as after a drop if it finds nothing.
      this.moving.lost = ev;
      return;
    }
    if (ws !== this.ws) return;
    this.lose(`lost ${this.node.id} (connection closed, ${ev.code}${ev.reason ? ": " + ev.reason : ""})`);
  }

  // lose leaves the node of this.ws and fails over: the failover machine
  // leaves that node out for its cool-down (until it answers a directory
  // fetch itself, as a restarted node does) and, after a short random
  // wait that spreads the sessions of a dead node out, picks from the
  // directory the session holds.
  lose(why) {
    this.ws = null;
    clearInterval(this.pinger);
    this.endProbe();
    const node = this.node;
    this.node = null;
    if (this.closed) return;
    for (const r of this.rooms.values()) r.synced = false;
    this.log(why);
    this.emit("status", { state: "lost", node, reason: "", note: why });
    this.connect(why, node);
  }

  // beat runs the heartbeat on this.ws. Each step is taken on what did
  // or did not come since the ping went out, never on how long a timer
  // took to fire: a hidden tab's timers are slowed to one a second or
  // less, and a late timer alone must not take a node for gone.
  beat() {
    const ws = this.ws, hb = this.hb;
    // A move reads nothing more from its old connection; it has its
    // own bound (MOVE_TIMEOUT_MS), and the connection's close.
    if (!ws || !hb || this.closed || this.moving) return;
    const now = Date.now();
    if (now - this.lastTx >= this.keepAliveMs) this.send({ op: "ping" });
    if (hb.pingAt && this.lastRx >= hb.pingAt) {
      // Answered.
      hb.pingAt = 0;
      hb.wait = SILENT_MS;
      hb.busy = 0;
      this.endProbe();
    }
    if (!hb.pingAt) {
      if (now - this.lastRx >= HEARTBEAT_MS) {
        this.send({ op: "ping" });
        hb.pingAt = now;
      }
      return;
    }
    const silent = now - hb.pingAt;
    if (!hb.probe && silent >= hb.wait - HEARTBEAT_MS) {
      this.probe(this.node);
      return;
    }
    if (silent < hb.wait || !hb.probe || now - hb.probeAt < HEARTBEAT_MS) return;
    if (hb.probeOK && now - this.lastRx < MAX_BUSY_MS) {
      // Busy, not gone: wait longer, with a new second connection then.
      hb.busy++;
      hb.wait = Math.min(SILENT_MS * (2 ** hb.busy - 1), BUSY_MAX_MS);
      hb.pingAt = now;
      this.endProbe();
      this.log(`${this.node.id} is slow to answer but runs; waiting ${hb.wait} ms more`);
      return;
    }
    ws.onclose = null;
    ws.close();
    if (hb.probeOK) {
      this.lose(`lost ${this.node.id} (busy: it answers a second connection but sent this one nothing for ${now - this.lastRx} ms)`);
      return;
    }
    this.lose(`lost ${this.node.id} (silent: no answer for ${silent} ms, nor on a second connection)`);
  }

  // probe asks node, on a connection of its own, for a pong before any
  // hello: a node that runs at all answers at once.
  probe(node) {
    const hb = this.hb;
    const scheme = this.page.protocol === "https:" ? "wss:" : "ws:";
    hb.probeAt = Date.now();
    hb.probeOK = false;
    let p;
    try {
      p = new WebSocket(`${scheme}//${node.http}/v1/ws`, SUBPROTOCOL);
    } catch {
      hb.probe = { close() {} };
      return;
    }
    hb.probe = p;
    p.onopen = () => p.send(JSON.stringify({ op: "ping" }));
    p.onerror = () => {};
    // Any message counts as an answer, as in the Go client
    // (client/heartbeat.go, probe): a node too busy to take one more
    // connection says so (too_many_connections) and is alive all the same.
    p.onmessage = () => {
      if (this.hb && this.hb.probe === p) this.hb.probeOK = true;
      p.close();
    };
  }

  endProbe() {
    const p = this.hb && this.hb.probe;
    if (!p) return;
    this.hb.probe = null;
    this.hb.probeOK = false;
    p.onmessage = null;
    p.close();
  }

  send(m, ws = this.ws) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(m));
      if (ws === this.ws) this.lastTx = Date.now();
      if (m.op === "text") m[SENT] = true;
      return true;
    }
    return false;
  }

  handle(ws, m) {
    if (ws === this.ws) this.lastRx = Date.now();
    if (ws !== this.ws) return;
    if (this.moving && ws === this.moving.ws) {
      // While a move searches, what the connection it leaves carries is
      // kept, not read: a move that finds no node comes back to it and
      // reads it all then, in order, as the Go client reads its old
      // connection again (client/session.go, supervise). Once moved,
      // nothing more is read from it.
      this.moving.held.push(m);
      return;
    }
    switch (m.op) {
      case "move":
        this.move(ws, m);
        return;
      case "directory":
        if (m.delta ? this.applyDelta(m) : this.setDirectory(m)) this.emit("directory", this.dir);
        return;
      case "room": {
        const r = this.rooms.get(m.room);
        // The answer to the oldest join on its way, or a state the node
        // sent unasked while one waits, taken for it (the join's own
        // then counts as unasked, which changes nothing).
        if (r && m.state) answered(r, ws);
        // Clamped as the Go client does: no honest node says more, and
        // above it a number no longer counts one by one.
        if (r && m.state) this.sync(ws, m.room, r, Math.min(ownSeq(m.state.seqs, this.user), MAX_SEQ));
        if (this.retiring && this.roomsSynced()) this.retire();
        this.emit("room", { room: m.room, state: m.state });
        return;
      }
      case "ack": {
        const r = this.rooms.get(m.room);
        // Before the room's first state no chunk has its seq yet: an ack
        // then is about none of them (client/session.go, OpAck).
        if (r && r.numbered) {
          ack(r, m.seq);
          pacedAck(r);
        }
        this.emit("ack", { room: m.room, seq: m.seq });
        return;
      }
      case "text": {
        // While a move overlaps, the node delivers what the old session
        // stores to this one too, as to any other session of the user.
        // Only a chunk that went out can be stored, so text of our own
        // user at or below the highest seq the page sent (sentSeq) is
        // taken for our own, dropped. Any other is another session's of
        // the same user (another device), even one under a seq the page
        // numbered a chunk with that still waits in it (for the node's
        // limits: pump; or for the room's state): numbering goes on above
        // it and those chunks are renumbered above it, or one would go
        // out under its seq and the room would take it for a duplicate
        // and drop its text (client/session.go, ownText).
        const r = this.rooms.get(m.room);
        if (m.from === this.user && r && r.numbered) {
          // An echo, or a seq no chunk carries: not shown.
          if (!Number.isSafeInteger(m.seq) || m.seq <= r.sentSeq) return;
          continueAbove(r, m.seq);
        }
        this.emit("text", m);
        return;
      }
      case "presence":
        this.emit("presence", m);
        return;
      case "error": {
        const r = m.room && this.rooms.get(m.room);
        // A refusal without a seq answers the oldest join on its way;
        // removed answers none (docs/protocol.md, "Join").
        if (r && !m.seq && m.code !== "removed") answered(r, ws);
        if (r && (m.code === "unavailable" || m.code === "rate")) {
          // The node holds the room until the refused chunk comes again:
          // join again after a pause; the state says what to resend.
          if (m.code === "rate" && m.seq && r.synced) learnWindow(r, m.seq); // the round's first refusal
          refused(r, m.seq);
          this.retryRoom(ws, m.room, r, m.code);
        } else if (r && m.code === "removed") {
          // The node took the page out of the room, unasked (its place
          // was lost while the node was cut off, and the room was full
          // when the node joined it again). The page asks once more, as
          // a first join, and its answer decides (client/session.go): a
          // state (a place freed) puts it back, limit leaves it out.
          // The chunks already on their way get bad_request (not in the
          // room): they wait for that state, and go again under their
          // seqs, rather than being dropped (removedOn).
          r.synced = false;
          r.joinedOn = null;
          r.removedOn = ws;
          stopPump(r); // the room's next state starts the next round
          this.sendJoin(m.room, r, ws);
        } else if (r && !m.seq && r.joinedOn !== ws && !joinOnItsWay(r, ws)) {
          // A join refused for good (limit, forbidden) on a connection
          // the page is not in the room on (its first join, the first
          // after a failover or on a move's new connection, or the one
          // after a removal), and no other join of the room on its way
          // there: the page is not in the room (docs/protocol.md,
          // "Rooms"), so sendText says so rather than queue text no node
          // will take, and the next attach does not ask again
          // (client/session.go). With another on its way (a retry's, say,
          // and the one after a removal), the refusal answers the older:
          // the later join's answer decides, and its state puts the page
          // in the room. Refused on the connection the page is in the
          // room on (a re-join whose state does not fit), it stays in
          // (below).
          clearTimeout(r.retry);
          stopPump(r);
          this.rooms.delete(m.room);
        } else if (r && !m.seq) {
          if (r.joinedOn === ws && !r.synced && !joinOnItsWay(r, ws)) {
            // A re-join refused (limit: a state that does not fit one
            // line) while the room waits for a state, after a refusal of
            // text: the page is still in the room (docs/protocol.md,
            // "Join"), and its text waits for a state that no join asks
            // for now. The join goes again after a pause, as in the Go
            // client (client/session.go, retryRoomLocked). Its text is
            // not sent without a state: the node may have taken the page
            // out of the room as it refused (a place lost, and the room
            // full), and would then refuse the text for good; a state
            // shows the page in the room, and where its numbering stands.
            this.retryRoom(ws, m.room, r, m.code);
          }
        } else if (r && r.removedOn === ws && m.code === "bad_request") {
          // Not in the room since removed: the join sent then decides.
          // Its state puts the page back and the chunk goes again under
          // its seq; its refusal leaves the room, the chunk with it
          // (client/session.go, refusedLocked).
          refused(r, m.seq);
        } else if (r && m.seq) {
          // A chunk refused for good (limit: too long; bad_request): a
          // resend would be refused again, so it leaves the queue, as in
          // the Go client (client/session.go, refuseLocked).
          refuse(r, m.seq);
        }
        this.emit("error", m);
        return;
      }
    }
  }

  // retryRoom joins a room again after a pause, once however many
  // chunks the node refused meanwhile (every chunk behind a refused one
  // is refused too): a join per refusal would pass the node's rate of
  // joins, and each join refused for it would plan another
  // (client/session.go, retryRoomLocked).
  retryRoom(ws, name, r, code) {
    r.synced = false;
    stopPump(r); // the room's next state starts the next round
    if (r.retry) return;
    const retry = setTimeout(() => {
      if (r.retry !== retry) return; // replaced by a join on a new connection
      r.retry = null;
      if (!this.closed && ws === this.ws && this.rooms.get(name) === r) this.sendJoin(name, r, ws);
    }, code === "unavailable" ? UNAVAILABLE_RETRY_MS : RATE_RETRY_MS);
    r.retry = retry;
  }

  // sync applies a room's state, which came on ws: what it holds of our
  // text is stored, the rest goes again, in order, with its seqs (a
  // window's worth of it when the room is paced: client/pace.go).
  sync(ws, name, r, stored) {
    if (r.numbered && r.synced && ws === this.ws) {
      // A state on the connection the room is synced on (the room moved
      // a chunk of ours another device's took the seq of, or
      // resynchronised us): the node still answers every chunk sent on
      // it, so none is taken for stored by the state's seqs, and none
      // goes again; the numbering goes on above the state's
      // (client/session.go, syncRoomLocked).
      continueAbove(r, stored);
      return;
    }
    if (!r.numbered) {
      r.numbered = true;
      let next = stored + 1;
      for (const m of r.unacked) m.seq = next++;
      r.nextSeq = next;
    } else {
      // Chunks that never went out (typed while disconnected) cannot be
      // stored, whatever the state says: if it holds their seqs, the
      // user typed them from another session meanwhile, and ours go on
      // above it rather than being taken for acknowledged and lost.
      const i = r.unacked.findIndex((m) => !m[SENT]);
      if (i >= 0 && r.unacked[i].seq <= stored) {
        let next = stored + 1;
        for (let j = i; j < r.unacked.length; j++) r.unacked[j].seq = next++;
        r.nextSeq = next;
      }
      if (!r.byDevice) {
        // Without a device the room judges a chunk by its seq alone:
        // the state stands for the ack of those at or below its seq.
        ack(r, stored);
        pacedAck(r);
      }
      // With one, every chunk that went out goes again under its seq,
      // whatever the state's, and the room judges it: a resend of this
      // device's chunk, or another stored under the user's next seq.
      r.nextSeq = Math.max(r.nextSeq, stored + 1);
    }
    r.synced = true;
    r.viaOld = false;
    r.joinedOn = ws; // the connection the page is in the room on
    r.removedOn = null; // back in the room: a bad_request is for good again
    r.pushed = 0; // all of it goes again
    const now = Date.now();
    startRound(r, now);
    this.pump(ws, name, r, now);
  }

  // pump sends the room's waiting chunks on ws, in order from r.pushed,
  // as far as the round's window and the connection's budget allow, and
  // plans the next try for what still waits (client/pace.go, pumpLocked).
  pump(ws, name, r, now) {
    const b = this.ignoreLimits ? null : budgets.get(ws);
    while (r.pushed < r.unacked.length) {
      const m = r.unacked[r.pushed];
      if (r.window > 0 && m.seq >= r.roundSeq + r.window) {
        const next = r.roundAt + RATE_RETRY_MS;
        if (now < next) {
          this.planPump(ws, name, r, next);
          return;
        }
        // The round filled its window and nothing was refused.
        r.window = growWindow(r.window);
        startRound(r, now);
      }
      const size = textCost(m.t);
      const wait = budgetWait(b, now, size);
      if (wait > 0) {
        this.planPump(ws, name, r, now + wait);
        return;
      }
      budgetTake(b, size);
      if (this.send(m, ws)) r.sentSeq = Math.max(r.sentSeq, m.seq);
      r.pushed++;
      r.out = Math.max(r.out, r.pushed);
    }
  }

  // planPump plans the room's next pump on ws at the time at
  // (client/pace.go, planPumpLocked).
  planPump(ws, name, r, at) {
    stopPump(r);
    const pump = setTimeout(() => {
      if (r.pump !== pump) return; // replaced by a later plan, or stopped
      r.pump = null;
      // Refused or moved meanwhile: the room's next state sends what
      // waits.
      if (this.closed || this.rooms.get(name) !== r || this.carrier(r) !== ws) return;
      this.pump(ws, name, r, Date.now());
    }, Math.max(at - Date.now(), 0));
    r.pump = pump;
  }

  // carrier is the connection the room's text goes out on now: the
  // session's when the room is synced there, the one a move is leaving
  // while the room is still joined only there, or null (text waits for
  // the room's next state).
  carrier(r) {
    if (r.synced) return this.ws;
    if (r.viaOld) return this.moving ? this.moving.ws : this.retiring;
    return null;
  }

  roomsSynced() {
    for (const r of this.rooms.values()) if (!r.synced) return false;
    return true;
  }

  // move handles a node's request to move (draining, rebalancing, or
  // unable to store), make-before-break:
  // the old connection (read no more, what comes on it kept for a move
  // that fails) still carries text until each room
  // is joined on the new one; the session attaches to a node its policy
  // picks from the move's directory, where the node that asked is
  // draining or degraded (and it is excluded besides), rejoins its rooms and resends
  // what their states do not hold; once every room's state is in (or
  // after RETIRE_AFTER_MS) the old connection closes. Other members see
  // no presence change: the user stays in each room through the old
  // session until the new one has joined. With no other node to take it
  // within MOVE_TIMEOUT_MS, or one that refuses the attach for good, the
  // session stays on the old connection, reads what it kept from it, and
  // fails over as usual once the node closes it.
  async move(ws, m) {
    if (this.moving) {
      // The old connection's messages are held, so this one came on the
      // connection the move attached to, before or just after the attach
      // was answered: that node drains too. Acted on once this move is
      // done, as the Go client does.
      this.moving.next = { ws, m };
      return;
    }
    this.retire(); // a move still overlapping from before: let it go now
    const from = this.node;
    this.moving = { ws, node: from, lost: null, held: [], next: null };
    for (const r of this.rooms.values()) r.viaOld = r.synced;
    this.log(`${from.id} asks the session to move: ${m.message || "no reason given"}`);
    if (m.directory) this.setDirectory(m.directory);
    // A flow of its own, bounded by MOVE_TIMEOUT_MS, that starts as after
    // a draining node's refusal: that node left out, a pick from the
    // directory in hand (client/move.go).
    const now = Date.now();
    this.machine.next({ kind: "begin", deadline: now + MOVE_TIMEOUT_MS }, now);
    const moved = await this.flow(this.machine.next({ kind: "refused", node: from.id }, now));
    const { lost, held, next } = this.moving;
    this.moving = null;
    if (!moved) {
      for (const r of this.rooms.values()) r.viaOld = false;
      if (this.closed) return;
      this.log(`no other node took the session; staying on ${from.id} until it closes the connection`);
      // Text, acks, room states and refusals that came meanwhile (each
      // counted as heard from the node when it came, not now).
      const rx = this.lastRx;
      for (const h of held) this.handle(ws, h);
      this.lastRx = rx;
      if (lost) this.dropped(ws, lost);
      return;
    }
    if (this.closed) {
      // close() came as the new connection was answered: it closed that
      // one, and the old one goes too, not RETIRE_AFTER_MS later.
      for (const r of this.rooms.values()) r.viaOld = false;
      ws.onclose = null;
      ws.close();
      return;
    }
    this.moves++;
    this.retiring = ws;
    ws.onclose = null;
    this.retireTimer = setTimeout(() => this.retire(), RETIRE_AFTER_MS);
    if (lost || this.roomsSynced()) this.retire();
    this.log(`moved off ${from.id} (asked to move) to ${this.node.id}`);
    this.emit("moved", { from, node: this.node, reason: this.reason });
    if (next && next.ws === this.ws) this.move(next.ws, next.m);
  }

  // retire closes the connection a move left, if any; its session then
  // leaves its rooms, which the user is in through the new one.
  retire() {
    clearTimeout(this.retireTimer);
    const ws = this.retiring;
    if (!ws) return;
    this.retiring = null;
    for (const r of this.rooms.values()) r.viaOld = false;
    ws.onclose = null;
    ws.close();
  }

  join(name) {
    if (!this.rooms.has(name)) {
      this.rooms.set(name, {
        nextSeq: 1, unacked: [], out: 0, pushed: 0, sentSeq: 0, numbered: false, synced: false, retry: null,
        joinedOn: null, removedOn: null, asked: 0, askedOn: null,
        window: 0, roundSeq: 0, roundAt: 0, pump: null,
        // byDevice: the page names its device, so a chunk that went out
        // keeps its seq until acknowledged and no state stands for its
        // ack (client/session.go, room.byDevice).
        byDevice: !!this.device,
      });
    }
    this.sendJoin(name, this.rooms.get(name));
  }

  // sendJoin sends a join of room name (r) on ws and counts it as on its
  // way there until answered: a node answers a connection's joins in
  // order, so the answer to a join that did not go out on this.ws can
  // never come, and the count starts again on each connection
  // (client/session.go, sendJoinLocked).
  sendJoin(name, r, ws = this.ws) {
    if (!this.send({ op: "join", room: name }, ws)) return;
    if (r.askedOn !== ws || r.asked >= MAX_ASKED) {
      r.askedOn = ws;
      r.asked = 0;
    }
    r.asked++;
  }

  // holds reports whether the session holds room name: joined, or
  // joining; false for a room it never joined or whose join a node
  // refused for good (the page is then not in it, and sendText throws).
  holds(name) {
    return this.rooms.has(name);
  }

  // sendText sends a chunk; it is kept until acknowledged. It returns
  // the chunk's seq.
  sendText(name, t) {
    const r = this.rooms.get(name);
    if (!r) throw new Error(`not in room ${name}`);
    // A refusal no retry mends ended the session (the Go client's
    // StateFailed): nothing typed now could go out.
    if (this.halted) throw new Error(`the session has ended: ${this.halted}`);
    const m = { op: "text", room: name, seq: r.nextSeq++, t };
    r.unacked.push(m);
    // Out at once on the connection the room is joined on (while moving,
    // the old one: the chunk goes again on the new connection once the
    // room's state is in there, and is stored once either way), unless
    // text waits ahead of it (client/pace.go).
    const ws = this.carrier(r);
    if (ws && r.pushed === r.unacked.length - 1) this.pump(ws, name, r, Date.now());
    return m.seq;
  }

  // maxChunk is the longest text chunk, in UTF-8 bytes, the node says it
  // takes (DEFAULT_MAX_CHUNK from nodes that do not say), at most
  // MAX_CHUNK_LIMIT.
  maxChunk() {
    const said = (this.limits && this.limits.max_chunk > 0 && this.limits.max_chunk) || DEFAULT_MAX_CHUNK;
    return Math.min(said, MAX_CHUNK_LIMIT);
  }

  // unacked lists a room's chunks not acknowledged yet.
  unacked(name) {
    return [...(this.rooms.get(name)?.unacked || [])];
  }
}

// ack forgets the room's text up to seq, which the node has stored. Only
// chunks that went out can be stored: one never sent (typed while the
// room waited for its state) keeps waiting whatever its seq
// (client/session.go, ackLocked).
function ack(r, seq) {
  let i = 0;
  while (i < r.unacked.length && r.unacked[i][SENT] && r.unacked[i].seq <= seq) i++;
  r.unacked.splice(0, i);
  r.out = Math.max(r.out - i, 0);
  r.pushed = Math.max(r.pushed - i, 0);
}

// answered takes, on ws, the answer to the room's oldest join on its way
// there (a state, or a refusal without a seq), if any is.
function answered(r, ws) {
  if (joinOnItsWay(r, ws)) r.asked--;
}

// joinOnItsWay reports whether a join of the room went out on ws and is
// not answered yet.
function joinOnItsWay(r, ws) {
  return r.askedOn === ws && r.asked > 0;
}

// ownSeq is the seq a room state's seqs holds for user, or 0. Only an own
// property counts: seqs is a plain object from the wire, and a user named
// constructor, toString or __proto__ would read Object.prototype's
// (a function, a seq of NaN).
function ownSeq(seqs, user) {
  const seq = seqs && Object.hasOwn(seqs, user) ? seqs[user] : 0;
  return typeof seq === "number" ? seq : 0;
}

// isDirectory reports whether d has the shape of a directory (of a
// delta's changes, when delta: nodes may be left out, gone lists ids):
// nodes an array of objects with a string id and addr, each other field
// of the type the Go client decodes it as. Anything else would throw
// where the page reads the directory (pick.js), as a null entry does.
function isDirectory(d, delta) {
  const str = (v) => v === undefined || typeof v === "string";
  const num = (v) => v === undefined || typeof v === "number";
  const node = (n) =>
    !!n && typeof n === "object" && typeof n.id === "string" && typeof n.addr === "string" &&
    str(n.http) && str(n.group) && str(n.status) &&
    num(n.users) && num(n.capacity) && num(n.age_ms) && num(n.hb);
  const nodes = (v) => Array.isArray(v) && v.every(node);
  const ids = (v) => Array.isArray(v) && v.every((id) => typeof id === "string");
  if (!d || typeof d !== "object" || !str(d.service) || !str(d.self)) return false;
  if (!delta) return nodes(d.nodes);
  return (d.nodes == null || nodes(d.nodes)) && (d.gone == null || ids(d.gone));
}

// continueAbove makes a room's numbering go on above seq, the last of
// the user's chunks stored (another session of the same user typed it,
// or a state shows it). The chunks that went out keep their seqs (the
// room may store them under those); those that never did (typed while
// the room waited for its state, or held for the node's limits: pump)
// the other session cannot have seen, and when the first of them is at
// or below seq they are renumbered above it, in order, and so, without a
// device, are those the node refused (client/session.go,
// continueAboveLocked).
function continueAbove(r, seq) {
  let from = r.out;
  if (r.byDevice) {
    const unsent = r.unacked.findIndex((m) => !m[SENT]);
    from = Math.max(r.out, unsent < 0 ? r.unacked.length : unsent);
  }
  if (from === r.unacked.length || r.unacked[from].seq > seq) {
    r.nextSeq = Math.max(r.nextSeq, seq + 1);
    return;
  }
  let next = seq + 1;
  for (let i = from; i < r.unacked.length; i++) r.unacked[i].seq = next++;
  r.nextSeq = next;
}

// recut cuts again, to max bytes, the room's chunks that never went out,
// renumbered in order from the first of them: a node may take shorter
// chunks than the one they were cut for. Chunks that went out keep
// their text and seqs, since a node may have stored them as they were
// (client/session.go, recutLocked).
function recut(r, max) {
  let from = r.unacked.findIndex((m) => !m[SENT]);
  if (from < 0 || !r.unacked.slice(from).some((m) => utf8Length(m.t) > max)) return;
  let seq = r.unacked[from].seq;
  const out = r.unacked.slice(0, from);
  for (const m of r.unacked.slice(from)) {
    for (const t of cutText(m.t, max)) out.push({ ...m, t, seq: seq++ });
  }
  r.unacked = out;
  r.nextSeq = seq;
  r.out = Math.min(r.out, from);
  r.pushed = Math.min(r.pushed, from);
}

// refused notes that the node refused the chunk seq for a while (rate,
// unavailable): it and every later chunk wait for the room's next state
// (client/session.go, refusedLocked). A refused join (seq 0) changes
// nothing of the text.
function refused(r, seq) {
  if (!seq) return;
  const i = r.unacked.findIndex((m) => m.seq >= seq);
  if (i >= 0) {
    r.out = Math.min(r.out, i);
    r.pushed = Math.min(r.pushed, i);
  }
}

// refuse drops the chunk seq, which the node refused in a way no resend
// mends (limit, bad_request): it is never stored, so it leaves the queue
// at once and is not sent again (after a failover the node would only
// refuse it again), and no ack would ever take it off when it was the
// last. Its seq stays used: the chunks after it keep theirs, and the
// room's members see its text as lost (client/session.go, refuseLocked).
function refuse(r, seq) {
  const i = r.unacked.findIndex((m) => m.seq === seq);
  if (i < 0) return;
  r.unacked.splice(i, 1);
  if (i < r.out) r.out--;
  if (i < r.pushed) r.pushed--;
}

// Pacing: text goes out no faster than the node takes it
// (client/pace.go). A node that says its limits with attached gets no
// more than they allow: the connection's budget mirrors its buckets, a
// little short of them for the jitter between the page's sends and the
// node's reads, and text waits in the page until the budget holds it.
// After a `rate` refusal all the same (a node older than limits), the
// room's text goes out in rounds of at most window chunks, a round at
// most every RATE_RETRY_MS: the first window is what passed in the round
// refused, at most MAX_FIRST_WINDOW; a round that filled its window
// makes the next a quarter larger; a refusal sets it back to what
// passed. Either way text typed meanwhile waits its turn, in order. The
// room is no longer paced once the node has acknowledged all of its
// text.

// budgets holds each connection's budget (newBudget), by its WebSocket.
const budgets = new WeakMap();

// newBudget is the budget of a connection whose node said limits at now,
// or null when it said nothing usable: each bucket holds an eighth less
// than the node's burst (at least one token less when the burst allows
// it) and refills at 98% of its rate (client/pace.go, newBudget).
function newBudget(limits, now) {
  const l = limits || {};
  if (!(l.chunk_rate > 0 && l.chunk_burst > 0 && l.byte_rate > 0 && l.byte_burst > 0)) return null;
  const bucket = (rate, burst) => {
    const usable = burst - Math.max(Math.floor(burst / 8), 1);
    const b = usable >= 1 ? usable : burst;
    return { rate: rate * 0.98, burst: b, have: b, last: now };
  };
  return { chunks: bucket(l.chunk_rate, l.chunk_burst), bytes: bucket(l.byte_rate, l.byte_burst) };
}

// bucketWait refills t to now and says how many ms until it holds n (or
// all it can hold: a chunk larger than the burst goes when it is full).
function bucketWait(t, now, n) {
  if (now > t.last) {
    t.have = Math.min(t.burst, t.have + ((now - t.last) / 1000) * t.rate);
    t.last = now;
  }
  n = Math.min(n, t.burst);
  return t.have >= n ? 0 : ((n - t.have) / t.rate) * 1000;
}

// budgetWait is how many ms until b allows a chunk of size bytes; 0 is
// now, and no budget allows everything.
function budgetWait(b, now, size) {
  if (!b) return 0;
  return Math.max(bucketWait(b.chunks, now, 1), bucketWait(b.bytes, now, size));
}

// budgetTake spends a chunk of size bytes; budgetWait has said 0.
function budgetTake(b, size) {
  if (!b) return;
  b.chunks.have = Math.max(b.chunks.have - 1, 0);
  b.bytes.have = Math.max(b.bytes.have - size, 0);
}

// textCost is what the node counts text s as against the byte rate
// (wire.TextCost): its UTF-8 bytes, a control character that travels as
// a six-byte escape (every C0 control but BS, HT, LF, FF and CR) as six.
function textCost(s) {
  let n = utf8Length(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x08 && c !== 0x09 && c !== 0x0a && c !== 0x0c && c !== 0x0d) n += 5;
  }
  return n;
}

// utf8Length is the length of s in UTF-8 bytes.
function utf8Length(s) {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

// learnWindow sets the window after the node refused the chunk seq for
// its rate: the chunks of the round ahead of it passed.
function learnWindow(r, seq) {
  if (seq >= r.roundSeq) {
    r.window = Math.min(Math.max(seq - r.roundSeq, 1), MAX_FIRST_WINDOW);
  } else if (r.window === 0) {
    // A refusal of a chunk from before the round (from an earlier
    // connection, say) tells nothing of the rate: start moderately.
    r.window = MAX_FIRST_WINDOW;
  }
}

// growWindow is the window after a round that filled it.
function growWindow(w) {
  return w + Math.max(1, Math.floor(w / 4));
}

// startRound starts a round at now with the next chunk to go.
function startRound(r, now) {
  r.roundAt = now;
  r.roundSeq = r.pushed < r.unacked.length ? r.unacked[r.pushed].seq : r.nextSeq;
}

// pacedAck ends the room's pacing once all its text is acknowledged.
function pacedAck(r) {
  if (r.window > 0 && r.unacked.length === 0) r.window = 0;
}

// stopPump stops the room's planned pump, if any.
function stopPump(r) {
  clearTimeout(r.pump);
  r.pump = null;
}
