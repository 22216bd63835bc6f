package textsdp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bodies to Parse, as an INVITE's offer: it
// must never panic, fail only with the package's errors, and what it
// takes must be answerable, the answer read back to the same stream.
func FuzzParse(f *testing.F) {
	f.Add(phoneOffer)
	f.Add("v=0\r\nm=text 1 RTP/AVP 98\r\n")
	// Hostile offers: absurd ports and payload types, a red naming
	// itself, thousands of formats, m= lines without text, addresses
	// that are not unicast.
	f.Add(strings.Replace(phoneOffer, "m=text 11000", "m=text 99999999999", 1))
	f.Add(strings.Replace(phoneOffer, "m=text 11000", "m=text -5", 1))
	f.Add(strings.Replace(phoneOffer, "m=text 11000", "m=text 11000/2", 1))
	f.Add(strings.Replace(phoneOffer, "RTP/AVP 100 98", "RTP/AVP 100 98 300 -1 98x", 1))
	f.Add(strings.Replace(phoneOffer, "98/98/98", "100/100", 1))
	f.Add(strings.Replace(phoneOffer, "a=rtpmap:98 T140/1000", "a=rtpmap:98 t140/1000\r\na=rtpmap:98 red/1000", 1))
	f.Add(strings.Replace(phoneOffer, "RTP/AVP 100 98", "RTP/AVP"+strings.Repeat(" 98", 2000), 1))
	f.Add(strings.Replace(phoneOffer, "c=IN IP4 192.0.2.10", "c=IN IP4 224.0.0.1", 1))
	f.Add(strings.Replace(phoneOffer, "c=IN IP4 192.0.2.10", "c=IN IP6 ::ffff:192.0.2.10", 1))
	f.Add(strings.Replace(phoneOffer, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0", 1))
	f.Add(strings.Repeat("m=audio 0 RTP/AVP 0\r\n", 100) + phoneOffer)
	f.Add("v=0\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		m, err := Parse([]byte(body))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoText) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !m.Addr.IsValid() || m.Addr.Port() == 0 || !m.Addr.Addr().IsValid() || m.Addr.Addr().IsMulticast() {
			t.Fatalf("taken a stream to %v", m.Addr)
		}
		if m.Held != m.Addr.Addr().IsUnspecified() || m.Held && m.Direction.Receives() {
			t.Fatalf("a stream to %v taken as held %v, %v", m.Addr, m.Held, m.Direction)
		}
		if m.Format.T140 == 0 || m.Format.T140 > 127 || m.Format.RED > 127 || m.Format.RED == m.Format.T140 && m.Format.RED != 0 {
			t.Fatalf("taken the payload types %+v", m.Format)
		}
		answer, err := Answer(m, netip.MustParseAddrPort("192.0.2.1:40000"), 2, 1, 0)
		if err != nil {
			t.Fatalf("answering %+v: %v", m, err)
		}
		back, err := Parse(answer)
		if err != nil || back.Format != m.Format || back.Index != m.Index || len(back.Kinds) != len(m.Kinds) || back.Direction != m.Direction.Answer() {
			t.Fatalf("the answer reads back as %+v (%v), offer %+v", back, err, m)
		}
	})
}
