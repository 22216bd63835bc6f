package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// What a node sends, and what other users type, reaches the user's
// terminal: node IDs, groups, versions and reasons in a directory, user
// names, room text, error messages, an HTTP error's body. None of it may
// act on the terminal. A foreign or hostile node, or a user through an
// honest one (the rooms drop control characters from text, not the
// bidirectional controls), could otherwise move the cursor, clear the
// screen, retitle the window and ask the terminal to type the title back
// into chat's raw input, or turn the lines after a name around.

// termSafe returns s with every character that would act on a terminal
// rather than show written as escape text a person can read: C0 and C1
// controls and DEL (ESC is `\u001b`), the bidirectional controls and
// marks (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069), the
// line and paragraph separators, and each byte that is not UTF-8 (`\x9b`,
// which a terminal reading bytes takes for a CSI).
func termSafe(s string) string { return escapeExcept(s, "") }

// termSafeLines is termSafe but for line ends and tabs, which it keeps:
// for a message of several lines.
func termSafeLines(s string) string { return escapeExcept(s, "\n\t") }

// escapeExcept is termSafe but for the runes of keep.
func escapeExcept(s, keep string) string {
	if !needsEscape(s, keep) {
		return s
	}
	var b strings.Builder
	writeSafe(&b, s, keep)
	return b.String()
}

// needsEscape reports whether s holds anything termSafe escapes, but for
// the runes of keep.
func needsEscape(s, keep string) bool {
	for i, r := range s {
		if r == utf8.RuneError && isBadByte(s[i:]) || actsOnTerminal(r) && !strings.ContainsRune(keep, r) {
			return true
		}
	}
	return false
}

// writeSafe writes s to b as termSafe returns it, but for the runes of
// keep, which it writes as they are.
func writeSafe(b *strings.Builder, s, keep string) {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && isBadByte(s[i:]):
			fmt.Fprintf(b, `\x%02x`, s[i])
		case actsOnTerminal(r) && !strings.ContainsRune(keep, r):
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
}

// isBadByte reports whether s starts with a byte that is not UTF-8 (as
// opposed to a U+FFFD written out).
func isBadByte(s string) bool {
	_, size := utf8.DecodeRuneInString(s)
	return size == 1
}

// actsOnTerminal reports whether r is a control character, or one that
// reorders the text around it.
func actsOnTerminal(r rune) bool {
	switch {
	case unicode.IsControl(r): // C0, DEL, C1
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f', r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	case r == '\u2028', r == '\u2029':
		return true
	}
	return false
}

// safeWriter is an io.Writer that writes what it is given as termSafe
// would, but for the line layout (LF, CR, tab), which it passes: the
// output of a command that prints what a node sent, line by line. A
// character cut between two writes is held until the next. It is safe
// for concurrent use, as the file it stands for is (bench connect reports
// progress from many goroutines).
type safeWriter struct {
	mu    sync.Mutex // guards carry and orders the writes to w
	w     io.Writer
	carry []byte // the start of a character the last write cut
}

// newSafeWriter returns a safeWriter writing to w.
func newSafeWriter(w io.Writer) *safeWriter { return &safeWriter{w: w} }

// Write writes p, escaped, and reports len(p) written when the escaped
// text was.
func (sw *safeWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	data := p
	if len(sw.carry) > 0 {
		data = append(sw.carry, p...)
		sw.carry = nil
	}
	// Hold a character the write cut: up to three bytes that begin one
	// and are not all of it.
	for n := 1; n <= 3 && n <= len(data); n++ {
		if tail := data[len(data)-n:]; utf8.RuneStart(tail[0]) {
			if !utf8.FullRune(tail) {
				sw.carry = append([]byte(nil), tail...)
				data = data[:len(data)-n]
			}
			break
		}
	}
	if _, err := io.WriteString(sw.w, escapeExcept(string(data), "\n\r\t")); err != nil {
		return 0, err
	}
	return len(p), nil
}
