package node_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// pipeDialer hands out one end of an in-memory connection.
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

	server, clientEnd := net.Pipe()
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

	// Read the pipe while Shutdown writes the goodbye: a pipe has no buffer.
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
