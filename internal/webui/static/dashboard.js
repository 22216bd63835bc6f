// dashboard.js: the live cluster dashboard. It follows GET /v1/events
// (Server-Sent Events) of the node that served it, or, when that one goes
// or falls silent, of the nodes it knows in turn, and polls each node's
// /v1/stats for rooms and rates.

const $ = (sel) => document.querySelector(sel);
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
const STATS_EVERY_MS = 2000;

let dir = { service: "", self: "", nodes: [] };
let samples = [];
let windowMs = 600000;
const stats = new Map(); // node id -> {at, s, rate: {deliveries, records}}
const colors = new Map();
// The node pushes an update at least every second while a dashboard
// watches (internal/web, refreshEvery): a stream without one for
// STALL_MS has stalled.
const STALL_MS = 4000;
const RETRY_MS = 500; // after a stream failed, before the next
let source = null; // the EventSource followed
let stall = 0; // its timer for STALL_MS
const failedAt = new Map(); // base URL -> when a stream from it last failed

function color(id) {
  if (!colors.has(id)) colors.set(id, COLORS[colors.size % COLORS.length]);
  return colors.get(id);
}

function base(addr) {
  return `${location.protocol}//${addr}`;
}

// candidates are the streams the dashboard may follow: the page's own
// node, then the nodes of the last directory it got, those the
// directory lists down last.
function candidates() {
  const list = [{ url: location.origin, label: "this page's node" }];
  const nodes = dir.nodes.filter((n) => n.http);
  for (const n of [...nodes.filter((m) => m.status !== "down"), ...nodes.filter((m) => m.status === "down")]) {
    const url = base(n.http);
    if (!list.some((c) => c.url === url)) list.push({ url, label: `node ${n.id}` });
  }
  return list;
}

// next is the candidate to try after a stream failed: one never failed
// before any that did, else the one that failed longest ago, so that the
// dashboard goes round every candidate in turn, and round again once
// all have failed, rather than back and forth between two dead ones.
function next() {
  let best = null;
  let bestAt = Infinity;
  for (const c of candidates()) {
    const at = failedAt.get(c.url) ?? -Infinity;
    if (at < bestAt) {
      best = c;
      bestAt = at;
    }
  }
  return best;
}

// follow streams the updates of the node at url. A stream that errs, or
// that brings nothing for STALL_MS (a node paused, or cut off with the
// connection still open, sends no close), counts as failed: after
// RETRY_MS the dashboard follows the next candidate.
function follow(url, label) {
  const es = new EventSource(url + "/v1/events");
  source = es;
  let first = true;
  const el = $("#stream");
  el.dataset.source = url; // the stream's base URL; data-node names its node once it speaks
  const lost = (why) => {
    if (source !== es) return;
    clearTimeout(stall);
    es.close();
    source = null;
    failedAt.set(url, Date.now());
    el.dataset.state = "reconnecting";
    delete el.dataset.node;
    el.textContent = `${why}; reconnecting…`;
    setTimeout(() => {
      const n = next();
      follow(n.url, n.label);
    }, RETRY_MS);
  };
  const arm = () => {
    clearTimeout(stall);
    stall = setTimeout(() => lost(`No update from ${label} for ${STALL_MS / 1000} s`), STALL_MS);
  };
  arm();
  es.onmessage = (ev) => {
    if (source !== es) return;
    arm();
    update(JSON.parse(ev.data), first);
    first = false;
    el.dataset.state = "live";
    el.dataset.node = dir.self;
    el.textContent = `Live, from node ${dir.self}${url === location.origin ? ", this page's node" : ""}.`;
  };
  es.onerror = () => lost(`Lost the stream from ${label}`);
}

// update shows an update of the stream. A stream's first carries the
// node's whole history: it replaces what an earlier stream brought.
function update(u, first) {
  dir = { service: u.directory.service, self: u.directory.self, nodes: u.directory.nodes || [] };
  windowMs = u.window_ms || windowMs;
  if (first) {
    samples = [];
    $("#events").replaceChildren();
  }
  if (u.samples) {
    samples.push(...u.samples);
    samples.sort((a, b) => a.at - b.at);
    const cut = Date.now() - windowMs;
    samples = samples.filter((s) => s.at >= cut);
  }
  for (const e of u.events || []) addEvent(e);
  renderNodes();
  renderChart();
}

function addEvent(e) {
  const li = document.createElement("li");
  const at = new Date(e.at).toLocaleTimeString();
  li.dataset.node = e.node;
  li.dataset.what = e.what;
  li.textContent = e.from ? `${at} node ${e.node}: ${e.from} → ${e.what}` : `${at} node ${e.node} ${e.what}`;
  const ol = $("#events");
  ol.prepend(li);
  while (ol.children.length > 100) ol.lastElementChild.remove();
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function renderNodes() {
  $("#service").textContent = dir.service ? `of ${dir.service}` : "";
  const rows = dir.nodes.map((n) => {
    const tr = document.createElement("tr");
    tr.dataset.node = n.id;
    tr.dataset.status = n.status;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = n.id + (n.id === dir.self ? " (source)" : "");
    th.style.borderLeft = `.4rem solid ${color(n.id)}`;
    const st = stats.get(n.id);
    const load = n.capacity > 0 ? `${((100 * n.users) / n.capacity).toFixed(1)}%` : "";
    tr.append(
      th,
      cell(n.status, "status"),
      cell(String(n.users), "num users"),
      cell(String(n.capacity), "num"),
      cell(load, "num"),
      cell(n.group || "", ""),
      cell(`${n.age_ms} ms`, "num"),
      cell(st && n.status !== "down" ? String(st.s.rooms_open) : "", "num"),
      cell(st?.rate && n.status !== "down" ? st.rate.deliveries.toFixed(1) : "", "num"),
      cell(st?.rate && n.status !== "down" ? st.rate.records.toFixed(1) : "", "num"),
    );
    return tr;
  });
  $("#nodes tbody").replaceChildren(...rows);
}

function svg(tag, attrs, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function renderChart() {
  $("#window").textContent = String(Math.round(windowMs / 60000));
  const W = 800, H = 240, L = 40, R = 110, T = 10, B = 25;
  const now = Date.now();
  const x = (at) => L + ((at - (now - windowMs)) / windowMs) * (W - L - R);
  let max = 1;
  const ids = new Set(dir.nodes.map((n) => n.id));
  for (const s of samples) for (const [id, u] of Object.entries(s.users)) { max = Math.max(max, u); ids.add(id); }
  const y = (u) => T + (1 - u / max) * (H - T - B);
  const parts = [
    svg("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: "currentColor", "stroke-opacity": ".4" }),
    svg("line", { x1: L, y1: T, x2: L, y2: y(0), stroke: "currentColor", "stroke-opacity": ".4" }),
    svg("text", { x: L - 5, y: T + 10, "text-anchor": "end" }, String(max)),
    svg("text", { x: L - 5, y: y(0), "text-anchor": "end" }, "0"),
    svg("text", { x: L, y: H - 5 }, `−${Math.round(windowMs / 60000)} min`),
    svg("text", { x: W - R, y: H - 5, "text-anchor": "end" }, "now"),
  ];
  const desc = [];
  [...ids].sort().forEach((id, i) => {
    // Own keys only: a node named constructor is in no sample's users
    // by inheritance.
    const pts = samples.filter((s) => Object.hasOwn(s.users, id)).map((s) => `${x(s.at).toFixed(1)},${y(s.users[id]).toFixed(1)}`);
    if (pts.length > 0) parts.push(svg("polyline", { points: pts.join(" "), fill: "none", stroke: color(id), "stroke-width": 2 }));
    parts.push(svg("rect", { x: W - R + 10, y: T + i * 16, width: 10, height: 10, fill: color(id) }));
    const n = dir.nodes.find((m) => m.id === id);
    parts.push(svg("text", { x: W - R + 25, y: T + 9 + i * 16 }, `${id} ${n ? n.users : "gone"}`));
    desc.push(`${id}: ${n ? `${n.users} users, ${n.status}` : "gone"}`);
  });
  $("#chart").replaceChildren(...parts);
  $("#chart-desc").textContent = `Now: ${desc.join("; ")}.`;
}

async function pollStats() {
  await Promise.all(
    dir.nodes
      .filter((n) => n.http && n.status !== "down")
      .map(async (n) => {
        try {
          // A paused node answers never: give up by the next poll.
          const resp = await fetch(base(n.http) + "/v1/stats", { cache: "no-store", signal: AbortSignal.timeout(STATS_EVERY_MS) });
          const s = await resp.json();
          const at = Date.now();
          const prev = stats.get(n.id);
          let rate = prev?.rate;
          if (prev && at > prev.at) {
            const dt = (at - prev.at) / 1000;
            rate = {
              deliveries: Math.max(0, (s.deliveries_total - prev.s.deliveries_total) / dt),
              records: Math.max(0, (s.records_stored_total - prev.s.records_stored_total) / dt),
            };
          }
          stats.set(n.id, { at, s, rate });
        } catch {
          // The node may be gone; the stream says so.
        }
      }),
  );
  renderNodes();
}

follow(location.origin, "this page's node");
setInterval(pollStats, STATS_EVERY_MS);
setInterval(renderChart, 5000);
