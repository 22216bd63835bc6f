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
//     sequence: a ZERO WIDTH JOINER joining two emoji as the emoji ZWJ
//     sequences do (a family, a rainbow flag; not a cat and a dog), the
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
		prev, emoji := rune(-1), rune(-1)
		for i := 0; i < len(c); {
			r, n := utf8.DecodeRuneInString(c[i:])
			i += n
			next := rune(-1) // the next character of the cluster
			if i < len(c) {
				next, _ = utf8.DecodeRuneInString(c[i:])
			}
			switch {
			case hidden(r) && !joins(r, prev, next, emoji, flag):
				b.WriteRune(utf8.RuneError)
			default:
				b.WriteRune(bracket(r))
			}
			prev = r
			if !isEmojiModifier(r) && r != '\uFE0F' {
				emoji = r
			}
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
// emoji is the character before r that skin tone modifiers and emoji
// presentation selectors follow (prev if none do), and flag is set when
// the cluster is a subdivision flag.
func joins(r, prev, next, emoji rune, flag bool) bool {
	switch {
	case r == '\u200D':
		// A joiner between any two pictographs stays in one cluster
		// (UAX #29's GB11), but shows only where the two make one emoji:
		// "\U0001F431\u200D\U0001F436" shows as a cat and a dog. So a
		// joiner stays only between emoji that the emoji ZWJ sequences
		// join, an element of one (perhaps with a skin tone or emoji
		// presentation) before it, and one they continue with after it.
		return next >= 0 && strings.ContainsRune(zwjNext, next) &&
			emoji >= 0 && (strings.ContainsRune(zwjFirst, emoji) || strings.ContainsRune(zwjNext, emoji))
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

// zwjFirst holds the emoji that start an emoji ZWJ sequence (Unicode
// 15.1's emoji-zwj-sequences.txt) and are not in zwjNext: the gendered
// people and activities, and the animals, faces, flags and other emoji
// that a joiner turns into another.
const zwjFirst = "\u26D3\u26F9" +
	"\U0001F344\U0001F34B\U0001F3C3\U0001F3C4\U0001F3CA\U0001F3CB\U0001F3CC\U0001F3F3\U0001F3F4" +
	"\U0001F408\U0001F415\U0001F426\U0001F43B\U0001F441\U0001F46E\U0001F46F\U0001F470\U0001F471" +
	"\U0001F473\U0001F477\U0001F481\U0001F482\U0001F486\U0001F487\U0001F575\U0001F62E\U0001F635" +
	"\U0001F636\U0001F642\U0001F645\U0001F646\U0001F647\U0001F64B\U0001F64D\U0001F64E\U0001F6A3" +
	"\U0001F6B4\U0001F6B5\U0001F6B6\U0001F926\U0001F935\U0001F937\U0001F938\U0001F939\U0001F93C" +
	"\U0001F93D\U0001F93E\U0001F9B8\U0001F9B9\U0001F9CD\U0001F9CE\U0001F9CF\U0001F9D4\U0001F9D6" +
	"\U0001F9D7\U0001F9D8\U0001F9D9\U0001F9DA\U0001F9DB\U0001F9DC\U0001F9DD\U0001F9DE\U0001F9DF" +
	"\U0001FAF1"

// zwjNext holds the emoji that follow a joiner in an emoji ZWJ sequence:
// the people of families and couples, hearts and a kiss, the signs of
// gender, the tools of professions, hair, and what turns a face, animal,
// flag or fruit into another.
const zwjNext = "\u2194\u2195\u2620\u2640\u2642\u2695\u2696\u2708\u26A7\u2744\u2764\u27A1\u2B1B" +
	"\U0001F308\U0001F32B\U0001F33E\U0001F373\U0001F37C\U0001F384\U0001F393\U0001F3A4\U0001F3A8" +
	"\U0001F3EB\U0001F3ED\U0001F466\U0001F467\U0001F468\U0001F469\U0001F48B\U0001F4A5\U0001F4A8" +
	"\U0001F4AB\U0001F4BB\U0001F4BC\U0001F525\U0001F527\U0001F52C\U0001F5E8\U0001F680\U0001F692" +
	"\U0001F7E9\U0001F7EB\U0001F91D\U0001F9AF\U0001F9B0\U0001F9B1\U0001F9B2\U0001F9B3\U0001F9BA" +
	"\U0001F9BC\U0001F9BD\U0001F9D1\U0001F9D2\U0001FA79\U0001FAF2"

// isEmojiModifier reports whether r is a skin tone modifier.
func isEmojiModifier(r rune) bool { return r >= 0x1F3FB && r <= 0x1F3FF }

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
