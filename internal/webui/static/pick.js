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
const SLACK = 0.01;
const SAMPLE = 8; // pick.DefaultSample: how many nodes a fresh pick compares

export function load(n) {
  return n.capacity > 0 ? n.users / n.capacity : 1;
}

function availableNode(n) {
  return n.status === "up" && n.users < n.capacity;
}

const fmt2 = (x) => x.toFixed(2);

// available keeps the nodes that are up, below capacity and not excluded.
export function available(nodes, req) {
  const excluded = (id) => !!(req.exclude && req.exclude(id));
  const kept = nodes.filter((n) => availableNode(n) && !excluded(n.id));
  let note = `status: ${kept.length} of ${nodes.length} available`;
  if (kept.length === 0) {
    if (nodes.length === 0) {
      note += " (empty directory)";
    } else {
      const counts = {};
      for (const n of nodes) {
        let k;
        if (excluded(n.id)) k = "excluded";
        else if (n.status === "up" && n.users >= n.capacity) k = "full";
        else if (["starting", "up", "draining", "full", "down"].includes(n.status)) k = n.status;
        else k = "other";
        counts[k] = (counts[k] || 0) + 1;
      }
      const parts = ["excluded", "full", "draining", "starting", "down", "other"]
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

// balanced is the default chooser: while the numbers are fresh, the least
// loaded (within 1% or one user, preferring the node that answered) of
// SAMPLE nodes compared, the node that answered and others at random (all
// of them when there are no more); p2c when the numbers are older than a
// second.
export function balanced(r) {
  return (nodes, req) => {
    if (nodes.length === 0) throw new NoNodeError();
    let oldest = 0;
    for (const n of nodes) oldest = Math.max(oldest, overdueMs(n));
    const age = oldest + (req.ageMs || 0);
    if (age > FRESH_AGE_MS) {
      const res = p2cPick(nodes, r, "p2c");
      res.reason = `balanced: stale (age ${age}ms > ${FRESH_AGE_MS}ms), ${res.reason}`;
      return res;
    }
    const sampled = sample(nodes, req.self || "", r);
    // Nodes overdue by half of FRESH_AGE_MS may be dead, their count
    // frozen: left out of the comparison unless all are.
    const heard = sampled.filter((n) => overdueMs(n) <= FRESH_AGE_MS / 2);
    const among = heard.length > 0 ? heard : sampled;
    const { index, count, preferred } = leastLoadedPreferring(among, SLACK, r, req.self || "");
    const n = among[index];
    const how = preferred ? ", already connected" : "";
    const compared = among.length < nodes.length ? ` of ${among.length} compared` : "";
    return { node: n, reason: `balanced: ${n.id} (load ${fmt2(load(n))}${how}), ${count}${compared} of ${nodes.length} near the least load (age ${age}ms)` };
  };
}

// overdueMs is how long past its next heartbeat the news of n is
// (pick.Balanced's overdueMS): a node publishes a change at once and a
// heartbeat every hb ms, so silence within hb is no news.
function overdueMs(n) {
  return Math.max((n.age_ms || 0) - (n.hb || 0), 0);
}

// sample is what a fresh pick compares (pick.Balanced's sample, with the
// same draws): every node when there are at most SAMPLE, else the
// connected node and others drawn uniformly (Floyd's algorithm), in the
// order of nodes. No node is in more than about SAMPLE/nodes of the
// comparisons, so clients reading the same numbers do not herd.
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
