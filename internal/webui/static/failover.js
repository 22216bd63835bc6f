// failover.js: the order of a session's attempts to attach, the state
// machine of the Go package failover ported as is. It reads no clock and
// opens no connection: the caller reports an outcome with the time it
// happened (ms), and next answers with the step to take. client.js drives
// it; the rules are the package's (failover/doc.go):
//
//   - a node that refuses the connection (dial failed) is dialled again
//     twice, 20 then 40 ms later (doubling up to 200 ms, each wait uniform
//     in [w/2, w]); a node that timed out (it took the connection and said
//     nothing in time, as a paused node does) is not dialled again. Then
//     it is left out for the cool-down (5 s) and the directory is asked
//     for again (refresh), or, while the directory held at a drop is in
//     use, another node is picked from it;
//   - a node that answers full or draining is left out at once, and the
//     pick is made again from the directory its refusal carries;
//   - a failed pass (no directory from anywhere, or no node to pick) is
//     followed by a refresh after 100 ms, doubling up to 2 s, each wait
//     uniform in [w/2, w]; the count starts again once attached;
//   - a dropped session starts a new flow: its node is left out for the
//     cool-down and, after a wait uniform in [0, 250 ms] (doubled for
//     each drop in a row of sessions that lived less than 10 s, up to
//     2 s), the flow picks from the directory held, if any, and asks for
//     a fresh one only once no node of it is left. A node left out only
//     because it dropped the session is taken back as soon as it answers
//     a directory fetch itself (it restarted);
//   - within a flow, a node left out for any of these stays out past its
//     cool-down until every other candidate has been tried, that is until
//     a pick finds nothing (no candidate): then a new round begins, in
//     which only the cool-downs still running count. Trying the nodes of
//     the page's zone one by one can take longer than the cool-down
//     (three that time out, 2 s or more each): without rounds the first
//     would be back before the last was tried, and the pick would never
//     leave the zone. Each flow (begin, dropped) starts a round of its
//     own, with the node that dropped the session in it;
//   - with a deadline, the flow gives up (step "fail") when the next step
//     could only start at or after it.

import { mathRand } from "./pick.js";

// The defaults of failover.DefaultConfig, in ms.
export const DEFAULTS = Object.freeze({
  retries: 2, // dials again of a node that refused the connection
  timeoutRetries: 0, // of those, for a node that timed out
  retryBase: 20,
  retryMax: 200,
  cooldown: 5000,
  passBase: 100,
  passMax: 2000,
  dropBase: 250,
  stable: 10000,
});

// MAX_ROUND bounds the nodes a flow keeps out until it runs out of
// candidates (failover's maxRound): only a flow meeting ever new nodes
// reaches it, and it starts a new round rather than grow.
const MAX_ROUND = 4000;

// grow returns base doubled k-1 times, capped at limit.
function grow(base, limit, k) {
  let d = base;
  for (let i = 1; i < k && d < limit; i++) d *= 2;
  return Math.min(d, limit);
}

export class Machine {
  // rand: {intN(n)}, the jitter's source (pick.js's mathRand by default).
  constructor(rand = mathRand, cfg = {}) {
    this.cfg = { ...DEFAULTS, ...cfg };
    this.r = rand;
    this.cool = new Map(); // node id -> end of its cool-down (ms)
    this.dropOnly = new Set(); // nodes left out only because they dropped the session
    this.round = new Set(); // nodes the flow left out since it began or last found no candidate
    this.deadline = 0;
    this.node = null; // the node being dialled
    this.fails = 0; // its failed dials in a row
    this.passes = 0; // failed passes in a row
    this.held = false; // picking from the directory held at a drop
    this.attached = false;
    this.attachedAt = 0;
    this.drops = 0; // drops in a row of sessions shorter than stable
  }

  // excluded reports whether node id is in its cool-down at now, or was
  // left out earlier in the flow (it failed, refused or dropped the
  // session) and the flow has not run out of candidates since: a flow
  // tries every other node before one that failed, however long the
  // tries take.
  excluded(id, now) {
    if (this.round.has(id)) return true;
    const until = this.cool.get(id);
    return until !== undefined && now < until;
  }

  // exclude starts id's cool-down and keeps it out of the flow's picks
  // until the flow runs out of candidates (round).
  exclude(id, now) {
    if (!id) return;
    this.dropOnly.delete(id);
    if (this.round.size >= MAX_ROUND) this.round.clear();
    this.round.add(id);
    const until = now + this.cfg.cooldown;
    if (!(this.cool.get(id) >= until)) this.cool.set(id, until);
  }

  // next takes an outcome {kind, node, held, deadline} observed at now
  // and returns the next step {step, node, after}. Kinds: begin,
  // fetched, directory failed, picked, no candidate, dial failed,
  // timeout, refused, attached, dropped. Steps: refresh, pick, dial,
  // retry, done, fail.
  next(o, now) {
    // A cool-down that ends keeps the mark of a node that only dropped
    // the session while the round keeps it out: when it answers a
    // hello it is back at once (failover.go, prune).
    for (const [id, until] of this.cool) {
      if (now >= until) {
        this.cool.delete(id);
        if (!this.round.has(id)) this.dropOnly.delete(id);
      }
    }
    const c = this.cfg;
    switch (o.kind) {
      case "begin":
        this.start(o.deadline, now);
        return this.at(now, { step: "refresh" });
      case "dropped": {
        if (!this.attached || now - this.attachedAt < c.stable) this.drops++;
        else this.drops = 1;
        this.attached = false;
        this.start(o.deadline, now);
        this.exclude(o.node, now);
        if (o.node) this.dropOnly.add(o.node);
        const after = this.jitter(grow(c.dropBase, c.passMax, this.drops));
        if (o.held) {
          this.held = true;
          return this.at(now, { step: "pick", after });
        }
        return this.at(now, { step: "refresh", after });
      }
      case "attached":
        this.attached = true;
        this.attachedAt = now;
        this.node = null;
        this.fails = this.passes = 0;
        this.held = false;
        this.failed = false;
        this.round.clear();
        return { step: "done" };
    }
    if (this.failed) return { step: "fail" };
    switch (o.kind) {
      case "fetched":
        this.held = false;
        if (this.dropOnly.has(o.node)) {
          // It dropped the session and answers now: up again.
          this.cool.delete(o.node);
          this.dropOnly.delete(o.node);
          this.round.delete(o.node);
        }
        return this.at(now, { step: "pick" });
      case "picked":
        this.node = o.node;
        this.fails = 0;
        return this.at(now, { step: "dial", node: o.node });
      case "dial failed":
      case "timeout": {
        if (o.node !== this.node) {
          this.node = o.node;
          this.fails = 0;
        }
        this.fails++;
        let retries = c.retries;
        if (o.kind === "timeout") retries = Math.min(retries, Math.max(c.timeoutRetries, 0));
        if (this.fails <= retries) {
          const w = grow(c.retryBase, c.retryMax, this.fails);
          return this.at(now, { step: "retry", node: o.node, after: w / 2 + this.jitter(w / 2) });
        }
        this.exclude(o.node, now);
        this.node = null;
        this.fails = 0;
        return this.at(now, { step: this.held ? "pick" : "refresh" });
      }
      case "refused":
        this.exclude(o.node, now);
        this.node = null;
        this.fails = 0;
        return this.at(now, { step: "pick" });
      case "directory failed":
        return this.endPass(now);
      case "no candidate":
        // Every candidate was tried: the nodes whose cool-down has ended
        // may be picked again.
        this.round.clear();
        if (this.held) {
          // The held directory is used up: ask for a fresh one at once.
          this.held = false;
          return this.at(now, { step: "refresh" });
        }
        return this.endPass(now);
    }
    throw new Error(`failover: unknown outcome ${o.kind}`);
  }

  start(deadline, now) {
    this.deadline = deadline || 0;
    this.node = null;
    this.fails = this.passes = 0;
    this.held = false;
    this.failed = false;
    this.round.clear();
  }

  endPass(now) {
    this.passes++;
    const w = grow(this.cfg.passBase, this.cfg.passMax, this.passes);
    return this.at(now, { step: "refresh", after: w / 2 + this.jitter(w / 2) });
  }

  // at returns a, or fail when a could only start at or after the deadline.
  at(now, a) {
    if (!this.deadline || now + (a.after || 0) < this.deadline) return { after: 0, ...a };
    this.failed = true;
    return { step: "fail", after: 0 };
  }

  // jitter returns a wait uniform in [0, d] ms, at microsecond resolution.
  jitter(d) {
    if (d <= 0) return 0;
    return this.r.intN(Math.round(d * 1000) + 1) / 1000;
  }
}
