// Package textsdp is the SDP offer/answer (RFC 3264) of a real-time text
// call: one `m=text` stream over RTP/AVP carrying `t140/1000`, with
// `red/1000` redundancy (RFC 4103) when both sides have it. It reads and
// writes SDP with github.com/pion/sdp and does no I/O.
//
// A node answers the text stream of an offer and rejects every other
// stream (port 0), as RFC 3264 says; an offer without a usable text
// stream gets ErrNoText, which a SIP server turns into 488 Not Acceptable
// Here, and one that is not SDP at all gets ErrMalformed (400).
package textsdp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/switchboard/switchboard/internal/t140"
)

// Errors a caller can tell apart with errors.Is.
var (
	// ErrMalformed: the body is not SDP, or a line of it is wrong.
	ErrMalformed = errors.New("textsdp: malformed SDP")
	// ErrNoText: the SDP has no text stream this package can take: no
	// `m=text` over RTP/AVP with t140/1000, or one refused (port 0), or
	// without an address to send to.
	ErrNoText = errors.New("textsdp: no usable real-time text stream")
)

// Default payload types of the streams this package offers.
const (
	DefaultT140PT = 98
	DefaultREDPT  = 100
)

// Direction is which way text may go on a stream, as the side that wrote
// the SDP says of itself (RFC 3264, section 5.1): a=sendrecv (the zero
// value, and the default when the SDP says nothing), a=sendonly,
// a=recvonly or a=inactive. A phone puts a call on hold by offering
// sendonly or inactive again.
type Direction uint8

// The directions a stream may have.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

var directionNames = [...]string{SendRecv: "sendrecv", SendOnly: "sendonly", RecvOnly: "recvonly", Inactive: "inactive"}

// String is the direction's SDP attribute name.
func (d Direction) String() string {
	if int(d) < len(directionNames) {
		return directionNames[d]
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// Sends reports whether the side that said d sends text.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the side that said d takes text.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// Answer is the direction an answerer that can send and receive gives
// to an offer of d: its mirror image (RFC 3264, section 6.1).
func (d Direction) Answer() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// withoutReceiving is d for a side that takes no text: what a held
// (c=0.0.0.0) stream's attribute amounts to.
func (d Direction) withoutReceiving() Direction {
	switch d {
	case SendRecv:
		return SendOnly
	case RecvOnly:
		return Inactive
	}
	return d
}

// direction is the last direction attribute among attrs, and whether
// there was one.
func direction(attrs []sdp.Attribute) (Direction, bool) {
	d, found := SendRecv, false
	for _, a := range attrs {
		for i, name := range directionNames {
			if a.Key == name {
				d, found = Direction(i), true
			}
		}
	}
	return d, found
}

// Media is the text stream one side of a call described.
type Media struct {
	// Addr is where that side receives RTP: the text stream's own c=
	// address, else the session's, with the m= line's port. It is what
	// the SDP says, nothing more: this package cannot tell whether the
	// address belongs to the side that wrote it, and a server that
	// sends there must check that it does (a stranger's SDP naming a
	// third party's address would aim its RTP there; sipfront holds it
	// to the IP address the SIP request came from).
	Addr netip.AddrPort
	// Format is the stream's payload types: RED is set when the side
	// offers red/1000 with the t140 payload type in every generation.
	Format t140.Format
	// Index is the text stream's place among the SDP's m= lines.
	Index int
	// Kinds are the media of every m= line ("audio", "text", ...), in order.
	Kinds []string
	// Direction is the text stream's direction: its own attribute, else
	// the session's, else SendRecv; on a held stream (Held) without the
	// receiving part.
	Direction Direction
	// Held is set when the connection address is unspecified (c=IN IP4
	// 0.0.0.0 or IN IP6 ::): the way RFC 2543 put a call on hold, which
	// RFC 3264 (section 8.4) asks answerers to understand still. Addr
	// then holds that address: the side takes no text anywhere.
	Held bool
}

// Parse reads an offer or an answer and returns its first usable text
// stream.
func Parse(body []byte) (Media, error) {
	var sd sdp.SessionDescription
	if len(body) == 0 {
		return Media{}, fmt.Errorf("%w: no body", ErrMalformed)
	}
	if err := sd.Unmarshal(body); err != nil {
		return Media{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m := Media{Index: -1}
	for _, md := range sd.MediaDescriptions {
		m.Kinds = append(m.Kinds, md.MediaName.Media)
	}
	var why []string
	for i, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "text" {
			continue
		}
		f, addr, err := textStream(&sd, md)
		if err != nil {
			why = append(why, fmt.Sprintf("m= line %d: %v", i+1, err))
			continue
		}
		m.Addr, m.Format, m.Index = addr, f, i
		if d, ok := direction(md.Attributes); ok {
			m.Direction = d
		} else {
			m.Direction, _ = direction(sd.Attributes)
		}
		if m.Held = addr.Addr().IsUnspecified(); m.Held {
			m.Direction = m.Direction.withoutReceiving()
		}
		return m, nil
	}
	if len(why) == 0 {
		why = append(why, "no m=text line")
	}
	return Media{}, fmt.Errorf("%w: %s", ErrNoText, strings.Join(why, "; "))
}

func textStream(sd *sdp.SessionDescription, md *sdp.MediaDescription) (t140.Format, netip.AddrPort, error) {
	if strings.Join(md.MediaName.Protos, "/") != "RTP/AVP" {
		return t140.Format{}, netip.AddrPort{}, fmt.Errorf("transport %q, not RTP/AVP", strings.Join(md.MediaName.Protos, "/"))
	}
	if md.MediaName.Port.Value <= 0 || md.MediaName.Port.Value > 65535 {
		return t140.Format{}, netip.AddrPort{}, fmt.Errorf("port %d: stream refused or invalid", md.MediaName.Port.Value)
	}
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil || ci.NetworkType != "IN" {
		return t140.Format{}, netip.AddrPort{}, errors.New("no IN connection address")
	}
	ip, err := netip.ParseAddr(ci.Address.Address)
	if err != nil || ip.IsMulticast() {
		return t140.Format{}, netip.AddrPort{}, fmt.Errorf("connection address %q is not a unicast IP address", ci.Address.Address)
	}
	rtpmap := map[uint8]string{}
	fmtp := map[uint8]string{}
	for _, a := range md.Attributes {
		pt, rest, ok := strings.Cut(a.Value, " ")
		n, err := strconv.ParseUint(pt, 10, 7)
		if !ok || err != nil {
			continue
		}
		switch a.Key {
		case "rtpmap":
			rtpmap[uint8(n)] = strings.ToLower(strings.TrimSpace(rest))
		case "fmtp":
			fmtp[uint8(n)] = strings.TrimSpace(rest)
		}
	}
	var f t140.Format
	var reds []uint8
	for _, s := range md.MediaName.Formats {
		n, err := strconv.ParseUint(s, 10, 7)
		if err != nil {
			continue
		}
		pt := uint8(n)
		switch rtpmap[pt] {
		case "t140/1000":
			if f.T140 == 0 {
				f.T140 = pt
			}
		case "red/1000":
			reds = append(reds, pt)
		}
	}
	if f.T140 == 0 {
		return t140.Format{}, netip.AddrPort{}, errors.New("no t140/1000 payload type")
	}
	for _, red := range reds {
		if redOf(fmtp[red], f.T140) {
			f.RED = red
			break
		}
	}
	return f, netip.AddrPortFrom(ip.Unmap(), uint16(md.MediaName.Port.Value)), nil
}

// redOf reports whether a red fmtp ("98/98/98") names only the t140
// payload type; a red without fmtp is taken as carrying t140.
func redOf(fmtp string, t140PT uint8) bool {
	if fmtp == "" {
		return true
	}
	for _, s := range strings.Split(fmtp, "/") {
		if n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 7); err != nil || uint8(n) != t140PT {
			return false
		}
	}
	return true
}

// Offer writes an offer of one text stream received at local, with
// red/1000 over t140/1000 in f (redundancy of generations) unless f.RED
// is 0, in direction d. sessionID and version go into the o= line: a
// later offer of the same session that differs must have a higher
// version.
func Offer(local netip.AddrPort, f t140.Format, generations int, d Direction, sessionID, version uint64) ([]byte, error) {
	sd := session(local, sessionID, version)
	sd.MediaDescriptions = []*sdp.MediaDescription{textMedia(local.Port(), f, generations, d)}
	return sd.Marshal()
}

// Answer writes the answer to offer: its text stream received at local
// with the offer's payload types (red only if the offer had it) and the
// mirror of its direction, every other stream refused with port 0.
// sessionID goes into the o= line, with version: an answer to a later
// offer of the same session that differs from the one before must have
// a higher version (RFC 3264, section 8).
func Answer(offer Media, local netip.AddrPort, generations int, sessionID, version uint64) ([]byte, error) {
	if offer.Index < 0 || offer.Index >= len(offer.Kinds) {
		return nil, fmt.Errorf("%w: the offer has no text stream to answer", ErrNoText)
	}
	sd := session(local, sessionID, version)
	for i, kind := range offer.Kinds {
		if i == offer.Index {
			sd.MediaDescriptions = append(sd.MediaDescriptions, textMedia(local.Port(), offer.Format, generations, offer.Direction.Answer()))
			continue
		}
		// RFC 3264: a refused stream keeps its m= line with port 0; its
		// formats must still be listed, any will do.
		sd.MediaDescriptions = append(sd.MediaDescriptions, &sdp.MediaDescription{
			MediaName: sdp.MediaName{Media: kind, Port: sdp.RangedPort{Value: 0}, Protos: []string{"RTP", "AVP"}, Formats: []string{"0"}},
		})
	}
	return sd.Marshal()
}

func session(local netip.AddrPort, sessionID, version uint64) *sdp.SessionDescription {
	addrType := "IP4"
	if local.Addr().Is6() {
		addrType = "IP6"
	}
	return &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "-", SessionID: sessionID, SessionVersion: sessionID + version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: local.Addr().String(),
		},
		SessionName: "switchboard",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: local.Addr().String()},
		},
		TimeDescriptions: []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
}

func textMedia(port uint16, f t140.Format, generations int, d Direction) *sdp.MediaDescription {
	if generations <= 0 {
		generations = t140.DefaultGenerations
	}
	t := strconv.Itoa(int(f.T140))
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: "text", Port: sdp.RangedPort{Value: int(port)}, Protos: []string{"RTP", "AVP"}}}
	if f.RED != 0 {
		r := strconv.Itoa(int(f.RED))
		md.MediaName.Formats = append(md.MediaName.Formats, r)
		md.Attributes = append(md.Attributes,
			sdp.Attribute{Key: "rtpmap", Value: r + " red/1000"},
			sdp.Attribute{Key: "fmtp", Value: r + " " + strings.Repeat(t+"/", generations) + t})
	}
	md.MediaName.Formats = append(md.MediaName.Formats, t)
	md.Attributes = append(md.Attributes,
		sdp.Attribute{Key: "rtpmap", Value: t + " t140/1000"},
		sdp.Attribute{Key: d.String()})
	return md
}
