package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// BenchmarkRoomDelivery measures keystroke-to-delivery latency across
// nodes in a three-node in-process cluster with JetStream (R3), from the
// moment a sender's chunk is written to the moment a receiver on another
// node has read its delivery.
//
// keystroke: one sender on n1, receivers on n2 and n3, one keystroke at a
// time (the next once both received the last): the latency of a quiet
// room, one sample per receiver and keystroke.
//
// rooms=RxS: R rooms of S users spread over the three nodes, every user
// typing 10 characters a second (one op is one keystroke of every user,
// paced at 100 ms, so 50x is five seconds of typing): the latency of every
// delivery under that load (p50-ms, p99-ms), of the senders' acks
// (ack-p99-ms), and deliveries a second. Everything, the 3 NATS servers,
// the 3 nodes and every client, shares the machine's CPUs.
//
//	go test -run '^$' -bench 'RoomDelivery/keystroke' -benchtime 5000x ./internal/node/
//	go test -run '^$' -bench 'RoomDelivery/rooms' -benchtime 50x ./internal/node/
func BenchmarkRoomDelivery(b *testing.B) {
	c := nodetest.Start(b, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Capacity = 100000
		// A keystroke at a time as fast as the round trip allows is far
		// past human typing.
		cfg.ChunkRate, cfg.ChunkBurst = 1e6, 1e6
		cfg.ByteRate, cfg.ByteBurst = 1e9, 1e9
	}})
	c.WaitRoomsReady(30 * time.Second)
	nodetest.Eventually(b, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if r, cur, _, err := c.Nodes[0].RoomReplication(ctx); err != nil || r != 3 || cur != 3 {
			return fmt.Errorf("rooms' stream: %d replicas, %d current, %v", r, cur, err)
		}
		return nil
	})
	b.Run("keystroke", func(b *testing.B) { benchKeystroke(b, c) })
	b.Run("rooms=10x10", func(b *testing.B) { benchRooms(b, c, 10, 10) })
	b.Run("rooms=30x10", func(b *testing.B) { benchRooms(b, c, 30, 10) })
	b.Run("rooms=100x10", func(b *testing.B) { benchRooms(b, c, 100, 10) })
}

// benchRun numbers the runs of a benchmark function, so that each run
// uses fresh rooms (seqs count on in a room a user was in).
var benchRun atomic.Int64

func benchKeystroke(b *testing.B, c *nodetest.Cluster) {
	room := fmt.Sprintf("bench-keystroke-%d", benchRun.Add(1))
	alice := benchConn(b, c.Nodes[0].Addr(), "alice")
	joinRoom(b, alice, room)
	go func() { // acks
		for {
			if _, err := alice.Recv(context.Background()); err != nil {
				return
			}
		}
	}()
	var receivers []chan uint64
	for i, n := range c.Nodes[1:] {
		conn := benchConn(b, n.Addr(), fmt.Sprintf("r%d", i))
		joinRoom(b, conn, room)
		got := make(chan uint64, 16)
		go func() {
			for {
				m, err := conn.Recv(context.Background())
				if err != nil {
					close(got)
					return
				}
				if m.Op == wire.OpText {
					got <- m.Seq
				}
			}
		}()
		receivers = append(receivers, got)
	}
	lat := make([]time.Duration, 0, 2*b.N)
	keys := []string{"h", "e", "l", "l", "o", " ", "\b", " ", "w", "o", "r", "l", "d", "\n"}
	b.ResetTimer()
	for i := range b.N {
		seq := uint64(i + 1)
		start := time.Now()
		if err := alice.Send(wire.Message{Op: wire.OpText, Room: room, Seq: seq, T: keys[i%len(keys)]}); err != nil {
			b.Fatal(err)
		}
		for _, got := range receivers {
			select {
			case got, ok := <-got:
				if !ok || got != seq {
					b.Fatalf("receiver got seq %d (open %v), want %d", got, ok, seq)
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("no delivery of seq %d", seq)
			}
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// benchRooms has rooms*size users type at 10 characters a second each,
// for b.N keystrokes each, and reports the latency of every delivery.
func benchRooms(b *testing.B, c *nodetest.Cluster, rooms, size int) {
	type sender struct {
		conn *client.Conn
		room string
		sent []atomic.Int64 // by seq: UnixNano when written
	}
	run := benchRun.Add(1)
	users := rooms * size
	senders := make([]*sender, users)
	index := make(map[string]int, users)
	for u := range users {
		name := fmt.Sprintf("u%d", u)
		index[name] = u
		room := fmt.Sprintf("bench-%d-%d", run, u%rooms)
		// Members of a room sit on all three nodes.
		conn := benchConn(b, c.Nodes[(u/rooms)%len(c.Nodes)].Addr(), name)
		joinRoom(b, conn, room)
		senders[u] = &sender{conn: conn, room: room, sent: make([]atomic.Int64, b.N+1)}
	}
	var mu sync.Mutex
	var lat, acks []time.Duration
	var delivered atomic.Int64
	var readers sync.WaitGroup
	stop := make(chan struct{})
	for _, s := range senders {
		readers.Go(func() {
			var mine, myAcks []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				acks = append(acks, myAcks...)
				mu.Unlock()
			}()
			for {
				m, err := s.conn.Recv(context.Background())
				if err != nil {
					return
				}
				if m.Op == wire.OpAck && m.Seq > 0 && m.Seq <= uint64(b.N) {
					myAcks = append(myAcks, time.Duration(time.Now().UnixNano()-s.sent[m.Seq].Load()))
					continue
				}
				if m.Op != wire.OpText || m.Seq == 0 || m.Seq > uint64(b.N) {
					continue
				}
				if sent := senders[index[m.From]].sent[m.Seq].Load(); sent != 0 {
					mine = append(mine, time.Duration(time.Now().UnixNano()-sent))
					delivered.Add(1)
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	b.ResetTimer()
	start := time.Now()
	var typists sync.WaitGroup
	for _, s := range senders {
		typists.Go(func() {
			// Start at a random point of the first 100 ms, then every 100 ms.
			next := start.Add(time.Duration(rand.Int64N(int64(100 * time.Millisecond))))
			for seq := 1; seq <= b.N; seq++ {
				time.Sleep(time.Until(next))
				next = next.Add(100 * time.Millisecond)
				s.sent[seq].Store(time.Now().UnixNano())
				if err := s.conn.Send(wire.Message{Op: wire.OpText, Room: s.room, Seq: uint64(seq), T: "x"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	typists.Wait()
	// Let the last deliveries arrive, then stop the readers.
	deadline := time.Now().Add(5 * time.Second)
	want := int64(users * (size - 1) * b.N)
	for delivered.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	close(stop)
	for _, s := range senders {
		s.conn.Close()
	}
	readers.Wait()
	b.StopTimer()
	if int64(len(lat)) < want {
		b.Logf("%d of %d deliveries arrived", len(lat), want)
	}
	reportPercentiles(b, lat)
	slices.Sort(acks)
	if len(acks) > 0 {
		b.ReportMetric(float64(acks[len(acks)*99/100].Microseconds())/1000, "ack-p99-ms")
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "deliveries/s")
}

// benchConn attaches a raw connection as user.
func benchConn(b *testing.B, addr, user string) *client.Conn {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.DialConn(ctx, nil, addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if _, err := conn.Hello(ctx, "bench/1", ""); err != nil {
		b.Fatal(err)
	}
	if err := conn.Send(wire.Message{Op: wire.OpAttach, User: user}); err != nil {
		b.Fatal(err)
	}
	for {
		m, err := conn.Recv(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if m.Op == wire.OpAttached {
			return conn
		}
		if m.Op == wire.OpError {
			b.Fatalf("attach as %s: %+v", user, m)
		}
	}
}

// joinRoom joins room on conn and waits for its state.
func joinRoom(b *testing.B, conn *client.Conn, room string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := conn.Send(wire.Message{Op: wire.OpJoin, Room: room}); err != nil {
		b.Fatal(err)
	}
	for {
		m, err := conn.Recv(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if m.Op == wire.OpRoom && m.Room == room {
			return
		}
		if m.Op == wire.OpError {
			b.Fatalf("join %s: %+v", room, m)
		}
	}
}
