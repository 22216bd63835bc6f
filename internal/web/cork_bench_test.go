package web

import (
	"bufio"
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

type benchSource struct{}

func (benchSource) Directory() *wire.Directory { return &wire.Directory{Service: "s", Self: "n1"} }
func (benchSource) Status() directory.Status   { return directory.Up }
func (benchSource) SetDraining(bool)           {}

// BenchmarkWSConnBatch is one round trip over a real WebSocket on
// loopback: the client sends a line, the server answers with a batch of
// ten protocol lines in one Write (a room's record to one member), the
// client reads them. "corked" is how nodes serve; "frame-per-write"
// turns the cork off, so the library's flush per message reaches the
// socket each time.
//
//	go test ./internal/web -run '^$' -bench WSConnBatch -count 5
func BenchmarkWSConnBatch(b *testing.B) {
	line := `{"op":"text","room":"lobby","from":"alice","seq":18,"t":"e"}` + "\n"
	batch := []byte(strings.Repeat(line, 10))
	for _, corked := range []bool{true, false} {
		name := "corked"
		if !corked {
			name = "frame-per-write"
		}
		b.Run(name, func(b *testing.B) {
			serve := func(conn net.Conn) error {
				defer conn.Close()
				if !corked {
					conn.(*WSConn).cork = nil
				}
				r := bufio.NewReader(conn)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return nil
					}
					if _, err := conn.Write(batch); err != nil {
						return err
					}
				}
			}
			srv := httptest.NewServer(NewHandler(benchSource{}, prometheus.NewRegistry(), WithConnServer(serve)))
			defer srv.Close()
			d := &Dialer{HTTPAddr: func(string) (string, bool) { return srv.Listener.Addr().String(), true }}
			conn, err := d.DialContext(context.Background(), "tcp", "n1")
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := conn.Write([]byte("go\n")); err != nil {
					b.Fatal(err)
				}
				for range 10 {
					if _, err := r.ReadString('\n'); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
