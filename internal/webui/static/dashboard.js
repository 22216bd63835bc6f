// dashboard.js: the live cluster dashboard. It follows GET /v1/events
// (Server-Sent Events) of the node that served it, or of any node it
// knows when that one goes, and polls each node's /v1/stats for rooms and
// rates.

const $ = (sel) => document.querySelector(sel);
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
const STATS_EVERY_MS = 2000;

let dir = { service: "", self: "", nodes: [] };
let samples = [];
let windowMs = 600000;
const stats = new Map(); // node id -> {at, s, rate: {deliveries, records}}
const colors = new Map();
let source = null;
let sources = []; // base URLs to follow, the page's first

function color(id) {
  if (!colors.has(id)) colors.set(id, COLORS[colors.size % COLORS.length]);
  return colors.get(id);
}

function base(addr) {
  return `${location.protocol}//${addr}`;
}

function follow(url, label) {
  if (source) source.close();
  source = new EventSource(url + "/v1/events");
  source.onopen = () => {
    $("#stream").dataset.state = "live";
    $("#stream").textContent = `Live, from ${label}.`;
  };
  source.onmessage = (ev) => update(JSON.parse(ev.data));
  source.onerror = () => {
    $("#stream").dataset.state = "reconnecting";
    $("#stream").textContent = `Lost the stream from ${label}; reconnecting…`;
    source.close();
    source = null;
    // Try every node the directory lists, the page's own first.
    const others = dir.nodes.filter((n) => n.http && n.status !== "down").map((n) => ({ url: base(n.http), label: `node ${n.id}` }));
    sources = [{ url: location.origin, label: "this page's node" }, ...others.filter((o) => o.url !== url), ...others.filter((o) => o.url === url)];
    setTimeout(() => {
      const next = sources.find((s) => s.url !== url) || sources[0];
      follow(next.url, next.label);
    }, 500);
  };
}

function update(u) {
  dir = { service: u.directory.service, self: u.directory.self, nodes: u.directory.nodes || [] };
  windowMs = u.window_ms || windowMs;
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
          const resp = await fetch(base(n.http) + "/v1/stats", { cache: "no-store" });
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
