package rtt

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLineBytes is the longest current line, in bytes of UTF-8, that a
// sender can hold. A character that would make the line longer completes
// the line first (as if a line separator came before it) and starts the
// next one, so no sender's state can grow without bound. A BACKSPACE after
// such a forced break finds the new, empty line and does nothing.
const MaxLineBytes = 4096

// The characters T.140 gives a meaning, and the ones this package adds.
const (
	bel     = '\u0007' // BELL: an alert, not text
	bs      = '\u0008' // BACKSPACE: erase the last character
	ht      = '\u0009' // HORIZONTAL TAB: shown as one space
	lf      = '\u000A' // LINE FEED: ends a line (alone or after CR)
	cr      = '\u000D' // CARRIAGE RETURN: ends a line; an LF after it is part of it
	esc     = '\u001B' // ESCAPE: starts a control sequence (SGR, INT), dropped whole
	csi     = '\u009B' // CONTROL SEQUENCE INTRODUCER: as ESC [
	lineSep = '\u2028' // LINE SEPARATOR: T.140's new line
	paraSep = '\u2029' // PARAGRAPH SEPARATOR: ends a line too
	bom     = '\uFEFF' // BYTE ORDER MARK / ZWNBSP: ignored
	lost    = '\uFFFD' // REPLACEMENT CHARACTER: marks text lost in transit
)

// editor is one sender's current, unfinished line.
type editor struct {
	// buf is the line's text: valid UTF-8 holding no control character,
	// line or paragraph separator or BOM, at most MaxLineBytes long.
	buf []byte
	// cr is set after a CR, so that an LF right after it, even in the
	// next chunk, does not end a second line.
	cr bool
	// seg remembers buf's clusters for BACKSPACE. Whatever replaces or
	// empties buf resets it.
	seg segmentation
}

// setLine makes text the line, as a snapshot restores it.
func (e *editor) setLine(text []byte) {
	e.buf = text
	e.seg.reset()
}

// write applies text to the line. It appends every line it completes to
// done and returns done and the number of BELs in text.
//
// Characters are handled one at a time: CR, LF, CR LF, LINE SEPARATOR and
// PARAGRAPH SEPARATOR complete the line; BACKSPACE erases its last
// user-perceived character; BEL is counted; HT becomes a space; ESC and
// C1 CSI sequences are dropped whole when they lie within text; BOM and
// every other C0 or C1 control and DEL are dropped; each run of bytes
// that is not UTF-8 becomes one U+FFFD. Dropped characters and BEL are
// invisible: they do not separate a CR from its LF.
func (e *editor) write(text string, done []string) ([]string, int) {
	// The line lives in locals while the chunk is applied: fewer stores
	// into the heap-allocated editor.
	buf, pending := e.buf, e.cr
	alerts := 0
	for i := 0; i < len(text); {
		r, n := rune(text[i]), 1
		if r >= 0x20 && r < 0x7F {
			// Printable ASCII, most of what people type.
			i++
			pending = false
			if len(buf) >= MaxLineBytes {
				done, buf = e.endLine(done, buf)
			}
			buf = append(buf, byte(r))
			continue
		}
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(text[i:])
			if r == utf8.RuneError && n == 1 {
				i++
				for i < len(text) {
					if r2, n2 := utf8.DecodeRuneInString(text[i:]); r2 != utf8.RuneError || n2 != 1 {
						break
					}
					i++
				}
				pending = false
				done, buf = e.appendRune(done, buf, lost)
				continue
			}
		}
		i += n
		switch {
		case r == lf && pending:
			pending = false
		case r == lf, r == lineSep, r == paraSep:
			pending = false
			done, buf = e.endLine(done, buf)
		case r == cr:
			done, buf = e.endLine(done, buf)
			pending = true
		case r == bs:
			pending = false
			buf = e.seg.erase(buf)
		case r == bel:
			alerts++
		case r == ht:
			pending = false
			done, buf = e.appendRune(done, buf, ' ')
		case r == esc:
			i += escapeLen(text[i:])
		case r == csi:
			i += csiLen(text[i:])
		case r == bom, unicode.IsControl(r):
			// Dropped.
		default:
			pending = false
			done, buf = e.appendRune(done, buf, r)
		}
	}
	e.buf, e.cr = buf, pending
	return done, alerts
}

// put appends r to the line, completing the line first if r would make it
// longer than MaxLineBytes.
func (e *editor) put(r rune, done []string) []string {
	e.cr = false
	done, e.buf = e.appendRune(done, e.buf, r)
	return done
}

// appendRune appends r to the line in buf, completing the line first if r
// would make it longer than MaxLineBytes.
func (e *editor) appendRune(done []string, buf []byte, r rune) ([]string, []byte) {
	if len(buf)+utf8.RuneLen(r) > MaxLineBytes {
		done, buf = e.endLine(done, buf)
	}
	return done, utf8.AppendRune(buf, r)
}

// endLine appends the line in buf to done and empties buf.
func (e *editor) endLine(done []string, buf []byte) ([]string, []byte) {
	e.seg.reset()
	return append(done, string(buf)), buf[:0]
}

// SequenceLen returns the length in bytes of the escape sequence s
// begins with, ESC or U+009B (C1 CSI) included, as a line drops it
// whole; 0 when s begins with neither. Text cut inside a sequence loses
// its first part, and the rest shows as text: a cutter keeps a sequence
// on one side (the WebRTC front's 1,000-byte chunks).
func SequenceLen(s string) int {
	switch {
	case strings.HasPrefix(s, "\x1b"):
		return 1 + escapeLen(s[1:])
	case strings.HasPrefix(s, "\u009b"):
		return 2 + csiLen(s[2:])
	}
	return 0
}

// escapeLen returns how many bytes after an ESC belong to its escape
// sequence (ECMA-35/ECMA-48): ESC [ starts a control sequence such as
// T.140's SGR; ESC and one byte from 0x30 to 0x7E is a whole sequence
// (T.140's INT is ESC a). Anything else leaves the ESC alone.
func escapeLen(s string) int {
	switch {
	case s == "":
		return 0
	case s[0] == '[':
		return 1 + csiLen(s[1:])
	case s[0] >= 0x30 && s[0] <= 0x7E:
		return 1
	}
	return 0
}

// csiLen returns how many bytes after a CSI belong to its control
// sequence: parameter bytes (0x30-0x3F), then intermediate bytes
// (0x20-0x2F), then one final byte (0x40-0x7E). A sequence cut short by
// another character or by the end of the chunk ends there.
func csiLen(s string) int {
	j := 0
	for j < len(s) && s[j] >= 0x30 && s[j] <= 0x3F {
		j++
	}
	for j < len(s) && s[j] >= 0x20 && s[j] <= 0x2F {
		j++
	}
	if j < len(s) && s[j] >= 0x40 && s[j] <= 0x7E {
		j++
	}
	return j
}

// storable reports whether r may appear in a line's text: it is not a
// control character, a line or paragraph separator or a BOM.
func storable(r rune) bool {
	return r != lineSep && r != paraSep && r != bom && !unicode.IsControl(r)
}
