// app.js: the room page. It attaches with client.js, shows each
// participant's current line as it changes (rtt.js applies every chunk as
// the servers do) and sends every keystroke of the compose box as typed.
// Query parameters fill the join form and join at once:
// /?user=ann&room=lobby&group=eu/a&policy=default

import { Session, cutText } from "./client.js";
import { Room, clusterStarts, graphemes, lineAfter } from "./rtt.js";

const $ = (sel) => document.querySelector(sel);

// MAX_USER_BYTES is the longest user name a node takes, in UTF-8 bytes
// (internal/node.MaxUserName).
const MAX_USER_BYTES = 64;

let session = null;
let room = null;
let roomName = "";
let user = "";
let users = new Set();
let sent = ""; // what the compose box held when the last chunk went out
let focusPending = false; // focus the compose box once the room's state is in
// ownStale: the user's other session stored text under a seq this page
// showed a chunk of its own under (typed, held for the node's limits, then
// renumbered above it), so the own line here is not the room's; once
// nothing waits for an ack the page joins again for the room's state,
// which puts it right (resyncing until it comes). As cmd/switchboard/chat.go.
let ownStale = false;
let resyncing = false;

function setStatus({ state, node, reason, note }) {
  const conn = $("#conn");
  conn.dataset.state = state;
  conn.dataset.node = node ? node.id : "";
  if (state === "attached") {
    conn.textContent = `Connected to node ${node.id} (${node.http}${node.group ? ", group " + node.group : ""}).`;
    $("#why").textContent = `Why this node: ${reason}`;
  } else if (state === "failed") {
    conn.textContent = "Could not attach.";
    $("#why").textContent = note;
  } else if (state === "lost") {
    conn.textContent = `Connection to node ${node.id} lost; failing over.`;
    $("#why").textContent = note;
  } else {
    conn.textContent = "Connecting…";
    $("#why").textContent = note || "";
  }
  // The box opens with the room's state (there is no room to type into
  // before it) and stays open through a failover: what is typed then is
  // kept and sent once the page has joined again. A refusal no retry
  // mends (halted) shuts it: nothing typed then could ever go out.
  $("#compose").disabled = !room || !!(session && session.halted);
  // A refused token: the user may give a fresh one and go on.
  $("#reauth-form").hidden = !(session && session.tokenRefused);
  // An attach refused for good (a user name the service does not take):
  // the form again, to give another.
  if (session && session.halted) $("#join-form").hidden = false;
}

// isolate keeps a user's name from reordering the text around it: a
// name may hold bidirectional controls (U+202E turns what follows
// around), which the service does not refuse. FSI ... PDI make it a
// unit of its own (Unicode Bidirectional Algorithm, isolates); lines and
// names in their own elements are isolated by the style sheet.
function isolate(name) {
  return "\u2068" + name + "\u2069";
}

function log(message) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${message}`;
  const ol = $("#log");
  ol.append(li);
  while (ol.children.length > 200) ol.firstElementChild.remove();
}

function lineItem(line) {
  const li = document.createElement("li");
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = line.from;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = line.text;
  li.append(who, text);
  return li;
}

function renderHistory() {
  $("#history").replaceChildren(...room.lines.map(lineItem));
}

function appendLines(lines) {
  const ol = $("#history");
  for (const l of lines) ol.append(lineItem(l));
  while (ol.children.length > room.max) ol.firstElementChild.remove();
}

// liveItem returns the live row of a participant, made if missing.
function liveItem(from) {
  let li = [...$("#live").children].find((el) => el.dataset.live === from);
  if (!li) {
    li = document.createElement("li");
    li.dataset.live = from;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = from === user ? `${from} (you)` : from;
    const text = document.createElement("span");
    text.className = "text";
    li.append(who, text);
    $("#live").append(li);
  }
  return li;
}

function renderLive(from) {
  const text = room.live(from);
  if (text === "" && !users.has(from)) {
    [...$("#live").children].find((el) => el.dataset.live === from)?.remove();
    return;
  }
  liveItem(from).querySelector(".text").textContent = text;
}

function renderAllLive() {
  $("#live").replaceChildren();
  const names = new Set([...users, ...room.senders.keys()]);
  for (const from of [...names].sort()) renderLive(from);
}

function renderUsers() {
  $("#users").textContent = `In the room: ${[...users].sort().map(isolate).join(", ") || "nobody"}.`;
}

function renderPending() {
  const n = session.unacked(roomName).length;
  $("#pending").textContent = n ? `${n} keystroke chunk(s) waiting for the server's acknowledgement.` : "";
}

// sendChunk sends text as typed and shows it in the user's own line. A
// long text (a paste) goes in pieces of at most the node's chunk limit
// in UTF-8 bytes, never cut inside a character: the two halves of a
// surrogate pair would each go out as U+FFFD.
function sendChunk(text) {
  for (const chunk of cutText(text, session.maxChunk())) {
    const seq = session.sendText(roomName, chunk);
    appendLines(room.apply(user, seq, chunk).lines);
  }
  renderLive(user);
  renderPending();
}

// boundaryAtOrBefore is the last grapheme boundary of s at or before i:
// a boundary of the clusters the node erases, which are Unicode 15.0's
// (clusterStarts), not the browser's.
function boundaryAtOrBefore(s, i) {
  if (i >= s.length) return s.length;
  let b = 0;
  for (const start of clusterStarts(s)) {
    if (start > i) break;
    b = start;
  }
  return b;
}

// onInput sends what changed in the box since the last keystroke. The
// box then holds what the line shows on every screen: text pasted with
// characters the text model drops (a BOM, controls) or with line ends of
// its own (U+2028), or past a line's byte bound, would otherwise leave
// the box and the line apart, and a later BACKSPACE would erase on every
// screen a character the box still shows.
function onInput() {
  const box = $("#compose");
  const now = box.value;
  let i = 0;
  while (i < sent.length && i < now.length && sent[i] === now[i]) i++;
  i = boundaryAtOrBefore(sent, i);
  const erased = graphemes(sent.slice(i));
  const chunk = "\b".repeat(erased) + now.slice(i);
  sent = lineAfter(sent, chunk).line;
  if (box.value !== sent) box.value = sent;
  if (chunk !== "") sendChunk(chunk);
}

function onKeyDown(e) {
  // An input method's Enter confirms its conversion: Safari sends that
  // keydown after compositionend, with isComposing false and the
  // keyCode 229 every keydown an input method takes has.
  if (e.key === "Enter" && !e.isComposing && e.keyCode !== 229) {
    e.preventDefault();
    $("#compose").value = "";
    sent = "";
    sendChunk("\n");
  }
}

// resyncIfDue joins the room again for its state when the own line is
// stale and nothing typed waits for an ack: the state then holds all of
// it. A join of a room already joined changes nothing else there.
function resyncIfDue() {
  if (!ownStale || resyncing || session.unacked(roomName).length > 0) return;
  resyncing = true;
  session.join(roomName);
}

function join(opts) {
  let s;
  try {
    s = new Session({ user: opts.user, token: opts.token, group: opts.group, policy: opts.policy });
  } catch (e) {
    // A policy the page does not know (a ?policy= of the query, which
    // byName refuses): say so under the status, as for an attach that
    // failed, with the form still there to pick another, rather than
    // hide it and leave a blank page.
    setStatus({ state: "failed", node: null, reason: "", note: e.message });
    log(e.message);
    return;
  }
  // A session ended by a refusal (the form shows again then) goes.
  if (session) session.close();
  user = opts.user;
  roomName = opts.room;
  room = null;
  ownStale = resyncing = false;
  focusPending = true;
  $("#join-form").hidden = true;
  $("#room-view").hidden = false;
  $("#room-h").textContent = `Room ${roomName}`;
  session = s;
  session.addEventListener("status", (e) => setStatus(e.detail));
  session.addEventListener("log", (e) => log(e.detail.message));
  session.addEventListener("room", (e) => {
    // A state for a room the session no longer holds (a join refused for
    // good) is not shown: the page is not in the room, and nothing typed
    // there could go out.
    if (e.detail.room !== roomName || !e.detail.state || !session.holds(roomName)) return;
    const st = e.detail.state;
    ownStale = resyncing = false;
    room = new Room();
    room.load(st);
    // Our own text the state does not hold yet is on its way again.
    for (const m of session.unacked(roomName)) room.apply(user, m.seq, m.t);
    users = new Set(st.users || []);
    renderHistory();
    renderAllLive();
    renderUsers();
    renderPending();
    const box = $("#compose");
    box.disabled = false;
    // The first state makes the box usable: put the keyboard there
    // (focus on a disabled box, at join, would be lost).
    if (focusPending) {
      focusPending = false;
      box.focus();
    }
  });
  session.addEventListener("text", (e) => {
    const m = e.detail;
    if (m.room !== roomName || !room) return;
    if (m.from === user && m.seq <= room.seq(user)) ownStale = true;
    // The node leaves out the text of an empty chunk (its seq counts).
    appendLines(room.apply(m.from, m.seq, m.t ?? "").lines);
    renderLive(m.from);
    resyncIfDue();
  });
  session.addEventListener("presence", (e) => {
    const m = e.detail;
    if (m.room !== roomName || !room) return;
    if (m.event === "join") users.add(m.user);
    else users.delete(m.user);
    log(`${isolate(m.user)} ${m.event === "join" ? "joined" : "left"} ${roomName}`);
    renderUsers();
    renderLive(m.user);
  });
  session.addEventListener("ack", () => {
    renderPending();
    resyncIfDue();
  });
  session.addEventListener("error", (e) => {
    const m = e.detail;
    log(`error ${m.code}: ${m.message}`);
    // A join refused for good (the room is full, or the token does not
    // list it) leaves the session out of the room: no keystroke typed
    // now could ever be sent. The session says whether it is out: rate
    // and unavailable are retried; a removal is followed by a join of
    // the page's, whose answer decides; a refusal answering an older
    // join while a later one is on its way decides nothing (the later
    // join's answer does); and a re-join refused where the page is in
    // the room leaves it in.
    if (m.room === roomName && !m.seq && !session.holds(roomName)) {
      room = null;
      $("#compose").disabled = true;
      $("#why").textContent = `Could not join room ${roomName}: ${m.message}`;
    }
    // A chunk refused for good (too long, say) left the session's queue:
    // it waits for no acknowledgement now, and may have been the last
    // that held back a resync. The page showed its text, which the room
    // never stored: the own line wants the room's state too.
    if (m.room === roomName && m.seq && session.holds(roomName)) {
      // (One the session keeps to send again, refused while it was out
      // of the room, is not.)
      const kept = session.unacked(roomName).some((c) => c.seq === m.seq);
      if (m.code !== "rate" && m.code !== "unavailable" && !kept) ownStale = true;
      renderPending();
      resyncIfDue();
    }
  });
  session.join(roomName);
  session.start();
}

// checkUserName has the form refuse a name longer than a node takes:
// maxlength counts UTF-16 code units, the node bytes.
function checkUserName() {
  const field = $("#user");
  const n = new TextEncoder().encode(field.value).length;
  field.setCustomValidity(n > MAX_USER_BYTES ? `At most ${MAX_USER_BYTES} bytes: this name has ${n}.` : "");
}

function init() {
  const q = new URLSearchParams(location.search);
  for (const k of ["user", "room", "group", "policy"]) if (q.get(k)) $("#" + k).value = q.get(k);
  $("#compose").addEventListener("input", onInput);
  $("#compose").addEventListener("keydown", onKeyDown);
  $("#user").addEventListener("input", checkUserName);
  checkUserName();
  $("#reauth-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("#reauth-token").value.trim();
    $("#reauth-token").value = "";
    $("#reauth-form").hidden = true;
    session.reauth(token);
  });
  $("#join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    join({ user: $("#user").value, room: $("#room").value, group: $("#group").value, policy: $("#policy").value, token: $("#token").value.trim() });
  });
  if (q.get("user") && q.get("room")) {
    join({ user: q.get("user"), room: q.get("room"), group: q.get("group") || "", policy: q.get("policy") || "default" });
  }
  // For tests and the curious: the session and the room model.
  window.switchboard = { get session() { return session; }, get room() { return room; } };
}

init();
