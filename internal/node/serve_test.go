package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// pipeDialer hands out the client's end of a connection made for it.
type pipeDialer struct{ conn net.Conn }

func (d pipeDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	return d.conn, nil
}

// A node started without a listener of its own serves the listeners and
// connections it is handed; Shutdown tells every session why it ends,
// makes Serve return ErrClosed and waits for ServeConn to return.
func TestServeListenersAndConnsUntilShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Listen = ""
		cfg.Advertise = ln.Addr().String()
	}})
	n := c.Nodes[0]
	if n.Addr() != ln.Addr().String() {
		t.Fatalf("advertised %q, want the handed listener's %q", n.Addr(), ln.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- n.Serve(ln) }()

	tcp := dial(t, ln.Addr().String())
	attach(t, tcp, "alice")

	// Both ends of a loopback TCP connection, not net.Pipe: a pipe has
	// no buffer, so a line the node wrote that the client had not read
	// yet held both sides until the attach's write deadline (seen once
	// in CI); a real connection's buffers take it.
	server, clientEnd := connPair(t)
	connServed := make(chan error, 1)
	go func() { connServed <- n.ServeConn(server) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	piped, err := client.DialConn(ctx, pipeDialer{clientEnd}, "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer piped.Close()
	attach(t, piped, "bob")
	if got := n.Users(); got != 2 {
		t.Fatalf("users = %d, want 2", got)
	}

	// Read the session while Shutdown writes the goodbye.
	goodbye := make(chan wire.Message, 1)
	go func() {
		for {
			m, err := piped.Recv(ctx)
			if err != nil || m.Op == wire.OpError {
				goodbye <- m
				return
			}
		}
	}()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, node.ErrClosed) {
		t.Errorf("Serve returned %v, want ErrClosed", err)
	}
	if err := <-connServed; err != nil {
		t.Errorf("ServeConn returned %v, want nil", err)
	}
	for name, m := range map[string]wire.Message{"tcp": recvReply(t, tcp), "pipe": <-goodbye} {
		if m.Op != wire.OpError || m.Code != wire.CodeShutdown {
			t.Errorf("%s session got %+v, want a %s error", name, m, wire.CodeShutdown)
		}
	}

	// A stopped node serves nothing more, and closes what it is handed.
	again, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Serve(again); !errors.Is(err, node.ErrClosed) {
		t.Errorf("Serve after Shutdown returned %v, want ErrClosed", err)
	}
	if _, err := again.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the listener handed after Shutdown is still open: %v", err)
	}
	late, _ := net.Pipe()
	if err := n.ServeConn(late); !errors.Is(err, node.ErrClosed) {
		t.Errorf("ServeConn after Shutdown returned %v, want ErrClosed", err)
	}
}

// connPair returns both ends of a loopback TCP connection, closed with
// the test.
func connPair(t *testing.T) (server, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		peer.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); peer.Close() })
	return server, peer
}

// farewells stands in for clients that stopped reading: the node's
// farewell to each (the shutdown error) is held as a full socket buffer
// would hold it, until the farewells of all the sessions are being
// written at once, or for at most two seconds (a write deadline). It
// counts the most written at once.
type farewells struct {
	sessions int
	all      chan struct{} // closed once all sessions' farewells are held
	mu       sync.Mutex
	writing  int
	most     int
}

// farewellListener hands the node connections whose farewells w holds.
type farewellListener struct {
	net.Listener
	w *farewells
}

func (l farewellListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return farewellConn{c, l.w}, nil
}

type farewellConn struct {
	net.Conn
	w *farewells
}

func (c farewellConn) Write(b []byte) (int, error) {
	if !bytes.Contains(b, []byte(wire.CodeShutdown)) {
		return c.Conn.Write(b)
	}
	w := c.w
	w.mu.Lock()
	w.writing++
	w.most = max(w.most, w.writing)
	if w.writing == w.sessions {
		close(w.all)
	}
	w.mu.Unlock()
	select {
	case <-w.all:
	case <-time.After(5 * time.Second): // only without the fix: one at a time
	}
	w.mu.Lock()
	w.writing--
	w.mu.Unlock()
	return c.Conn.Write(b)
}

// Clients that stop reading hold each farewell until its write deadline.
// Shutdown writes them all at once rather than one after another, which
// would hold a node with a few hundred such clients for minutes: the
// farewells of all 8 stalled sessions were being written together.
func TestShutdownClosesStalledSessionsTogether(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Listen = ""
		cfg.Advertise = ln.Addr().String()
	}})
	n := c.Nodes[0]
	const sessions = 8
	w := &farewells{sessions: sessions, all: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- n.Serve(farewellListener{ln, w}) }()
	for i := range sessions {
		attach(t, dial(t, ln.Addr().String()), fmt.Sprintf("user%d", i)) // and read nothing more
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, node.ErrClosed) {
		t.Errorf("Serve returned %v, want ErrClosed", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.most != sessions {
		t.Errorf("at most %d farewells written at once to %d stalled sessions; want them together", w.most, sessions)
	}
}

// emfileListener fails its first accepts as a process out of descriptors
// does, then accepts.
type emfileListener struct {
	net.Listener
	failures atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Accepts failing in a row (a full descriptor table) are retried, and
// logged once per period with a count rather than once each: a stranger
// who keeps the table full must not also fill the log.
func TestFailedAcceptsAreRetriedAndLoggedSampled(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &emfileListener{Listener: tcp}
	ln.failures.Store(6)
	logs := &logLines{}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Listen = ""
		cfg.Advertise = tcp.Addr().String()
		cfg.Logger = slog.New(logs)
	}})
	go func() { _ = c.Nodes[0].Serve(ln) }()
	attach(t, dial(t, tcp.Addr().String()), "alice") // after the six failures
	logs.mu.Lock()
	defer logs.mu.Unlock()
	lines := 0
	for _, line := range logs.lines {
		if strings.Contains(line, "accepting a client") {
			lines++
		}
	}
	if lines != 1 {
		t.Errorf("%d log lines for 6 failed accepts in a row, want 1", lines)
	}
}
