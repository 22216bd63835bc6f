// rtt.js: the real-time text model of the Go package rtt, for the
// browser. Room keeps the last completed lines of all senders and each
// sender's current line; apply() takes one chunk as the server delivers
// it. The rules are the Go package's (rtt/doc.go) and the tests run the
// same vectors against both (internal/webui/testdata/rtt.json).

export const MAX_LINE_BYTES = 4096;
export const DEFAULT_MAX_LINES = 100;

const BEL = 0x07, BS = 0x08, HT = 0x09, LF = 0x0a, CR = 0x0d, ESC = 0x1b;
const CSI = 0x9b, LINE_SEP = 0x2028, PARA_SEP = 0x2029, BOM = 0xfeff;
const LOST = "\uFFFD";

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
const encoder = new TextEncoder();

// utf8Len is the length of s in bytes of UTF-8.
function utf8Len(s) {
  return encoder.encode(s).length;
}

// runeLen is the length of code point c in bytes of UTF-8.
function runeLen(c) {
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

function isControl(c) {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

// backspace returns line without its last user-perceived character (its
// last extended grapheme cluster). It segments the whole line; an Editor
// remembers its line's clusters instead.
export function backspace(line) {
  if (line === "") return "";
  let last = 0;
  for (const seg of segmenter.segment(line)) last = seg.index;
  return line.slice(0, last);
}

// graphemes counts the user-perceived characters of s.
export function graphemes(s) {
  let n = 0;
  for (const _ of segmenter.segment(s)) n++;
  return n;
}

// escapeLen is how many code points after an ESC belong to its sequence.
function escapeLen(cps, i) {
  if (i >= cps.length) return 0;
  const c = cps[i];
  if (c === 0x5b) return 1 + csiLen(cps, i + 1);
  if (c >= 0x30 && c <= 0x7e) return 1;
  return 0;
}

// csiLen is how many code points after a CSI belong to its sequence.
function csiLen(cps, i) {
  let j = i;
  while (j < cps.length && cps[j] >= 0x30 && cps[j] <= 0x3f) j++;
  while (j < cps.length && cps[j] >= 0x20 && cps[j] <= 0x2f) j++;
  if (j < cps.length && cps[j] >= 0x40 && cps[j] <= 0x7e) j++;
  return j - i;
}

// Editor is one sender's current line.
//
// It remembers where the line's clusters start, as the Go package does
// (rtt/segment.go), so that a BACKSPACE does not segment the whole line:
// the line only grows at its end or loses its last cluster, and a
// boundary depends only on the text before it and the character at it,
// so the starts up to the end of the last segmented cluster stay valid.
// Text typed since is segmented when a BACKSPACE needs it, from the start
// of the last remembered cluster (a boundary, where the segmenter is as at
// the start of a text); the BACKSPACE then drops the last start. Unlike
// the Go package, it does not shorten that last cluster to a stand-in:
// browsers' Unicode versions join Indic conjuncts (GB9c), whose state a
// stand-in does not keep, so typing after a very long cluster costs its
// length, besides the segmenter's own cost per call.
class Editor {
  constructor() {
    this.buf = "";
    this.bytes = 0;
    this.cr = false;
    this.seq = 0;
    this.starts = []; // where the clusters of buf.slice(0, this.done) start
    this.done = 0; // how much of buf starts covers
  }

  set(text) {
    this.buf = text;
    this.bytes = utf8Len(text);
    this.starts = [];
    this.done = 0;
  }

  endLine(done) {
    done.push(this.buf);
    this.buf = "";
    this.bytes = 0;
    this.starts = [];
    this.done = 0;
  }

  // erase removes the last extended grapheme cluster of the line.
  erase() {
    const buf = this.buf, n = buf.length;
    if (n > this.done) {
      // Between two ASCII characters there is always a boundary except
      // within CR LF: text typed since can lose its last one unsegmented.
      const b = buf.charCodeAt(n - 1);
      if (b < 0x80) {
        const a = n > 1 ? buf.charCodeAt(n - 2) : -1;
        if (a < 0x80 && !(a === CR && b === LF)) {
          this.buf = buf.slice(0, n - 1);
          this.bytes--;
          return;
        }
      }
      const from = this.starts.length > 0 ? this.starts.pop() : 0;
      for (const seg of segmenter.segment(buf.slice(from))) this.starts.push(from + seg.index);
      this.done = n;
    }
    if (this.starts.length === 0) return; // empty
    const cut = this.starts.pop();
    this.bytes -= utf8Len(buf.slice(cut));
    this.buf = buf.slice(0, cut);
    this.done = cut;
  }

  appendRune(done, c) {
    const n = runeLen(c);
    if (this.bytes + n > MAX_LINE_BYTES) this.endLine(done);
    this.buf += String.fromCodePoint(c);
    this.bytes += n;
  }

  // write applies text, pushing completed lines to done; it returns the
  // number of BELs.
  write(text, done) {
    const cps = [];
    for (const ch of text) {
      const c = ch.codePointAt(0);
      // A lone surrogate is JavaScript's invalid UTF-8: one U+FFFD.
      cps.push(c >= 0xd800 && c <= 0xdfff ? 0xfffd : c);
    }
    let alerts = 0;
    for (let i = 0; i < cps.length; ) {
      const c = cps[i++];
      if (c >= 0x20 && c < 0x7f) {
        this.cr = false;
        this.appendRune(done, c);
        continue;
      }
      if (c === LF && this.cr) {
        this.cr = false;
      } else if (c === LF || c === LINE_SEP || c === PARA_SEP) {
        this.endLine(done);
      } else if (c === CR) {
        this.endLine(done);
        this.cr = true;
      } else if (c === BS) {
        this.cr = false;
        this.erase();
      } else if (c === BEL) {
        alerts++;
      } else if (c === HT) {
        this.cr = false;
        this.appendRune(done, 0x20);
      } else if (c === ESC) {
        i += escapeLen(cps, i);
      } else if (c === CSI) {
        i += csiLen(cps, i);
      } else if (c === BOM || isControl(c)) {
        // Dropped.
      } else {
        this.cr = false;
        this.appendRune(done, c);
      }
    }
    return alerts;
  }
}

// Room is one conversation's text.
export class Room {
  constructor(maxLines = DEFAULT_MAX_LINES) {
    this.max = maxLines > 0 ? maxLines : DEFAULT_MAX_LINES;
    this.lines = [];
    this.senders = new Map();
  }

  sender(from) {
    let s = this.senders.get(from);
    if (!s) {
      s = new Editor();
      this.senders.set(from, s);
    }
    return s;
  }

  // apply applies one chunk from a sender; seq 0 is unsequenced. It
  // returns {duplicate, gap, lines: [{from, text}], alerts}.
  apply(from, seq, text) {
    const known = this.senders.get(from);
    if (seq !== 0 && known && seq <= known.seq) {
      return { duplicate: true, gap: false, lines: [], alerts: 0 };
    }
    const s = this.sender(from);
    const done = [];
    let gap = false;
    if (seq !== 0) {
      if (seq > s.seq + 1) {
        gap = true;
        s.cr = false;
        s.appendRune(done, LOST.codePointAt(0));
      }
      s.seq = seq;
    }
    const alerts = s.write(text, done);
    const lines = done.map((t) => ({ from, text: t }));
    this.add(lines);
    return { duplicate: false, gap, lines, alerts };
  }

  add(lines) {
    this.lines.push(...lines);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }

  // seq is the last seq applied from a sender.
  seq(from) {
    const s = this.senders.get(from);
    return s ? s.seq : 0;
  }

  // live is a sender's current line.
  live(from) {
    const s = this.senders.get(from);
    return s ? s.buf : "";
  }

  // forget removes a sender, completing their line if it is not empty.
  forget(from) {
    const s = this.senders.get(from);
    if (!s) return null;
    this.senders.delete(from);
    if (s.buf === "") return null;
    const line = { from, text: s.buf };
    this.add([line]);
    return line;
  }

  // load replaces the room with a state as the server sends it
  // ({lines: [{from, t}], live, seqs, pending_cr}). Its maps are read by
  // their own entries only (Object.entries): a sender's name is never
  // looked up on them, where constructor or __proto__ would read
  // Object.prototype's.
  load(state) {
    const lines = (state.lines || []).map((l) => ({ from: l.from, text: l.t ?? l.text ?? "" }));
    this.lines = lines.slice(Math.max(lines.length - this.max, 0));
    this.senders = new Map();
    for (const [from, text] of Object.entries(state.live || {})) this.sender(from).set(text);
    for (const [from, seq] of Object.entries(state.seqs || {})) this.sender(from).seq = seq;
    for (const [from, on] of Object.entries(state.pending_cr || {})) if (on) this.sender(from).cr = true;
  }

  // state is a copy of the room in the shape of the Go State. Its maps
  // are keyed by sender, a name the user chose: objects without a
  // prototype, so that a sender named __proto__ is an entry like any
  // other (on a plain object, live["__proto__"] = text sets nothing) and
  // one named constructor or hasOwnProperty is no inherited member. Read
  // them by own properties (Object.hasOwn, Object.entries).
  state() {
    const live = Object.create(null), seqs = Object.create(null), pendingCR = Object.create(null);
    for (const [from, s] of this.senders) {
      live[from] = s.buf;
      if (s.seq !== 0) seqs[from] = s.seq;
      if (s.cr) pendingCR[from] = true;
    }
    return { lines: this.lines.map((l) => ({ from: l.from, text: l.text })), live, seqs, pending_cr: pendingCR };
  }
}
