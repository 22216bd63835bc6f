// Package jsonlen bounds how many bytes encoding/json writes for a
// string, so that callers can size a message before encoding it.
package jsonlen

import "unicode/utf8"

// Escaped is the most bytes s takes as the contents of a JSON string
// (its quotes excluded), as encoding/json writes it: control characters
// as escapes of up to six bytes (counted as six), quotes and backslashes
// as two, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped, and, when
// html is set (json.Marshal's default), <, > and & as six bytes each.
func Escaped(s string, html bool) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c < 0x20, html && (c == '<' || c == '>' || c == '&'):
				n += 6
			case c == '"' || c == '\\':
				n += 2
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
