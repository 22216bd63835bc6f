package proxyproto_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/switchboard/switchboard/internal/proxyproto"
)

// FuzzRead feeds Read anything: it never panics, never reads past a
// header's bound, and what it accepts names valid, unzoned addresses or
// none.
func FuzzRead(f *testing.F) {
	for _, seed := range []string{
		"PROXY TCP4 192.0.2.7 198.51.100.1 54321 8080\r\n",
		"PROXY TCP6 2001:db8::7 2001:db8::1 12345 8080\r\n",
		"PROXY UNKNOWN\r\n",
		v2(0x21, 0x11, ipv4Addrs(), 0),
		v2(0x21, 0x21, ipv6Addrs(), 20),
		v2(0x20, 0x00, nil, 0),
		`{"op":"hello"}` + "\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		src := bytes.NewReader(in)
		r := bufio.NewReaderSize(src, 256)
		h, err := proxyproto.Read(r)
		consumed := len(in) - src.Len() - r.Buffered()
		if consumed > 16+proxyproto.MaxV2 {
			t.Fatalf("consumed %d bytes", consumed)
		}
		if err != nil {
			if len(in) == 0 && errors.Is(err, proxyproto.ErrNothingSent) {
				return // nothing sent
			}
			if !errors.Is(err, proxyproto.ErrBadHeader) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v is neither ErrBadHeader nor io.ErrUnexpectedEOF", err)
			}
			return
		}
		if h.Local && (h.Version != 2 || h.Source.IsValid()) {
			t.Fatalf("%+v: only a version 2 header without addresses is the proxy's own", h)
		}
		if h.Version != 1 && h.Version != 2 {
			t.Fatalf("version %d", h.Version)
		}
		if h.Version == 1 && consumed > proxyproto.MaxV1 {
			t.Fatalf("a version 1 header of %d bytes", consumed)
		}
		if h.Source.IsValid() != h.Dest.IsValid() {
			t.Fatalf("source %v, dest %v: both or neither", h.Source, h.Dest)
		}
		if h.Source.IsValid() && (h.Source.Addr().Zone() != "" || h.Source.Addr().Is4() != h.Dest.Addr().Is4()) {
			t.Fatalf("source %v, dest %v", h.Source, h.Dest)
		}
	})
}
