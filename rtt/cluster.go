package rtt

import (
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// Backspace returns line without its last user-perceived character, the
// way a BACKSPACE in a chunk erases it: its last extended grapheme cluster
// by the rules of Unicode's UAX #29 (a base character with its combining
// and spacing marks, a Hangul syllable however it is spelled, a whole
// emoji ZWJ sequence, a flag, CR LF). An empty line stays empty. An
// invalid byte in line counts as U+FFFD.
//
// Room applies BACKSPACE itself; Backspace is for a client that edits its
// own input line locally by the same rule. Backspace keeps nothing between
// calls, so on a line crafted against its walk back (lastCluster) it may
// segment the whole line; a Room remembers its lines' clusters instead.
func Backspace(line string) string {
	return line[:lastCluster(line)]
}

// text is what lastCluster reads: a Room's line buffer or a caller's
// string, without copying either.
type text interface{ string | []byte }

// lastCluster returns the byte offset at which the last extended grapheme
// cluster of s begins (0 if s is empty).
//
// The segmenter, uniseg, only reads forwards. Rather than segment the
// whole line, lastCluster walks back from the end to the nearest position
// that is a cluster boundary whatever comes before it (safeStart) and
// segments from there: a boundary resets the segmenter, so the clusters
// after it are the same as when segmenting from the start. Usually that
// position is one or two clusters back.
func lastCluster[T text](s T) int {
	n := len(s)
	if n == 0 {
		return 0
	}
	// Fast path: between two ASCII characters there is always a boundary
	// except within CR LF (no ASCII character is a Prepend, Extend or
	// other joining class).
	if b := s[n-1]; b < utf8.RuneSelf {
		if n == 1 {
			return 0
		}
		if a := s[n-2]; a < utf8.RuneSelf && (a != '\r' || b != '\n') {
			return n - 1
		}
	}
	p := safeStart(s)
	return p + lastStart(s[p:])
}

// lastStart segments s from its start with uniseg and returns the offset
// of its last cluster.
func lastStart[T text](s T) int {
	last, off, state := 0, 0, -1
	switch s := any(s).(type) {
	case string:
		for s != "" {
			var c string
			c, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
			last, off = off, off+len(c)
		}
	case []byte:
		for len(s) > 0 {
			var c []byte
			c, s, _, state = uniseg.FirstGraphemeCluster(s, state)
			last, off = off, off+len(c)
		}
	}
	return last
}

// safeStart returns the offset of a cluster boundary in s, as near its
// end as it can find, that does not depend on anything before it: the
// last cluster of s starts there or later. It returns 0 if there is none.
// s must not be empty.
//
// A boundary between two characters A and B is certain when uniseg breaks
// between them on their own and no rule that looks further back than A can
// join them. Only two kinds of rule do. Regional indicators pair up from
// the start of their run (GB12, GB13): safeStart counts the run. The other
// kind joins B to a sequence ending in an A that itself attaches to what
// precedes it: an emoji ZWJ sequence (GB11) and, from Unicode 15.1, an
// Indic conjunct (GB9c). For such an A, certainBreak asks uniseg about A
// and B after a context in which those rules apply.
func safeStart[T text](s T) int {
	b, nb := decodeLast(s)
	for j, steps := len(s)-nb, 0; j > 0; j, steps = j-nb, steps+1 {
		if steps == maxWalk {
			// A long run of joining characters: probing each costs more
			// than segmenting the whole text.
			return 0
		}
		// B is s[j : j+nb]; A ends at j.
		a, na := decodeLast(s[:j])
		if isRegional(a) && isRegional(b) {
			k := 1 // indicators in the run that ends with A
			for h := j - na; h > 0; {
				r, n := decodeLast(s[:h])
				if !isRegional(r) {
					break
				}
				k++
				h -= n
			}
			switch {
			case k%2 == 0:
				return j // A ends a pair
			case k >= 3:
				return j - na // A begins a pair after a pair
			}
			// A is the first of its run and pairs with B: look before A.
		} else if certainBreak(s[:j-na], a, b) {
			return j
		}
		b, nb = a, na
	}
	return 0
}

// maxWalk is how many characters safeStart probes before it gives up and
// segments from the start. uniseg reads a character in tens of
// nanoseconds; a probe takes several times that.
const maxWalk = 64

// decodeLast returns the last character of s, which must not be empty, and
// its length in bytes, as utf8.DecodeLastRune does. It reads at most the
// last utf8.UTFMax bytes, so converting them to a string does not
// allocate.
func decodeLast[T text](s T) (rune, int) {
	return utf8.DecodeLastRuneInString(string(s[max(len(s)-utf8.UTFMax, 0):]))
}

// isRegional reports whether r is a regional indicator, half of a flag.
// Unicode has closed this set: it will not grow.
func isRegional(r rune) bool {
	return r >= 0x1F1E6 && r <= 0x1F1FF
}

// lookbackContexts end where the rules that look back past one character
// apply: after an Extended_Pictographic character (COPYRIGHT SIGN) for
// GB11, and after a Devanagari consonant and virama for GB9c.
var lookbackContexts = [...]string{"\u00a9", "\u0915\u094d"}

// certainBreak reports whether, whatever comes before, there is a
// cluster boundary between a and b when before, a and b follow each other
// (regional indicators aside). It leaves every decision to uniseg, so that
// no Unicode property is copied here.
//
// The rules that look back past a (GB11, GB9c) have the form Head Mid*
// Last × B, where Last and Mid attach to what precedes them. So a boundary
// that uniseg finds between a and b alone is certain if a does not attach,
// or if a and b stay apart after every head (lookbackContexts), or if the
// character z before a neither is a head (z a b stay apart) nor continues
// one (a and b stay apart after every head followed by z).
func certainBreak[T text](before T, a, b rune) bool {
	var buf [24]byte
	if !breaksBefore(buf[:0], a, b) {
		return false // a rule joins them (CR LF, Hangul, marks, Prepend)
	}
	if breaksAt(utf8.AppendRune(append(buf[:0], 'a'), a), 1) {
		return true // a starts a cluster: no rule reaches past it
	}
	if breaksAfterHeads(buf[:0], a, b) {
		return true // no head makes a rule join them
	}
	if len(before) == 0 {
		return true // nothing before a to be a head
	}
	z, _ := decodeLast(before)
	p := utf8.AppendRune(buf[:0], z)
	return breaksBefore(p, a, b) && breaksAfterHeads(p, a, b)
}

// breaksAfterHeads reports whether b starts a cluster after each of
// lookbackContexts followed by prefix and a.
func breaksAfterHeads(prefix []byte, a, b rune) bool {
	var buf [24]byte
	for _, ctx := range lookbackContexts {
		if !breaksBefore(append(append(buf[:0], ctx...), prefix...), a, b) {
			return false
		}
	}
	return true
}

// breaksBefore reports whether b starts a cluster after p and a, in a
// text that starts with p. p's capacity must hold a and b too.
func breaksBefore(p []byte, a, b rune) bool {
	p = utf8.AppendRune(p, a)
	at := len(p)
	return breaksAt(utf8.AppendRune(p, b), at)
}

// breaksAt reports whether uniseg puts a cluster boundary at byte offset
// at of the short text b.
func breaksAt(b []byte, at int) bool {
	off, state := 0, -1
	for len(b) > 0 && off < at {
		var c []byte
		c, b, _, state = uniseg.FirstGraphemeCluster(b, state)
		off += len(c)
	}
	return off == at
}
