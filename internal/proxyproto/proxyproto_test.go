package proxyproto_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/proxyproto"
)

// v2 builds a version 2 header: verCmd, famProto, the address bytes and
// tlv bytes after them.
func v2(verCmd, famProto byte, addrs []byte, tlv int) string {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, verCmd, famProto)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)+tlv))
	b = append(b, addrs...)
	b = append(b, make([]byte, tlv)...)
	return string(b)
}

func ipv4Addrs() []byte {
	return []byte{192, 0, 2, 7, 198, 51, 100, 1, 0xd4, 0x31, 0x1f, 0x90} // 192.0.2.7:54321 -> 198.51.100.1:8080
}

func ipv6Addrs() []byte {
	src := netip.MustParseAddr("2001:db8::7").As16()
	dst := netip.MustParseAddr("2001:db8::1").As16()
	b := append(src[:], dst[:]...)
	return append(b, 0x30, 0x39, 0x1f, 0x90) // 12345 -> 8080
}

func TestRead(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name    string
		in      string
		want    proxyproto.Header
		bad     bool   // the error wraps ErrBadHeader
		errIs   error  // or is this one
		errText string // and says this
	}{
		{name: "v1 TCP4", in: "PROXY TCP4 192.0.2.7 198.51.100.1 54321 8080\r\nhello",
			want: proxyproto.Header{Version: 1, Source: ap("192.0.2.7:54321"), Dest: ap("198.51.100.1:8080")}},
		{name: "v1 TCP6", in: "PROXY TCP6 2001:db8::7 2001:db8::1 12345 8080\r\nhello",
			want: proxyproto.Header{Version: 1, Source: ap("[2001:db8::7]:12345"), Dest: ap("[2001:db8::1]:8080")}},
		{name: "v1 TCP6, IPv4-mapped (a dual-stack balancer's IPv4 client)", in: "PROXY TCP6 ::ffff:192.0.2.7 ::ffff:198.51.100.1 1 8080\r\nhello",
			want: proxyproto.Header{Version: 1, Source: ap("[::ffff:192.0.2.7]:1"), Dest: ap("[::ffff:198.51.100.1]:8080")}},
		{name: "v1 UNKNOWN, the rest ignored", in: "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nhello", want: proxyproto.Header{Version: 1}},
		{name: "v1 UNKNOWN alone", in: "PROXY UNKNOWN\r\nhello", want: proxyproto.Header{Version: 1}},
		{name: "v1 the longest", in: "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\nhello",
			want: proxyproto.Header{Version: 1, Source: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Dest: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}},
		{name: "v1 too long", in: "PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n", bad: true, errText: "longer than 107"},
		{name: "v1 LF alone", in: "PROXY TCP4 192.0.2.7 198.51.100.1 54321 8080\nhello", bad: true, errText: "CRLF"},
		{name: "v1 IPv6 under TCP4", in: "PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n", bad: true, errText: "not a TCP4 address"},
		{name: "v1 IPv4 under TCP6", in: "PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n", bad: true, errText: "not a TCP6 address"},
		{name: "v1 port out of range", in: "PROXY TCP4 192.0.2.7 198.51.100.1 65536 8080\r\n", bad: true, errText: "port"},
		{name: "v1 port with a leading zero", in: "PROXY TCP4 192.0.2.7 198.51.100.1 0123 8080\r\n", bad: true, errText: "port"},
		{name: "v1 port with a sign", in: "PROXY TCP4 192.0.2.7 198.51.100.1 +1 8080\r\n", bad: true, errText: "port"},
		{name: "v1 missing a port", in: "PROXY TCP4 192.0.2.7 198.51.100.1 54321\r\n", bad: true, errText: "two ports"},
		{name: "v1 double space", in: "PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n", bad: true},
		{name: "v1 UDP", in: "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n", bad: true, errText: "want TCP4, TCP6 or UNKNOWN"},
		{name: "v1 cut short", in: "PROXY TCP4 192.0.2.7", errIs: io.ErrUnexpectedEOF},
		{name: "not a header: a hello", in: `{"op":"hello"}` + "\n", bad: true, errText: `starts with "{"`},
		{name: "not a header: P but not PROXY", in: "PUT / HTTP/1.1\r\n", bad: true},
		{name: "nothing: a connect-only health check", in: "", errIs: proxyproto.ErrNothingSent},
		{name: "one byte, then the end", in: "P", errIs: io.ErrUnexpectedEOF},

		{name: "v2 PROXY TCP over IPv4", in: v2(0x21, 0x11, ipv4Addrs(), 0) + "hello",
			want: proxyproto.Header{Version: 2, Source: ap("192.0.2.7:54321"), Dest: ap("198.51.100.1:8080")}},
		{name: "v2 PROXY TCP over IPv6 with TLVs", in: v2(0x21, 0x21, ipv6Addrs(), 300) + "hello",
			want: proxyproto.Header{Version: 2, Source: ap("[2001:db8::7]:12345"), Dest: ap("[2001:db8::1]:8080")}},
		{name: "v2 LOCAL, a health check", in: v2(0x20, 0x00, nil, 0) + "hello", want: proxyproto.Header{Version: 2, Local: true}},
		{name: "v2 LOCAL with addresses, ignored", in: v2(0x20, 0x11, ipv4Addrs(), 0) + "hello", want: proxyproto.Header{Version: 2, Local: true}},
		{name: "v2 LOCAL of a unix socket", in: v2(0x20, 0x31, make([]byte, 216), 0) + "hello", want: proxyproto.Header{Version: 2, Local: true}},
		// A client relayed, not described: not the proxy's own.
		{name: "v2 PROXY UNSPEC", in: v2(0x21, 0x00, nil, 5) + "hello", want: proxyproto.Header{Version: 2}},
		{name: "v2 the longest", in: v2(0x21, 0x11, ipv4Addrs(), proxyproto.MaxV2-12) + "hello",
			want: proxyproto.Header{Version: 2, Source: ap("192.0.2.7:54321"), Dest: ap("198.51.100.1:8080")}},
		{name: "v2 too long", in: v2(0x21, 0x11, ipv4Addrs(), proxyproto.MaxV2-11), bad: true, errText: "more than 4096"},
		{name: "v2 version 3", in: v2(0x31, 0x11, ipv4Addrs(), 0), bad: true, errText: "version 3"},
		{name: "v2 command 2", in: v2(0x22, 0x11, ipv4Addrs(), 0), bad: true, errText: "command 2"},
		{name: "v2 UDP", in: v2(0x21, 0x12, ipv4Addrs(), 0), bad: true, errText: "0x12"},
		{name: "v2 unix socket", in: v2(0x21, 0x31, make([]byte, 216), 0), bad: true, errText: "0x31"},
		{name: "v2 addresses cut", in: v2(0x21, 0x21, ipv4Addrs(), 0), bad: true, errText: "want at least 36"},
		{name: "v2 bad signature", in: "\r\n\r\n\x00\r\nQUIZ\n\x21\x11\x00\x0c", bad: true, errText: "signature"},
		{name: "v2 bad signature, short", in: "\r\n\r\nX", bad: true, errText: "signature"},
		{name: "v2 cut in the fixed part", in: "\r\n\r\n\x00\r\nQU", errIs: io.ErrUnexpectedEOF},
		{name: "v2 cut in the addresses", in: v2(0x21, 0x11, ipv4Addrs(), 0)[:20], errIs: io.ErrUnexpectedEOF},
		{name: "v2 cut in the TLVs", in: v2(0x21, 0x11, ipv4Addrs(), 100)[:120], errIs: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tt.in), 256)
			got, err := proxyproto.Read(r)
			switch {
			case tt.bad:
				if !errors.Is(err, proxyproto.ErrBadHeader) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Read = %+v, %v; want an ErrBadHeader saying %q", got, err, tt.errText)
				}
				return
			case tt.errIs != nil:
				if !errors.Is(err, tt.errIs) {
					t.Fatalf("Read = %+v, %v; want %v", got, err, tt.errIs)
				}
				return
			case err != nil:
				t.Fatalf("Read: %v", err)
			}
			if got != tt.want {
				t.Errorf("Read = %+v, want %+v", got, tt.want)
			}
			if rest, _ := io.ReadAll(r); string(rest) != "hello" {
				t.Errorf("after the header: %q, want %q", rest, "hello")
			}
		})
	}
}

// A Conn reports the client the header names, and reads the client's
// bytes after it, the ones that came in the header's own segment
// included; a proxy's health check (LOCAL) keeps the proxy's address.
func TestConn(t *testing.T) {
	tests := []struct {
		name, header, remote, local string
	}{
		{"v1", "PROXY TCP4 192.0.2.7 198.51.100.1 54321 8080\r\n", "192.0.2.7:54321", "198.51.100.1:8080"},
		{"v2", v2(0x21, 0x21, ipv6Addrs(), 7), "[2001:db8::7]:12345", "[2001:db8::1]:8080"},
		{"v2 LOCAL", v2(0x20, 0x00, nil, 0), "pipe", "pipe"},
		{"v1 TCP6, IPv4-mapped: unmapped", "PROXY TCP6 ::ffff:192.0.2.7 ::ffff:198.51.100.1 1 8080\r\n", "192.0.2.7:1", "198.51.100.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy, server := net.Pipe()
			defer proxy.Close()
			c := proxyproto.NewConn(server)
			defer c.Close()
			go func() {
				_, _ = proxy.Write([]byte(tt.header + "first line\n"))
				_, _ = proxy.Write([]byte("second line\n"))
			}()
			br := bufio.NewReader(c)
			for _, want := range []string{"first line\n", "second line\n"} {
				line, err := br.ReadString('\n')
				if err != nil || line != want {
					t.Fatalf("read %q, %v; want %q", line, err, want)
				}
			}
			if got := c.RemoteAddr().String(); got != tt.remote {
				t.Errorf("RemoteAddr = %s, want %s", got, tt.remote)
			}
			if got := c.LocalAddr().String(); got != tt.local {
				t.Errorf("LocalAddr = %s, want %s", got, tt.local)
			}
		})
	}
}

// Only the proxy's own connection (version 2 LOCAL) keeps the
// connection's own addresses. A client the header relays without naming
// it (version 1 UNKNOWN, version 2 PROXY of family UNSPEC) may be anyone:
// its addresses are the proxy's, but as *Addr, which FromHeader tells
// from the connection's own, so that no rule for a loopback peer or the
// node's own host applies to it.
func TestConnUndescribedClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tt := range []struct {
		name, header string
		fromHeader   bool // the addresses are *Addr
	}{
		{"v1 UNKNOWN", "PROXY UNKNOWN\r\n", true},
		{"v1 UNKNOWN with addresses, ignored", "PROXY UNKNOWN 127.0.0.1 127.0.0.1 1 2\r\n", true},
		{"v2 PROXY UNSPEC", v2(0x21, 0x00, nil, 0), true},
		{"v2 LOCAL, the proxy's own", v2(0x20, 0x00, nil, 0), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := dialFrom(t, "127.0.0.2", ln.Addr().String(), tt.header)
			raw, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			c := proxyproto.NewConn(raw)
			defer c.Close()
			if err := c.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			for _, a := range []struct {
				which     string
				got, want net.Addr
			}{{"RemoteAddr", c.RemoteAddr(), client.LocalAddr()}, {"LocalAddr", c.LocalAddr(), client.RemoteAddr()}} {
				if a.got.String() != a.want.String() || proxyproto.FromHeader(a.got) != tt.fromHeader {
					t.Errorf("%s = %s, FromHeader %v; want %s, FromHeader %v", a.which, a.got, proxyproto.FromHeader(a.got), a.want, tt.fromHeader)
				}
			}
		})
	}
}

// A connection from a proxy that does not begin with a header fails its
// first read with ErrBadHeader, and keeps failing: nothing of what it
// sent reaches the reader as the client's.
func TestConnWithoutHeader(t *testing.T) {
	proxy, server := net.Pipe()
	defer proxy.Close()
	c := proxyproto.NewConn(server)
	defer c.Close()
	go func() { _, _ = proxy.Write([]byte(`{"op":"hello"}` + "\n")) }()
	buf := make([]byte, 64)
	for range 2 {
		if n, err := c.Read(buf); n != 0 || !errors.Is(err, proxyproto.ErrBadHeader) {
			t.Fatalf("Read = %d, %v; want ErrBadHeader", n, err)
		}
	}
	if err := c.ReadHeader(); !errors.Is(err, proxyproto.ErrBadHeader) {
		t.Errorf("ReadHeader = %v, want ErrBadHeader", err)
	}
}

// Listener makes Conns of the listed proxies' connections only.
func TestListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &proxyproto.Listener{Listener: inner, From: func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.2") }}
	defer ln.Close()
	for _, tt := range []struct {
		from  string
		proxy bool
	}{{"127.0.0.2", true}, {"127.0.0.3", false}} {
		client := dialFrom(t, tt.from, inner.Addr().String(), "")
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.(*proxyproto.Conn); ok != tt.proxy {
			t.Errorf("from %s: a *Conn %v, want %v", tt.from, ok, tt.proxy)
		}
		c.Close()
		client.Close()
	}
}

// CloseWrite half-closes the TCP connection below: the client reads the
// end of the server's answer while the server still reads the client.
func TestConnCloseWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := proxyproto.NewConn(raw)
	defer c.Close()
	if _, err := io.WriteString(client, "PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "bye\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if got, err := io.ReadAll(client); err != nil || string(got) != "bye\n" {
		t.Fatalf("the client read %q, %v; want the answer, then the end", got, err)
	}
	if _, err := io.WriteString(client, "late\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "late\n" {
		t.Fatalf("the server read %q, %v after its CloseWrite", buf, err)
	}
}
