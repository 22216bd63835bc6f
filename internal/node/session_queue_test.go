package node

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/wire"
)

// An answer of the session's reader (a pong, an ack, a hello's
// directory) that finds the queue full, while another goroutine's write
// to the client is stuck, closes the session as a slow client, as a push
// does. Before, it was dropped, and the session served on without it: a
// client then waited for an ack or a pong that would never come.
func TestAnswerPastTheQueueClosesTheSession(t *testing.T) {
	n := &Node{
		cfg: Config{MaxQueue: 1 << 10},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		metrics: &metrics{
			badInputVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bad_input"}, []string{"code"}),
		},
	}
	server, client := net.Pipe()
	defer client.Close()
	// writing: a push's writer is stuck on the client, who reads nothing
	// until the answers have been given.
	s := &session{n: n, conn: server, writing: true}
	pong, err := wire.Encode(wire.Message{Op: wire.OpPong})
	if err != nil {
		t.Fatal(err)
	}
	answers := 2 * n.cfg.MaxQueue / len(pong)
	for range answers {
		s.write(pong)
	}
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client) // until the session closes the pipe
	if err != nil {
		t.Fatalf("the session is still open after %d answers past a full queue: %v", answers, err)
	}
	pongs := bytes.Count(got, pong)
	last, err := wire.Decode(bytes.TrimSuffix(got[bytes.LastIndexByte(got[:len(got)-1], '\n')+1:], []byte("\n")))
	if err != nil || last.Op != wire.OpError || last.Code != wire.CodeLimit {
		t.Fatalf("after %d of %d pongs the client read %+v (%v), want the closing error %q", pongs, answers, last, err, wire.CodeLimit)
	}
	if pongs >= answers {
		t.Fatalf("all %d pongs queued past a queue of %d bytes", pongs, n.cfg.MaxQueue)
	}
	n.wg.Wait()
}

// The reader that writes its own answer writes that line only: what
// others queued meanwhile (a busy room's deliveries) goes on from a
// goroutine of its own, so that the reader is back to read the client's
// next line while those deliveries still wait on a slow link. Before, the
// reader stayed the writer until the queue ran dry.
func TestReaderHandsTheQueueOn(t *testing.T) {
	n := &Node{
		cfg: Config{MaxQueue: 1 << 16, WriteTimeout: time.Minute},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	server, client := net.Pipe()
	defer client.Close()
	s := &session{n: n, conn: server}
	pong, err := wire.Encode(wire.Message{Op: wire.OpPong})
	if err != nil {
		t.Fatal(err)
	}
	delivery, err := wire.Encode(wire.Message{Op: wire.OpText, Room: "r", From: "bob", Seq: 1, T: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		s.write(pong) // as the reader answers a ping
	}()
	// One byte read: the reader's write is under way, so the delivery
	// pushed now is queued behind it.
	buf := make([]byte, len(pong))
	if _, err := io.ReadFull(client, buf[:1]); err != nil {
		t.Fatal(err)
	}
	s.push(delivery)
	if _, err := io.ReadFull(client, buf[1:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, pong) {
		t.Fatalf("the client read %q first, want the pong %q", buf, pong)
	}
	// The delivery is not read yet, so a writer of it is stuck in Write.
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader is still writing others' lines after its own answer went out")
	}
	got := make([]byte, len(delivery))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, delivery) {
		t.Fatalf("the client read %q after the pong, want the delivery %q", got, delivery)
	}
	n.wg.Wait()
}

// Every push that finds the queue full asks for the close: until the
// close has begun, each one started another closing goroutine and
// logged another "closing a slow client". Now the first one closes.
func TestSlowClientIsClosedOnce(t *testing.T) {
	var logged bytes.Buffer
	n := &Node{
		cfg: Config{MaxQueue: 1 << 10},
		log: slog.New(slog.NewTextHandler(&logged, nil)),
		metrics: &metrics{
			badInputVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bad_input"}, []string{"code"}),
		},
	}
	server, client := net.Pipe()
	defer client.Close()
	s := &session{n: n, conn: server, writing: true}
	for range 3 {
		s.mu.Lock()
		s.closeSlowLocked() // unlocks
	}
	go func() { _, _ = io.Copy(io.Discard, client) }()
	n.wg.Wait()
	if got := bytes.Count(logged.Bytes(), []byte("closing a slow client")); got != 1 {
		t.Errorf("three pushes past a full queue logged %d closes, want 1:\n%s", got, logged.String())
	}
}

// Clients that never read share MaxQueueTotal, not MaxQueue each. Four
// sessions whose writers are stuck (net.Pipe: nothing is read) are pushed
// lines in turn: once the node's queues together pass MaxQueueTotal, the
// next line to a session holding queueShare or more closes it as slow,
// and the total stays within the bound but for a line. A session that
// keeps up (nothing queued) still gets its line, and a closed session's
// bytes leave the count. Before, each held MaxQueue: 15,000 such clients
// held 15 GiB, and a node's memory ran out.
func TestSlowClientsShareATotalQueue(t *testing.T) {
	n := &Node{
		cfg: Config{MaxQueue: 4 * queueShare, MaxQueueTotal: 6 * queueShare, WriteTimeout: time.Minute},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		metrics: &metrics{
			badInputVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bad_input"}, []string{"code"}),
		},
	}
	line, err := wire.Encode(wire.Message{Op: wire.OpText, Room: "r", From: "bob", Seq: 1, T: string(bytes.Repeat([]byte("x"), 1000))})
	if err != nil {
		t.Fatal(err)
	}
	var stuck []*session
	var clients []net.Conn
	for range 4 {
		server, client := net.Pipe()
		clients = append(clients, client)
		stuck = append(stuck, &session{n: n, conn: server, writing: true})
	}
	closed := func(s *session) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.slow
	}
	var most int64
	var slow *session
	for i := 0; slow == nil && i < 4*n.cfg.MaxQueue/len(line); i++ {
		s := stuck[i%len(stuck)]
		s.mu.Lock()
		held := len(s.queue)
		s.mu.Unlock()
		s.push(line)
		most = max(most, n.queued.Load())
		if closed(s) {
			slow = s
			if held+len(line) > n.cfg.MaxQueue {
				t.Errorf("the session closed held %d bytes: closed for its own MaxQueue (%d), not the total", held, n.cfg.MaxQueue)
			}
		}
	}
	if slow == nil {
		t.Fatalf("no session closed as slow while %d bytes waited, past MaxQueueTotal %d", most, n.cfg.MaxQueueTotal)
	}
	if limit := int64(n.cfg.MaxQueueTotal + len(line)); most > limit {
		t.Errorf("the sessions held %d bytes at most, past MaxQueueTotal %d and a line", most, n.cfg.MaxQueueTotal)
	}

	// A client that keeps up is not refused for the others.
	server, client := net.Pipe()
	clients = append(clients, client)
	fresh := &session{n: n, conn: server, writing: true}
	fresh.push(line)
	if closed(fresh) {
		t.Error("a session with nothing queued was closed for the others' queues")
	}

	// Closed, every session gives its bytes back.
	for _, c := range clients {
		go func() { _, _ = io.Copy(io.Discard, c) }()
	}
	for _, s := range append(stuck, fresh) {
		s.close(nil)
	}
	n.wg.Wait()
	if q := n.queued.Load(); q != 0 {
		t.Errorf("%d bytes still counted as queued after every session closed", q)
	}
	for _, c := range clients {
		c.Close()
	}
}
