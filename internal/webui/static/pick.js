// pick.js: the server selection policies of the Go package pick, for the
// browser. A policy takes the directory's nodes and a request ({group,
// exclude(id), ageMs, self}) and returns {node, reason}, or throws
// NoNodeError when nothing may be picked (fetch a fresh directory). The
// tests run the same vectors against both (testdata/pick.json), with a
// scripted source of random numbers.

export class NoNodeError extends Error {
  constructor(note) {
    super("pick: no server to pick" + (note ? " (" + note + ")" : ""));
    this.name = "NoNodeError";
  }
}

// mathRand draws from Math.random; a Rand is anything with intN(n).
export const mathRand = { intN: (n) => Math.floor(Math.random() * n) };

const FRESH_AGE_MS = 1000;
const SILENT_MS = FRESH_AGE_MS / 2; // overdue by more, a node is taken for silent
const SLACK = 0.01;
const MARGIN = 0.02; // pick.DefaultMargin: of the mean load, above the slack
const SAMPLE = 8; // pick.DefaultSample: how many nodes a fresh pick compares
const SCALE = 1 << 20; // the resolution of spread's draw, as pick's

export function load(n) {
  return n.capacity > 0 ? n.users / n.capacity : 1;
}

function availableNode(n) {
  return n.status === "up" && n.users < n.capacity;
}

// broken reports whether n is an entry no node sends (pick's broken):
// without an id, which no failure could leave out (failover.js), or with
// a negative users count or capacity, whose load looks lower than an
// empty node's.
function broken(n) {
  return !n.id || n.users < 0 || n.capacity < 0;
}

const fmt2 = (x) => x.toFixed(2);

// available keeps the nodes that are up, below capacity and not excluded,
// leaving out broken entries (counted as "other").
export function available(nodes, req) {
  const excluded = (id) => !!(req.exclude && req.exclude(id));
  const kept = nodes.filter((n) => availableNode(n) && !broken(n) && !excluded(n.id));
  let note = `status: ${kept.length} of ${nodes.length} available`;
  if (kept.length === 0) {
    if (nodes.length === 0) {
      note += " (empty directory)";
    } else {
      const counts = {};
      for (const n of nodes) {
        let k;
        if (broken(n)) k = "other";
        else if (excluded(n.id)) k = "excluded";
        else if (n.status === "up" && n.users >= n.capacity) k = "full";
        else if (["starting", "up", "degraded", "draining", "full", "down"].includes(n.status)) k = n.status;
        else k = "other";
        counts[k] = (counts[k] || 0) + 1;
      }
      const parts = ["excluded", "full", "draining", "degraded", "starting", "down", "other"]
        .filter((k) => counts[k] > 0)
        .map((k) => `${k} ${counts[k]}`);
      note += " (" + parts.join(", ") + ")";
    }
  }
  return [kept, note];
}

function inRegionOf(group, region) {
  return (group || "").startsWith(region) && ((group || "").length === region.length || group[region.length] === "/");
}

// affinity keeps the client's zone, else its region, else every node.
export function affinity(nodes, req) {
  if (!req.group) return [nodes, "group: anywhere (no client group)"];
  const slash = req.group.indexOf("/");
  const region = slash < 0 ? req.group : req.group.slice(0, slash);
  const hasZone = slash >= 0;
  const zone = nodes.filter((n) => hasZone && inRegionOf(n.group, region) && n.group === req.group);
  if (zone.length > 0) return [zone, `group: zone ${req.group} (${zone.length} of ${nodes.length})`];
  const inRegion = nodes.filter((n) => inRegionOf(n.group, region));
  if (inRegion.length > 0) {
    let note = `group: region ${region} (${inRegion.length} of ${nodes.length})`;
    if (hasZone) note += ", none in zone " + req.group;
    return [inRegion, note];
  }
  return [nodes, `group: anywhere (${nodes.length}), none in region ${region}`];
}

// chain applies filters in order, then the chooser.
export function chain(choose, ...filters) {
  return (nodes, req) => {
    const notes = [];
    for (const f of filters) {
      const [kept, note] = f(nodes, req);
      if (note) notes.push(note);
      if (kept.length === 0) throw new NoNodeError(notes.join("; "));
      nodes = kept;
    }
    const res = choose(nodes, req);
    if (notes.length > 0) res.reason = [...notes, res.reason].join("; ");
    return res;
  };
}

export function random(r) {
  return (nodes) => {
    if (nodes.length === 0) throw new NoNodeError();
    const n = nodes[r.intN(nodes.length)];
    return { node: n, reason: `random: ${n.id} of ${nodes.length}` };
  };
}

function leastLoadedPreferring(nodes, slack, r, prefer) {
  let least = load(nodes[0]);
  for (const n of nodes) least = Math.min(least, load(n));
  let index = -1, count = 0, preferred = false;
  nodes.forEach((n, i) => {
    const l = load(n);
    let within = l === least;
    if (!within && slack > 0) {
      let limit = least * (1 + slack);
      if (n.capacity > 0) limit += 1 / n.capacity;
      within = l <= limit;
    }
    if (!within) return;
    count++;
    if (preferred) return;
    if (prefer && n.id === prefer) {
      index = i;
      preferred = true;
      return;
    }
    if (count === 1 || r.intN(count) === 0) index = i;
  });
  return { index, count, preferred };
}

export function leastUsers(r) {
  return (nodes) => {
    if (nodes.length === 0) throw new NoNodeError();
    const { index, count } = leastLoadedPreferring(nodes, 0, r, "");
    const n = nodes[index];
    return { node: n, reason: `least-users: ${n.id} (load ${fmt2(load(n))}), ${count} of ${nodes.length} tied` };
  };
}

function p2cPick(nodes, r, name) {
  if (nodes.length === 1) return { node: nodes[0], reason: `${name}: ${nodes[0].id}, the only candidate` };
  const i = r.intN(nodes.length);
  let j = r.intN(nodes.length - 1);
  if (j >= i) j++;
  let a = nodes[i], b = nodes[j], la = load(a), lb = load(b);
  if (lb < la || (lb === la && r.intN(2) === 1)) [a, b, la, lb] = [b, a, lb, la];
  const how = la === lb ? "tied with" : "over";
  return { node: a, reason: `${name}: ${a.id} (load ${fmt2(la)}) ${how} ${b.id} (load ${fmt2(lb)})` };
}

export function p2c(r) {
  return (nodes) => {
    if (nodes.length === 0) throw new NoNodeError();
    return p2cPick(nodes, r, "p2c");
  };
}

// balanced is the default chooser. It first leaves out the nodes gone
// silent (hear), then, while the numbers of those left are fresh,
// compares SAMPLE of them, the node that answered and others at random
// (all of them when there are no more), and picks among the least loaded
// (within 1% or one user, preferring the node that answered); when it
// compares them all and the node that answered is not among them, it
// draws each with a weight that falls over the margin above the least
// load (spread). P2C when the numbers are older than a second.
export function balanced(r) {
  return (nodes, req) => {
    if (nodes.length === 0) throw new NoNodeError();
    const heard = hear(nodes);
    let oldest = 0;
    for (const n of heard) oldest = Math.max(oldest, overdueMs(n));
    const age = oldest + (req.ageMs || 0);
    const silent = heard.length < nodes.length ? `, ${nodes.length - heard.length} silent left out` : "";
    if (age > FRESH_AGE_MS) {
      const res = p2cPick(heard, r, "p2c");
      res.reason = `balanced: stale (age ${age}ms > ${FRESH_AGE_MS}ms${silent}), ${res.reason}`;
      return res;
    }
    const self = req.self || "";
    const among = sample(heard, self, r);
    const sampled = among.length < heard.length;
    let index, count, preferred, how = "";
    if (self && among.some((n) => n.id === self)) {
      ({ index, count, preferred } = leastLoadedPreferring(among, SLACK, r, self));
      // pick.Balanced also keeps the node that answered a little above
      // the slack, with a chance that falls over the margin
      // (keepConnected): the page names no such node (client.js), and
      // that is not ported.
      if (preferred) how = ", already connected";
    } else if (sampled) {
      ({ index, count } = leastLoadedPreferring(among, SLACK, r, ""));
    } else {
      ({ index, count, how } = spread(among, SLACK, r));
    }
    const n = among[index];
    const compared = among.length < nodes.length ? ` of ${among.length} compared` : "";
    return { node: n, reason: `balanced: ${n.id} (load ${fmt2(load(n))}${how}), ${count}${compared} of ${nodes.length} near the least load (age ${age}ms${silent})` };
  };
}

// hear is the nodes balanced picks among (pick.Balanced's heard): those
// overdue by at most SILENT_MS, when some are overdue by more but no more
// of them than of the others; else all of nodes. A node that died shows
// its last count until it is marked down, and that count soon looks
// least loaded; but when most entries are that old, the age tells of
// the directory rather than of its nodes (a copy kept up to date by
// pushes, whose entries age until a push carries them), and leaving them
// out would crowd every pick onto the few left.
function hear(nodes) {
  const heard = nodes.filter((n) => overdueMs(n) <= SILENT_MS);
  const left = nodes.length - heard.length;
  return left === 0 || left > heard.length ? nodes : heard;
}

// spread picks among nodes, none of them the node that answered, each
// with a weight (pick.Balanced's spread, with the same draw): 1 within
// the slack of the least load, falling from 1 to 0 over the margin above
// it, 0 beyond. Pages reading the same numbers then spread over the
// nearly equal nodes of a small zone, where each would otherwise take
// the one a few users lighter. With no node in the margin it draws as
// leastLoadedPreferring does.
function spread(nodes, slack, r) {
  let least = load(nodes[0]), sum = 0;
  for (const n of nodes) {
    const l = load(n);
    least = Math.min(least, l);
    sum += l;
  }
  const mean = sum / nodes.length;
  let total = 0, partial = false;
  for (const n of nodes) {
    const { w } = weight(n, least, slack, mean);
    total += w;
    partial = partial || (w < 1 && w > 0);
  }
  if (!partial) {
    const { index, count } = leastLoadedPreferring(nodes, slack, r, "");
    return { index, count, how: "" };
  }
  let x = ((r.intN(SCALE) + 0.5) / SCALE) * total;
  let index = -1, count = 0, how = "";
  nodes.forEach((n, i) => {
    const { w, into } = weight(n, least, slack, mean);
    if (w === 1) count++;
    if (index >= 0 || w === 0) return;
    if (x < w || i === nodes.length - 1) {
      index = i;
      if (w < 1) how = `, ${(100 * into).toFixed(0)}% into the margin above the least load`;
    }
    x -= w;
  });
  if (index < 0) {
    // Rounding left x past the last weight: the last node weighed.
    for (let i = nodes.length - 1; i >= 0; i--) {
      if (weight(nodes[i], least, slack, mean).w > 0) {
        index = i;
        break;
      }
    }
  }
  return { index, count, how };
}

// weight is n's weight in spread, and how far into the margin its load
// is (0 to 1): 1 within the slack of least (as leastLoadedPreferring
// counts it), else 1 less how far into the margin above least*(1+slack)
// plus one user its load is, the margin being MARGIN*mean plus one user;
// 0 past it.
function weight(n, least, slack, mean) {
  const l = load(n);
  const one = n.capacity > 0 ? 1 / n.capacity : 0;
  if (l === least || (slack > 0 && l <= least * (1 + slack) + one)) return { w: 1, into: 0 };
  const into = (l - (least * (1 + slack) + one)) / (MARGIN * mean + one);
  if (into >= 1) return { w: 0, into: 1 };
  if (into <= 0) return { w: 1, into: 0 };
  return { w: 1 - into, into };
}

// overdueMs is how long past its next heartbeat the news of n is
// (pick.Balanced's overdueMS): a node publishes a change at once and a
// heartbeat every hb ms, so silence within hb is no news.
function overdueMs(n) {
  return Math.max((n.age_ms || 0) - (n.hb || 0), 0);
}

// sample is what a fresh pick compares (pick.Balanced's sample, with the
// same draws), given the nodes hear kept: every node when there are at
// most SAMPLE, else the connected node and others drawn uniformly
// (Floyd's algorithm), in the order of nodes. No node is in more than
// about SAMPLE/nodes of the comparisons, so clients reading the same
// numbers do not herd.
function sample(nodes, self, r) {
  if (nodes.length <= SAMPLE) return nodes;
  const picked = [];
  let skip = -1;
  if (self) {
    skip = nodes.findIndex((n) => n.id === self);
    if (skip >= 0) picked.push(skip);
  }
  const m = nodes.length - picked.length;
  const drawn = [];
  for (let j = m - (SAMPLE - picked.length); j < m; j++) {
    let t = r.intN(j + 1);
    if (drawn.includes(t)) t = j;
    drawn.push(t);
  }
  for (const t of drawn) picked.push(skip >= 0 && t >= skip ? t + 1 : t);
  picked.sort((a, b) => a - b);
  return picked.map((i) => nodes[i]);
}

export const POLICIES = ["default", "p2c", "least-users", "random", "group"];

// byName returns the named policy, as the Go client's --policy names them.
export function byName(name, r = mathRand) {
  switch (name || "default") {
    case "default":
      return chain(balanced(r), available, affinity);
    case "p2c":
      return chain(p2c(r), available);
    case "least-users":
      return chain(leastUsers(r), available);
    case "random":
      return chain(random(r), available);
    case "group":
      return chain(random(r), available, affinity);
  }
  throw new Error(`pick: unknown policy "${name}" (valid: ${POLICIES.join(", ")})`);
}
