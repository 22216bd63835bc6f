package wire_test

import (
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/wire"
)

// BenchmarkDeliveryFloor measures what delivering room text costs this
// machine before any node logic: members loopback TCP connections, each
// sent a text line every 10 ms (100 lines a second: what a member of a
// room of 10 typists at 10 characters a second receives, acks included),
// each line encoded once per room and written to each member, one write
// per line, and read and decoded by the receiver as the node and the Go
// client do. One iteration is
// one second of that traffic. It reports the CPU the process used, in
// cores, and per line: the floor under `switchboard bench rtt`, whose
// nodes and clients also route, replicate and store every keystroke
// (docs/benchmarks.md, "The floor under rtt").
//
//	go test -run '^$' -bench DeliveryFloor -benchtime 5x ./wire/
func BenchmarkDeliveryFloor(b *testing.B) {
	for _, members := range []int{100, 300, 1000, 2000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) { deliveryFloor(b, members) })
	}
}

func deliveryFloor(b *testing.B, members int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var readers sync.WaitGroup
	var mu sync.Mutex
	received := 0
	accepted := make(chan struct{}, members)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			readers.Go(func() {
				defer c.Close()
				lr := wire.NewLineReader(c, 0)
				n := 0
				for {
					line, err := lr.Next()
					if err != nil {
						break
					}
					var m wire.Message
					if json.Unmarshal(line, &m) == nil && m.Op == wire.OpText {
						n++
					}
				}
				mu.Lock()
				received += n
				mu.Unlock()
			})
		}
	}()
	conns := make([]net.Conn, members)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			b.Fatal(err)
		}
		<-accepted
	}
	const every = 10 * time.Millisecond
	rounds := b.N * int(time.Second/every)
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	// Members in rooms of 10: a room's goroutine sends each line to its
	// 10 members in turn, as a node's room feed delivers a chunk. The
	// rooms' sends are spread over the period, as typists' are.
	var writers sync.WaitGroup
	for r := 0; r < members; r += 10 {
		room := conns[r:min(r+10, members)]
		writers.Go(func() {
			time.Sleep(time.Duration(r) * every / time.Duration(members))
			t := time.NewTicker(every)
			defer t.Stop()
			for seq := range rounds {
				line, _ := wire.Encode(wire.Message{Op: wire.OpText, Room: "r12", From: "r12m3", Seq: uint64(seq + 1), T: "a"})
				line = append(line, '\n')
				for _, c := range room {
					if _, err := c.Write(line); err != nil {
						return
					}
				}
				<-t.C
			}
		})
	}
	writers.Wait()
	for _, c := range conns {
		c.Close()
	}
	readers.Wait()
	wall, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()
	if want := members * rounds; received != want {
		b.Fatalf("received %d lines, sent %d", received, want)
	}
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
	b.ReportMetric(float64(cpu.Microseconds())/float64(received), "cpu-us/line")
	b.ReportMetric(float64(received)/wall.Seconds(), "lines/s")
}

// processCPU is the CPU time, user and system, the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
