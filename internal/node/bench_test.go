package node_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// BenchmarkUsersPropagation measures how long a change of users on one
// node takes to show in the directory of every other node of five.
//
//	go test -run '^$' -bench UsersPropagation -benchtime 300x ./internal/node/
func BenchmarkUsersPropagation(b *testing.B) {
	c := nodetest.Start(b, 5, nodetest.Options{})
	n1 := c.Nodes[0]
	var conns []*client.Conn
	b.Cleanup(func() {
		for _, conn := range conns {
			conn.Close()
		}
	})
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := client.DialConn(ctx, nil, n1.Addr())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, conn)
		if _, err := conn.Hello(ctx, "bench/1", ""); err != nil {
			b.Fatal(err)
		}
		if err := conn.Send(wire.Message{Op: wire.OpAttach, User: fmt.Sprintf("u%d", i)}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		want := i + 1
		for _, n := range c.Nodes[1:] {
			for {
				if e, _ := nodetest.Lookup(n, "n1"); e.Users >= want {
					break
				}
				if time.Since(start) > 5*time.Second {
					b.Fatalf("%s did not see %d users on n1", n.ID(), want)
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
		lat = append(lat, time.Since(start))
		cancel()
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkHelloRoundTrip compares hello -> directory on a node with a
// plain TCP echo that answers a line of the same size, in the same run.
//
//	go test -run '^$' -bench HelloRoundTrip ./internal/node/
func BenchmarkHelloRoundTrip(b *testing.B) {
	c := nodetest.Start(b, 3, nodetest.Options{})
	hello, _ := wire.Encode(wire.Message{Op: wire.OpHello, V: 1, Client: "bench/1"})
	answer, _ := wire.Encode(wire.DirectoryMessage(c.Nodes[0].Directory()))

	echo := startEcho(b, answer)
	run := func(b *testing.B, addr string) {
		var conn net.Conn
		var r *bufio.Reader
		defer func() { conn.Close() }()
		lat := make([]time.Duration, 0, b.N)
		b.SetBytes(int64(len(answer)))
		b.ResetTimer()
		for i := range b.N {
			if i%node.ViewBurst == 0 {
				// A connection may say hello ViewBurst times at once: a
				// new one, off the clock, for each burst (the echo too).
				b.StopTimer()
				if conn != nil {
					conn.Close()
				}
				var err error
				if conn, err = net.Dial("tcp", addr); err != nil {
					b.Fatal(err)
				}
				r = bufio.NewReader(conn)
				b.StartTimer()
			}
			start := time.Now()
			if _, err := conn.Write(hello); err != nil {
				b.Fatal(err)
			}
			if _, err := r.ReadSlice('\n'); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		reportPercentiles(b, lat)
	}
	b.Run("node", func(b *testing.B) { run(b, c.Nodes[0].Addr()) })
	b.Run("echo", func(b *testing.B) { run(b, echo) })
}

// startEcho serves a TCP echo that answers each line with answer.
func startEcho(b *testing.B, answer []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					if _, err := r.ReadSlice('\n'); err != nil {
						return
					}
					if _, err := conn.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		i := min(int(p*float64(len(lat))), len(lat)-1)
		return float64(lat[i].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
