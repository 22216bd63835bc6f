package sipfront

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/internal/textsdp"
)

// ErrForeignRTPAddr: the text stream of an SDP offer or answer a caller
// sent names, as the address where it receives RTP, an IP address other
// than the one its request came from. The front would send the room's
// text there: to a third party, or to a service only the node can reach
// (UDP reflection). It refuses such SDP unless Config.RTPAnyAddress says
// otherwise.
var ErrForeignRTPAddr = errors.New("sipfront: the text stream's connection address is not the address the request came from")

// rtpAddrCheck says whether the text stream m of the SDP a caller sent
// in a request that came from source (HOST:PORT, as the transport saw
// it: sip.Request.Source) may be where the front sends RTP, and where
// it takes the caller's RTP from. It may when m is on hold (c=0.0.0.0
// or ::, which names nowhere to send to), or when m's connection
// address (the text stream's own c= line, else the session's) is the
// source's IP address. With anyAddr, any address may, but a loopback
// one in SDP from a source that is not loopback: that would aim the
// front's RTP at the node's own host, at services a stranger cannot
// reach. The error wraps ErrForeignRTPAddr and names both addresses.
func rtpAddrCheck(m textsdp.Media, source string, anyAddr bool) error {
	if m.Held {
		return nil
	}
	addr := m.Addr.Addr().Unmap().WithZone("")
	src, ok := sourceAddr(source)
	if !ok {
		return fmt.Errorf("%w: the request's source %q is not an IP address", ErrForeignRTPAddr, source)
	}
	switch {
	case addr == src:
		return nil
	case !anyAddr && private(addr) && !private(src):
		return fmt.Errorf("%w: the SDP names %s, a private address (a caller behind NAT?), the request came from %s", ErrForeignRTPAddr, addr, src)
	case !anyAddr:
		return fmt.Errorf("%w: the SDP names %s, the request came from %s", ErrForeignRTPAddr, addr, src)
	case addr.IsLoopback() && !src.IsLoopback():
		return fmt.Errorf("%w: the SDP names %s, a loopback address, and the request came from %s, another host", ErrForeignRTPAddr, addr, src)
	}
	return nil
}

// sourceAddr is the IP address of source, a request's HOST:PORT as the
// transport saw it, without IPv4 mapping or zone (an SDP address has
// neither).
func sourceAddr(source string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(source); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	host, _, err := net.SplitHostPort(source)
	if err != nil {
		host = source
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// checkRTPAddr is rtpAddrCheck for the text stream m of the SDP in req,
// with the front's Config.RTPAnyAddress.
func (s *Server) checkRTPAddr(m textsdp.Media, req *sip.Request) error {
	return rtpAddrCheck(m, req.Source(), s.cfg.RTPAnyAddress)
}

// foreignRTPWarning is the Warning header of a 488 to an offer whose
// text stream's address is not the caller's (ErrForeignRTPAddr): 399,
// with the address the request came from, which a caller behind a NAT
// that does not rewrite its SDP would not know.
func foreignRTPWarning(req *sip.Request) sip.Header {
	src := req.Source()
	if a, ok := sourceAddr(src); ok {
		src = a.String()
	}
	return sip.NewHeader("Warning", fmt.Sprintf(`399 switchboard "the text stream's connection address must be the address the request came from, %s"`, sanitizeQuoted(src)))
}

// sanitizeQuoted makes s fit in a SIP quoted-string.
func sanitizeQuoted(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '"' || c == '\\' || c < 0x20 || c == 0x7f {
			b[i] = '\''
		}
	}
	return string(b)
}

// foreignHint is logged with every refusal for ErrForeignRTPAddr.
const foreignHint = "a caller behind NAT must offer its public address (or its NAT rewrite its SDP); an operator whose callers' media comes from other addresses than their SIP (a proxy that does not relay media) can allow any address, and opens a door: Config.RTPAnyAddress, serve --sip-rtp-any-address, docs/security.md"

// private reports whether a is an address no packet from across the
// internet comes from (private, carrier-grade NAT's shared space,
// link-local): an SDP that names one likely comes from a phone behind
// a NAT that does not rewrite it.
func private(a netip.Addr) bool {
	return a.IsPrivate() || a.IsLinkLocalUnicast() || sharedSpace.Contains(a)
}

// sharedSpace is RFC 6598's shared address space, carrier-grade NAT's.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")
