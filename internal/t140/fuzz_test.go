package t140

import (
	"bytes"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pion/rtp"
)

// FuzzDecode feeds arbitrary packets to a decoder: it must never panic,
// and every error must be one of the package's sentinels.
func FuzzDecode(f *testing.F) {
	e := NewEncoder(testFormat, 7, 1, 0)
	for _, c := range []string{"a", "", "héllo\u2028"} {
		p, _ := e.Packet([]byte(c), 100)
		raw, _ := p.Marshal()
		f.Add(raw)
	}
	f.Add([]byte{0x80, 100, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xe2, 0, 4, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p rtp.Packet
		if err := p.Unmarshal(raw); err != nil {
			return
		}
		d := NewDecoder(testFormat)
		for range 2 {
			got, err := d.Decode(&p)
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrPayloadType) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if got.Lost > 0 && !bytes.HasPrefix(got.Text, []byte(Missing)) {
				t.Fatalf("loss not marked: %q", got.Text)
			}
			p.SequenceNumber += 3
		}
	})
}

// FuzzMixer writes arbitrary text from two senders: Take must never
// panic and always return valid UTF-8 when the input was.
func FuzzMixer(f *testing.F) {
	f.Add("ab\b\r\ncd", "x\ny")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		m := NewMixer(0)
		var t0 = testTime
		m.Write("a", a, t0)
		m.Write("b", b, t0)
		out := m.Take(t0.Add(DefaultSwitchAfter))
		if !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8 out: %q", out)
		}
	})
}

var testTime = time.Unix(0, 0)
