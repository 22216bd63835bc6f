package proxyproto_test

import (
	"bufio"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/proxyproto"
)

// BenchmarkRead is the cost of a header, paid once per connection.
func BenchmarkRead(b *testing.B) {
	for _, bm := range []struct{ name, header string }{
		{"v1", "PROXY TCP4 192.0.2.7 198.51.100.1 54321 8080\r\n"},
		{"v2", v2(0x21, 0x11, ipv4Addrs(), 0)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			src := strings.NewReader(bm.header)
			r := bufio.NewReaderSize(src, 256)
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(bm.header)
				r.Reset(src)
				if _, err := proxyproto.Read(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
