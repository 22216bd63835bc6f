package jsonlen_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/jsonlen"
)

// Escaped is never below what encoding/json writes, with and without
// HTML escaping, and equal to it for strings without control characters.
func TestEscaped(t *testing.T) {
	for _, s := range []string{
		"", "hello", `"quoted" \ back`, "<b>&amp;</b>", "é漢字🙂", "a\u2028b\u2029c",
		"\xff\xfe bad utf-8 \xc3", strings.Repeat(`"`, 64), "tab\there\nline\x01\x1f",
	} {
		for _, html := range []bool{true, false} {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(html)
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
			written := buf.Len() - len(`""`+"\n")
			got := jsonlen.Escaped(s, html)
			if got < written {
				t.Errorf("Escaped(%q, %v) = %d, below the %d bytes written", s, html, got, written)
			}
			if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) && got != written {
				t.Errorf("Escaped(%q, %v) = %d, want %d", s, html, got, written)
			}
		}
	}
}
