package textsdp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/internal/t140"
)

// phoneOffer is shaped like a SIP phone's offer: audio and text, the text
// stream with red over t140 and its connection line at the session level.
const phoneOffer = "v=0\r\n" +
	"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n" +
	"s=-\r\n" +
	"c=IN IP4 192.0.2.10\r\n" +
	"t=0 0\r\n" +
	"m=audio 49170 RTP/AVP 0\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"m=text 11000 RTP/AVP 100 98\r\n" +
	"a=rtpmap:98 T140/1000\r\n" +
	"a=rtpmap:100 red/1000\r\n" +
	"a=fmtp:100 98/98/98\r\n"

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Media
		err  error
	}{
		{"phone", phoneOffer, Media{Addr: netip.MustParseAddrPort("192.0.2.10:11000"), Format: t140.Format{T140: 98, RED: 100}, Index: 1, Kinds: []string{"audio", "text"}}, nil},
		{"plain t140, media-level address", strings.Replace(strings.Replace(phoneOffer, "m=text 11000 RTP/AVP 100 98\r\n", "m=text 11000 RTP/AVP 98\r\nc=IN IP6 2001:db8::1\r\n", 1), "a=fmtp:100 98/98/98\r\n", "", 1),
			Media{Addr: netip.MustParseAddrPort("[2001:db8::1]:11000"), Format: t140.Format{T140: 98}, Index: 1, Kinds: []string{"audio", "text"}}, nil},
		{"red carrying something else is not used", strings.Replace(phoneOffer, "98/98/98", "98/0", 1),
			Media{Addr: netip.MustParseAddrPort("192.0.2.10:11000"), Format: t140.Format{T140: 98}, Index: 1, Kinds: []string{"audio", "text"}}, nil},
		{"on hold, media-level", phoneOffer + "a=sendonly\r\n",
			Media{Addr: netip.MustParseAddrPort("192.0.2.10:11000"), Format: t140.Format{T140: 98, RED: 100}, Index: 1, Kinds: []string{"audio", "text"}, Direction: SendOnly}, nil},
		{"inactive, session-level", strings.Replace(phoneOffer, "t=0 0\r\n", "t=0 0\r\na=inactive\r\n", 1),
			Media{Addr: netip.MustParseAddrPort("192.0.2.10:11000"), Format: t140.Format{T140: 98, RED: 100}, Index: 1, Kinds: []string{"audio", "text"}, Direction: Inactive}, nil},
		{"the stream's own direction wins", strings.Replace(phoneOffer, "t=0 0\r\n", "t=0 0\r\na=inactive\r\n", 1) + "a=recvonly\r\n",
			Media{Addr: netip.MustParseAddrPort("192.0.2.10:11000"), Format: t140.Format{T140: 98, RED: 100}, Index: 1, Kinds: []string{"audio", "text"}, Direction: RecvOnly}, nil},
		{"audio only", strings.Split(phoneOffer, "m=text")[0], Media{}, ErrNoText},
		{"text refused", strings.Replace(phoneOffer, "m=text 11000", "m=text 0", 1), Media{}, ErrNoText},
		{"text without t140", strings.Replace(phoneOffer, "T140/1000", "x/1000", 1), Media{}, ErrNoText},
		{"text over SRTP", strings.Replace(phoneOffer, "m=text 11000 RTP/AVP", "m=text 11000 RTP/SAVP", 1), Media{}, ErrNoText},
		{"on hold the RFC 2543 way", strings.Replace(phoneOffer, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0", 1),
			Media{Addr: netip.MustParseAddrPort("0.0.0.0:11000"), Format: t140.Format{T140: 98, RED: 100}, Index: 1, Kinds: []string{"audio", "text"}, Direction: SendOnly, Held: true}, nil},
		{"on hold the RFC 2543 way, recvonly", strings.Replace(phoneOffer, "c=IN IP4 192.0.2.10", "c=IN IP6 ::", 1) + "a=recvonly\r\n",
			Media{Addr: netip.MustParseAddrPort("[::]:11000"), Format: t140.Format{T140: 98, RED: 100}, Index: 1, Kinds: []string{"audio", "text"}, Direction: Inactive, Held: true}, nil},
		{"on hold the RFC 2543 way, inactive", strings.Replace(phoneOffer, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0", 1) + "a=inactive\r\n",
			Media{Addr: netip.MustParseAddrPort("0.0.0.0:11000"), Format: t140.Format{T140: 98, RED: 100}, Index: 1, Kinds: []string{"audio", "text"}, Direction: Inactive, Held: true}, nil},
		{"multicast", strings.Replace(phoneOffer, "c=IN IP4 192.0.2.10", "c=IN IP4 224.0.0.1", 1), Media{}, ErrNoText},
		{"not SDP", "hello", Media{}, ErrMalformed},
		{"empty", "", Media{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if d := cmp.Diff(got, tt.want, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
				t.Errorf("(-got +want):\n%s", d)
			}
		})
	}
}

func TestAnswerRejectsOtherStreams(t *testing.T) {
	offer, err := Parse([]byte(phoneOffer))
	if err != nil {
		t.Fatal(err)
	}
	body, err := Answer(offer, netip.MustParseAddrPort("198.51.100.1:40000"), 2, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := string(body)
	for _, want := range []string{"m=audio 0 RTP/AVP", "m=text 40000 RTP/AVP 100 98", "a=rtpmap:100 red/1000", "a=fmtp:100 98/98/98", "a=rtpmap:98 t140/1000", "c=IN IP4 198.51.100.1"} {
		if !strings.Contains(s, want) {
			t.Errorf("answer lacks %q:\n%s", want, s)
		}
	}
	back, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if back.Addr.String() != "198.51.100.1:40000" || back.Format != offer.Format || back.Index != 1 {
		t.Errorf("the answer reads back as %+v", back)
	}
}

func TestOfferRoundTrip(t *testing.T) {
	for _, f := range []t140.Format{{T140: 98, RED: 100}, {T140: 111}} {
		body, err := Offer(netip.MustParseAddrPort("127.0.0.1:5004"), f, 3, SendRecv, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		if got.Format != f || got.Addr.String() != "127.0.0.1:5004" {
			t.Errorf("offer %+v reads back as %+v:\n%s", f, got, body)
		}
	}
	if _, err := Answer(Media{Index: -1}, netip.MustParseAddrPort("127.0.0.1:1"), 2, 1, 0); !errors.Is(err, ErrNoText) {
		t.Errorf("answering no stream: err = %v", err)
	}
}

// TestAnswerMirrorsDirection: the answer to a stream offered sendonly
// (a call put on hold) says recvonly, and so on (RFC 3264, section 6.1);
// its version is the one asked for, above the session id.
func TestAnswerMirrorsDirection(t *testing.T) {
	for offered, want := range map[Direction]Direction{SendRecv: SendRecv, SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive} {
		offer, err := Parse([]byte(phoneOffer + "a=" + offered.String() + "\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		body, err := Answer(offer, netip.MustParseAddrPort("198.51.100.1:40000"), 2, 7, 3)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		if back.Direction != want {
			t.Errorf("offered %v, answered %v; want %v:\n%s", offered, back.Direction, want, body)
		}
		if !strings.Contains(string(body), "o=- 7 10 IN IP4") {
			t.Errorf("the answer's origin is not version 10 of session 7:\n%s", body)
		}
	}
}
