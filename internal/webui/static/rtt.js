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

// The Go package segments text with uniseg, by the rules of Unicode 15.0;
// browsers segment by their own, later version (Intl.Segmenter, with
// ICU). Unicode 15.1 added one rule, GB9c, that joins what 15.0 keeps
// apart: an Indic conjunct, a consonant, a virama and the next consonant
// (KA VIRAMA SSA, "क्ष", is one cluster by 15.1, two by 15.0: "क्" and
// "ष"). The page must count and erase characters as the node, the Go
// clients and every later joiner do, so clusterStarts takes the browser's
// clusters and splits them again where GB9c alone joined them:
//
//   GB9c  \p{InCB=Consonant} [\p{InCB=Extend} \p{InCB=Linker}]*
//         \p{InCB=Linker} [\p{InCB=Extend} \p{InCB=Linker}]* × \p{InCB=Consonant}
//
// InCB (Indic_Conjunct_Break, DerivedCoreProperties.txt) is Linker for the
// viramas of six scripts (U+094D Devanagari, 09CD Bengali, 0ACD Gujarati,
// 0B4D Oriya, 0C4D Telugu, 0D4D Malayalam), Consonant for the consonants
// of those scripts (Indic_Syllabic_Category=Consonant: CONSONANTS, the
// same from Unicode 15.1 to 17.0), Extend for combining marks and ZWJ
// (which marks differs between versions). A consonant's
// Grapheme_Cluster_Break is Other, and by 15.0's rules a cluster never
// goes on into one except right after a Prepend character (GB9b); a
// browser joins one only by GB9b or GB9c. So a consonant inside a
// browser's cluster that does not follow a Prepend of 15.0 starts one of
// 15.0's: exactly where GB9c joined, whatever the browser takes for
// InCB=Extend. Kannada, Tamil, Gurmukhi and the other Indic scripts have
// no Linker: browsers split their conjuncts as 15.0 does.
const CONSONANTS = [
  [0x0915, 0x0939], [0x0958, 0x095f], [0x0978, 0x097f], // Devanagari
  [0x0995, 0x09a8], [0x09aa, 0x09b0], [0x09b2, 0x09b2], [0x09b6, 0x09b9],
  [0x09dc, 0x09dd], [0x09df, 0x09df], [0x09f0, 0x09f1], // Bengali
  [0x0a95, 0x0aa8], [0x0aaa, 0x0ab0], [0x0ab2, 0x0ab3], [0x0ab5, 0x0ab9],
  [0x0af9, 0x0af9], // Gujarati
  [0x0b15, 0x0b28], [0x0b2a, 0x0b30], [0x0b32, 0x0b33], [0x0b35, 0x0b39],
  [0x0b5c, 0x0b5d], [0x0b5f, 0x0b5f], [0x0b71, 0x0b71], // Oriya
  [0x0c15, 0x0c28], [0x0c2a, 0x0c39], [0x0c58, 0x0c5a], // Telugu
  [0x0d15, 0x0d3a], // Malayalam
];

// PREPEND is Grapheme_Cluster_Break=Prepend in the data of Unicode 15.0,
// the version the Go package segments by.
const PREPEND = [
  [0x0600, 0x0605], [0x06dd, 0x06dd], [0x070f, 0x070f], [0x0890, 0x0891],
  [0x08e2, 0x08e2], [0x0d4e, 0x0d4e], [0x110bd, 0x110bd], [0x110cd, 0x110cd],
  [0x111c2, 0x111c3], [0x1193f, 0x1193f], [0x11941, 0x11941], [0x11a3a, 0x11a3a],
  [0x11a84, 0x11a89], [0x11d46, 0x11d46], [0x11f02, 0x11f02],
];

function inRanges(ranges, c) {
  for (const [lo, hi] of ranges) if (c >= lo && c <= hi) return true;
  return false;
}

function isConsonant(c) {
  return c >= 0x0915 && c <= 0x0d3a && inRanges(CONSONANTS, c);
}

// clusterStarts appends to starts the offsets in s at which its extended
// grapheme clusters start by the rules of Unicode 15.0, as the Go package
// segments it, each plus base; it returns starts.
export function clusterStarts(s, base = 0, starts = []) {
  for (const { index, segment } of segmenter.segment(s)) {
    starts.push(base + index);
    // A conjunct has three code points at least, all in the BMP.
    if (segment.length < 3) continue;
    let prev = segment.codePointAt(0);
    for (let i = prev > 0xffff ? 2 : 1; i < segment.length; ) {
      const c = segment.codePointAt(i);
      if (isConsonant(c) && !inRanges(PREPEND, prev)) starts.push(base + index + i);
      prev = c;
      i += c > 0xffff ? 2 : 1;
    }
  }
  return starts;
}

// backspace returns line without its last user-perceived character (its
// last extended grapheme cluster). It segments the whole line; an Editor
// remembers its line's clusters instead.
export function backspace(line) {
  if (line === "") return "";
  const starts = clusterStarts(line);
  return line.slice(0, starts[starts.length - 1]);
}

// graphemes counts the user-perceived characters of s: its extended
// grapheme clusters, as the Go package counts them (clusterStarts).
export function graphemes(s) {
  return clusterStarts(s).length;
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
// Text typed since is segmented (clusterStarts, Unicode 15.0's clusters)
// when a BACKSPACE needs it, from the start of the last remembered
// cluster (a boundary, where segmenting is as at the start of a text);
// the BACKSPACE then drops the last start. Unlike the Go package, it does
// not shorten that last cluster to a stand-in: the browser's segmenter,
// under clusterStarts, joins Indic conjuncts (GB9c), whose state a
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
      clusterStarts(buf.slice(from), from, this.starts);
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
        this.cr = false;
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

// lineAfter is what a line shows after text is written on it: the lines
// the text completed (a line separator, or the line's byte bound) and the
// line then, with the characters the model drops (controls, escape
// sequences, a BOM) left out and a tab made a space. The compose box
// holds what its own line shows with this.
export function lineAfter(line, text) {
  const e = new Editor();
  e.set(line);
  const done = [];
  e.write(text, done);
  return { done, line: e.buf };
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
