package rtt

import (
	"unicode"
	"unicode/utf8"
)

// Backspace returns line without its last user-perceived character, the
// way a BACKSPACE in a chunk erases it: a base character together with the
// combining marks, variation selectors and emoji modifiers that follow it,
// a whole emoji ZWJ sequence, or a regional-indicator pair (a flag). An
// empty line stays empty. An invalid byte in line counts as one character.
//
// Room applies BACKSPACE itself; Backspace is for a client that edits its
// own input line locally by the same rule.
func Backspace(line string) string {
	return line[:lastCluster([]byte(line))]
}

// zwj is ZERO WIDTH JOINER, which glues emoji into one character.
const zwj = '\u200D'

// lastCluster returns the byte offset at which the last user-perceived
// character of b begins (0 if b is empty). It walks backwards over an
// approximation of the extended grapheme cluster rules of UAX #29: GB9
// (Extend and ZWJ attach to what precedes them), GB11 (emoji joined by ZWJ)
// and GB12/GB13 (regional indicators pair up from the start of their run).
// Hangul syllables are expected precomposed; conjoining vowel and final
// jamo count as Extend, and Prepend and SpacingMark exceptions are ignored.
func lastCluster(b []byte) int {
	i := len(b)
	// GB9: trailing Extend and ZWJ belong to the character before them.
	for i > 0 {
		r, n := utf8.DecodeLastRune(b[:i])
		if !isExtend(r) && r != zwj {
			break
		}
		i -= n
	}
	if i == 0 {
		// Nothing but extenders: at the start of a line they form one
		// character with the first of them (GB1/GB2).
		return 0
	}
	r, n := utf8.DecodeLastRune(b[:i])
	start := i - n
	if isRegional(r) {
		// GB12/GB13: an odd number of indicators before this one means it
		// is the second of a pair.
		before := 0
		for j := start; j > 0; {
			r2, n2 := utf8.DecodeLastRune(b[:j])
			if !isRegional(r2) {
				break
			}
			before++
			j -= n2
		}
		if before%2 == 1 {
			_, n2 := utf8.DecodeLastRune(b[:start])
			start -= n2
		}
		return start
	}
	// GB11: Pictographic Extend* ZWJ × Pictographic, as often as it chains.
	for isPictographic(r) {
		z, nz := utf8.DecodeLastRune(b[:start])
		if z != zwj {
			break
		}
		j := start - nz
		for j > 0 {
			r2, n2 := utf8.DecodeLastRune(b[:j])
			if !isExtend(r2) {
				break
			}
			j -= n2
		}
		if j == 0 {
			break
		}
		r2, n2 := utf8.DecodeLastRune(b[:j])
		if !isPictographic(r2) {
			break
		}
		r, start = r2, j-n2
	}
	return start
}

// isExtend reports whether r attaches to the character before it (the
// Extend class of UAX #29, approximated, plus spacing marks and conjoining
// Hangul vowels and finals). ZWJ is left out: it has rules of its own.
func isExtend(r rune) bool {
	switch {
	case r < 0x0300:
		return false // no combining character lies below U+0300
	case r >= 0xFE00 && r <= 0xFE0F, // variation selectors
		r >= 0x1F3FB && r <= 0x1F3FF, // emoji modifiers (skin tones)
		r >= 0xE0020 && r <= 0xE007F, // tags (subdivision flags)
		r == 0x200C,                  // ZERO WIDTH NON-JOINER
		r >= 0x1160 && r <= 0x11FF,   // conjoining Hangul vowels and finals
		r >= 0xD7B0 && r <= 0xD7FF,   // Hangul Jamo Extended-B
		r == 0xFF9E, r == 0xFF9F:     // halfwidth katakana sound marks
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc)
}

// isRegional reports whether r is a regional indicator, half of a flag.
func isRegional(r rune) bool {
	return r >= 0x1F1E6 && r <= 0x1F1FF
}

// isPictographic approximates Extended_Pictographic: the emoji and symbols
// that a ZWJ may join. Regional indicators and emoji modifiers are not
// pictographic.
func isPictographic(r rune) bool {
	switch {
	case r < 0x00A9:
		return false
	case r == 0x00A9, r == 0x00AE, r == 0x203C, r == 0x2049, r == 0x2122,
		r == 0x2139, r >= 0x2194 && r <= 0x2199, r == 0x21A9, r == 0x21AA,
		r >= 0x2300 && r <= 0x23FF, r == 0x24C2, r >= 0x25AA && r <= 0x25FE,
		r >= 0x2600 && r <= 0x27BF, r == 0x2934, r == 0x2935,
		r >= 0x2B05 && r <= 0x2B55, r == 0x3030, r == 0x303D, r == 0x3297,
		r == 0x3299:
		return true
	case isRegional(r), r >= 0x1F3FB && r <= 0x1F3FF:
		return false
	case r >= 0x1F000 && r <= 0x1FAFF, r >= 0x1FC00 && r <= 0x1FFFD:
		return true
	}
	return false
}
