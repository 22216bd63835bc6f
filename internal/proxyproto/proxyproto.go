// Package proxyproto reads the PROXY protocol header (versions 1 and 2,
// as HAProxy specifies it) that a TCP load balancer sends before a
// client's own bytes, telling the server who the client is. Only
// connections from proxies the operator lists may carry one: anyone else
// could claim any address with it.
//
// Read is the pure parser. Conn puts it under a net.Conn, read when the
// server first reads; Listener hands out the listed proxies' connections
// as Conns, and HeaderListener hands them out only once their headers are
// read, for servers that take a connection's address at accept. Both
// bound the connections waiting for their headers, closing the oldest to
// make room. The addresses a header named are *Addr, which FromHeader
// tells from a connection's own: a header is the proxy's word, and may
// name any address, loopback included. So are the proxy's own addresses
// when its header relays a client without naming it (version 1 UNKNOWN,
// version 2 PROXY of family UNSPEC): only the proxy's own connection
// (version 2 LOCAL) keeps addresses of the connection's own.
package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// sigV2 opens every version 2 header.
const sigV2 = "\r\n\r\n\x00\r\nQUIT\n"

const (
	// MaxV1 is the longest a version 1 header may be, its CRLF included.
	MaxV1 = 107
	// MaxV2 bounds the part of a version 2 header after its 16 fixed
	// bytes (addresses and TLVs). The format allows 65,535; load
	// balancers send a few hundred at most (addresses, an ID, TLS
	// details), and a longer one is refused rather than buffered.
	MaxV2 = 4096
)

// ErrBadHeader is wrapped by every error about a header that is not a
// valid PROXY protocol header.
var ErrBadHeader = errors.New("proxyproto: not a valid PROXY protocol header")

// ErrNothingSent is wrapped, with the reader's error, by Read's error
// when the connection ended before its first byte, closed (io.EOF) or
// reset (ECONNRESET): a proxy's connect-only health check, which sends
// no header, bad or good. HAProxy's, for one, ends its checks with a
// reset, to leave no TIME_WAIT behind.
var ErrNothingSent = errors.New("proxyproto: the connection ended before its first byte")

// Header is what a PROXY protocol header says of a connection.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Local is true for the proxy's own connection, a health check
	// (version 2 LOCAL, whatever family it names): the connection's own
	// addresses are its addresses. Only then.
	Local bool
	// Source is the client's address and port, and Dest the address it
	// dialled; both invalid (the zero value) when the proxy speaks for
	// itself (Local), or relays a client it does not describe (version 1
	// UNKNOWN, version 2 PROXY with family UNSPEC): that client may be
	// anyone, and the connection's addresses are the proxy's, not its.
	Source, Dest netip.AddrPort
}

// Read reads one PROXY protocol header from r, leaving the bytes after it
// in r. An error wraps ErrBadHeader when the bytes are not a header;
// ErrNothingSent and the reader's error when r ended or was reset
// before its first byte (a proxy's connect-only health check: no
// header, and no bad one either); else it is the reader's error,
// io.ErrUnexpectedEOF for a header cut short. r's buffer must hold at
// least 64 bytes (bufio's default holds 4,096): Read peeks at a version 2
// header's addresses whole.
func Read(r *bufio.Reader) (Header, error) {
	first, err := r.Peek(1)
	if err != nil {
		if err == io.EOF || errors.Is(err, errConnReset) {
			return Header{}, fmt.Errorf("%w: %w", ErrNothingSent, err)
		}
		return Header{}, err
	}
	switch first[0] {
	case 'P':
		return readV1(r)
	case sigV2[0]:
		return readV2(r)
	}
	return Header{}, fmt.Errorf("%w: it starts with %q, want \"PROXY \" or the version 2 signature", ErrBadHeader, first)
}

// eof turns a clean end of input inside a header into an unexpected one.
func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readV1 reads "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n".
func readV1(r *bufio.Reader) (Header, error) {
	line := make([]byte, 0, MaxV1)
	for {
		b, err := r.ReadByte()
		if err != nil {
			return Header{}, eof(err)
		}
		line = append(line, b)
		if b == '\n' {
			break
		}
		if len(line) == MaxV1 {
			return Header{}, fmt.Errorf("%w: version 1 header longer than %d bytes", ErrBadHeader, MaxV1)
		}
	}
	text, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return Header{}, fmt.Errorf("%w: version 1 header not ended by CRLF", ErrBadHeader)
	}
	fields := bytes.Split(text, []byte(" "))
	if string(fields[0]) != "PROXY" || len(fields) < 2 {
		return Header{}, fmt.Errorf("%w: %q", ErrBadHeader, text)
	}
	h := Header{Version: 1}
	var want func(netip.Addr) bool
	switch string(fields[1]) {
	case "UNKNOWN":
		// A client the proxy does not describe (the rest of the line
		// says nothing to rely on), not the proxy's own: Local stays
		// false.
		return h, nil
	case "TCP4":
		want = netip.Addr.Is4
	case "TCP6":
		// IPv4-mapped ones included: a dual-stack balancer writes its
		// IPv4 clients so (they are unmapped for RemoteAddr).
		want = netip.Addr.Is6
	default:
		return Header{}, fmt.Errorf("%w: protocol %q, want TCP4, TCP6 or UNKNOWN", ErrBadHeader, fields[1])
	}
	if len(fields) != 6 {
		return Header{}, fmt.Errorf("%w: %q: want PROXY, the protocol, two addresses and two ports", ErrBadHeader, text)
	}
	var addrs [2]netip.AddrPort
	for i := range addrs {
		a, err := netip.ParseAddr(string(fields[2+i]))
		if err != nil || !want(a) || a.Zone() != "" {
			return Header{}, fmt.Errorf("%w: address %q is not a %s address", ErrBadHeader, fields[2+i], fields[1])
		}
		p, err := port(fields[4+i])
		if err != nil {
			return Header{}, err
		}
		addrs[i] = netip.AddrPortFrom(a, p)
	}
	h.Source, h.Dest = addrs[0], addrs[1]
	return h, nil
}

// port parses a version 1 port: 0 to 65535 in decimal, without a sign or
// a leading zero.
func port(b []byte) (uint16, error) {
	p, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil || (len(b) > 1 && b[0] == '0') {
		return 0, fmt.Errorf("%w: port %q", ErrBadHeader, b)
	}
	return uint16(p), nil
}

// readV2 reads the binary header: the signature, version and command,
// family and protocol, a length, then that many bytes of addresses and
// TLVs (the TLVs are skipped).
func readV2(r *bufio.Reader) (Header, error) {
	fixed, err := r.Peek(16)
	if err != nil {
		if len(fixed) > 0 && !bytes.HasPrefix([]byte(sigV2), fixed[:min(len(fixed), len(sigV2))]) {
			return Header{}, fmt.Errorf("%w: not the version 2 signature", ErrBadHeader)
		}
		return Header{}, eof(err)
	}
	if string(fixed[:12]) != sigV2 {
		return Header{}, fmt.Errorf("%w: not the version 2 signature", ErrBadHeader)
	}
	verCmd, famProto, length := fixed[12], fixed[13], int(binary.BigEndian.Uint16(fixed[14:16]))
	if verCmd>>4 != 2 {
		return Header{}, fmt.Errorf("%w: version %d, want 2", ErrBadHeader, verCmd>>4)
	}
	if length > MaxV2 {
		return Header{}, fmt.Errorf("%w: version 2 header of %d bytes after its first 16, more than %d", ErrBadHeader, length, MaxV2)
	}
	local := false
	switch verCmd & 0x0f {
	case 0: // LOCAL: the proxy's own connection, a health check
		local = true
	case 1: // PROXY
	default:
		return Header{}, fmt.Errorf("%w: command %d, want LOCAL (0) or PROXY (1)", ErrBadHeader, verCmd&0x0f)
	}
	var size int // of the addresses to read: none for UNSPEC or LOCAL
	switch famProto {
	case 0x00: // UNSPEC: nothing said of the connection, a client's still under PROXY
	case 0x11: // TCP over IPv4
		size = 12
	case 0x21: // TCP over IPv6
		size = 36
	default:
		if !local {
			return Header{}, fmt.Errorf("%w: family and protocol 0x%02x: only TCP over IPv4 (0x11) or IPv6 (0x21) is served", ErrBadHeader, famProto)
		}
	}
	if local {
		size = 0 // the proxy's own: what addresses it names are skipped
	}
	if length < size {
		return Header{}, fmt.Errorf("%w: %d bytes of addresses, want at least %d", ErrBadHeader, length, size)
	}
	if _, err := r.Discard(16); err != nil {
		return Header{}, eof(err)
	}
	h := Header{Version: 2, Local: local}
	if size > 0 {
		b, err := r.Peek(size)
		if err != nil {
			return Header{}, eof(err)
		}
		ipLen := (size - 4) / 2
		src, _ := netip.AddrFromSlice(b[:ipLen])
		dst, _ := netip.AddrFromSlice(b[ipLen : 2*ipLen])
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[2*ipLen:]))
		h.Dest = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2*ipLen+2:]))
	}
	if _, err := r.Discard(length); err != nil {
		return Header{}, eof(err)
	}
	return h, nil
}
