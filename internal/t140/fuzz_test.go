package t140

import (
	"bytes"
	"errors"
	"strings"
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
	// Hostile RED payloads: headers claiming more than the packet holds,
	// more blocks than any sender carries, an offset at its largest.
	hdr := []byte{0x80, 100, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1}
	f.Add(append(append(hdr[:12:12], bytes.Repeat([]byte{0x80 | 98, 0, 0x03, 0xff}, 100)...), 98))
	f.Add(append(append(hdr[:12:12], bytes.Repeat([]byte{0x80 | 98, 0xff, 0xfc, 0}, 17)...), 98, 'x'))
	f.Add(append(hdr[:12:12], 0x80|98, 0xff, 0xfc, 1, 98, 'a', 'b'))
	// Plain T.140 of invalid UTF-8, and a CSRC count and extension
	// running past the packet.
	f.Add([]byte{0x80, 98, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xfe, 0xc3})
	f.Add([]byte{0x8f, 98, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{0x90, 98, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p rtp.Packet
		if err := p.Unmarshal(raw); err != nil {
			return
		}
		d := NewDecoder(testFormat)
		for i := range 2 {
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
			// Loss within the redundancy, then a jump far from the
			// sequence, which only the packet after it may confirm.
			p.SequenceNumber += []uint16{3, 20000}[i]
		}
	})
}

// FuzzMixer writes arbitrary text from two senders: Take must never
// panic and always return valid UTF-8, whatever the input.
func FuzzMixer(f *testing.F) {
	f.Add("ab\b\r\ncd", "x\ny")
	f.Add(strings.Repeat("\ufeff", 1000)+"a", strings.Repeat("\b", 1000))
	f.Add("e\u0301\u0301\u0301\b\b", "\r\r\n\n\u2028\u2029")
	f.Add("\x00\x1b[2J\u0085", "\uFFFD\uFFFD")
	f.Add("a\xff\xc3", "\xe2\x80")
	f.Fuzz(func(t *testing.T, a, b string) {
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

// FuzzMixerScript runs a script of the calls a front makes, one byte
// each: write a piece of text (empty ones too) from one of three senders,
// forget one, take after some time, or cut. Nothing may panic, Take must
// return valid UTF-8, and the waiting line must name each sender it holds
// once.
func FuzzMixerScript(f *testing.F) {
	f.Add([]byte{0x05, 0x40, 0x11, 0x11, 0x21, 0x01, 0x40}, "hello") // bob, twice empty, then gone
	f.Add([]byte{0x01, 0x02, 0x42, 0x03, 0x60, 0x43, 0x12, 0x41}, "a\rb\u2028c\b")
	f.Fuzz(func(t *testing.T, script []byte, text string) {
		senders := []string{"ann", "bob", "cy"}
		m := NewMixer(time.Second)
		now := testTime
		for i, op := range script {
			who := senders[int(op&0x0f)%len(senders)]
			switch op >> 4 {
			case 0: // a piece of text
				r := []rune(text)
				from := i % (len(r) + 1)
				m.Write(who, string(r[from:min(len(r), from+int(op&0x0f))]), now)
			case 1: // an empty chunk
				m.Write(who, "", now)
			case 2:
				m.Forget(who)
			case 3:
				m.Cut()
			default: // take, after 0 to 15 quarter seconds
				now = now.Add(time.Duration(op&0x0f) * 250 * time.Millisecond)
				if out := m.Take(now); !utf8.Valid(out) {
					t.Fatalf("invalid UTF-8 out: %q", out)
				}
			}
			seen := map[string]bool{}
			for _, w := range m.waiting {
				if seen[w] || m.senders[w] == nil {
					t.Fatalf("after op %d (%#x): waiting %q names %q twice or a sender forgotten", i, op, m.waiting, w)
				}
				seen[w] = true
			}
		}
	})
}

var testTime = time.Unix(0, 0)
