package t140

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// label returns a sender's name as its label, "[name]: ", shows it, so
// that no name can pass a line of its own for another member's:
//
//   - Square brackets, and their fullwidth and vertical forms, become
//     parentheses: the first "]" of a line on the caller's screen always
//     ends its label, and no name can hold a "]: " followed by words
//     the caller would take for another member's.
//   - Controls, line and paragraph separators, format characters
//     (bidirectional overrides and isolates, zero-width marks and
//     joiners, soft hyphens, tags) and the other default-ignorable
//     characters (variation selectors, Hangul fillers, the combining
//     grapheme joiner) each become U+FFFD: no name can end its label's
//     line, turn the text after it around, or differ from another
//     member's name only by characters the caller cannot see. So does
//     each byte that is not UTF-8.
//   - Invisible characters stay where they are part of a visible
//     sequence: a ZERO WIDTH JOINER joining two emoji (a family), the
//     tag characters of a subdivision flag (England's), an emoji or text
//     presentation selector after a symbol (a red heart) or in a keycap,
//     an ideographic variation selector after a Han character and a
//     Mongolian free variation selector after a Mongolian letter.
//
// Characters that merely look alike (a Cyrillic "а" for a Latin "a")
// are shown as they are: telling such names apart is for the room to
// decide when a member joins.
func label(name string) string {
	if utf8.ValidString(name) && !strings.ContainsFunc(name, func(r rune) bool { return hidden(r) || bracket(r) != r }) {
		return name
	}
	var b strings.Builder
	state := -1
	for rest := name; rest != ""; {
		var c string
		c, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		flag := isTagFlag(c)
		prev := rune(-1)
		for i := 0; i < len(c); {
			r, n := utf8.DecodeRuneInString(c[i:])
			i += n
			next := rune(-1) // the next character of the cluster
			if i < len(c) {
				next, _ = utf8.DecodeRuneInString(c[i:])
			}
			switch {
			case hidden(r) && !joins(r, prev, next, flag):
				b.WriteRune(utf8.RuneError)
			default:
				b.WriteRune(bracket(r))
			}
			prev = r
		}
	}
	return b.String()
}

// bracket returns a parenthesis for a square bracket, r for anything else.
func bracket(r rune) rune {
	switch r {
	case '[', '\uFF3B', '\uFE47':
		return '('
	case ']', '\uFF3D', '\uFE48':
		return ')'
	}
	return r
}

// hidden reports whether r is not shown as a character of its own, or
// changes how the text around it is laid out: controls, line and
// paragraph separators, format characters and the other
// default-ignorable characters.
func hidden(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// joins reports whether the hidden character r is part of a visible
// sequence of its grapheme cluster, between prev and next (-1 for none);
// flag is set when the cluster is a subdivision flag.
func joins(r, prev, next rune, flag bool) bool {
	switch {
	case r == '\u200D':
		// Within a cluster a joiner holds on to what follows it only
		// when it joins two pictographs (UAX #29's GB11) or when a mark
		// or another invisible character follows: not those.
		return next >= 0 && !unicode.In(next, unicode.M) && !hidden(next)
	case r >= 0xE0020 && r <= 0xE007F:
		return flag
	case r == '\uFE0E', r == '\uFE0F':
		// Text or emoji presentation: after a symbol (a few emoji are
		// punctuation or a letter), or a keycap's digit, # or *.
		switch prev {
		case '\u203C', '\u2049', '\u2139', '\u3030', '\u303D':
			return true
		case '#', '*', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return next == '\u20E3'
		}
		return prev >= 0 && unicode.In(prev, unicode.So, unicode.Sm)
	case r >= 0x180B && r <= 0x180F:
		return prev >= 0 && unicode.Is(unicode.Mongolian, prev) && unicode.IsLetter(prev)
	case unicode.Is(unicode.Variation_Selector, r):
		return prev >= 0 && unicode.Is(unicode.Han, prev)
	}
	return false
}

// isTagFlag reports whether the cluster c is an emoji tag sequence as
// the subdivision flags are: WAVING BLACK FLAG, one or more tag
// characters, CANCEL TAG.
func isTagFlag(c string) bool {
	tags, ok := strings.CutPrefix(c, "\U0001F3F4")
	if !ok {
		return false
	}
	tags, ok = strings.CutSuffix(tags, "\U000E007F")
	if !ok || tags == "" {
		return false
	}
	for _, r := range tags {
		if r < 0xE0020 || r > 0xE007E {
			return false
		}
	}
	return true
}
