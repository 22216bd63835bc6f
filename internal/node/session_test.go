package node_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// Each hello draws a directory (a random number per node and a sort):
// one connection looping hellos, before any credential, kept a core busy
// at 2,000 nodes. Past ViewBurst at once a hello gets `rate`.
func TestHellosAreRateLimited(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	conn, err := net.Dial("tcp", c.Nodes[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	hello, _ := wire.Encode(wire.Message{Op: wire.OpHello, V: wire.Version, Client: "test/1"})
	const hellos = 3 * node.ViewBurst
	var batch []byte
	for range hellos {
		batch = append(batch, hello...)
	}
	if _, err := conn.Write(batch); err != nil {
		t.Fatal(err)
	}
	dirs, rated := helloAnswers(t, func() ([]byte, error) { return r.ReadBytes('\n') }, hellos)
	if dirs < node.ViewBurst || rated == 0 {
		t.Errorf("%d hellos at once: %d directories, %d refused; want the first %d answered and most of the rest refused", hellos, dirs, rated, node.ViewBurst)
	}
}

// A connection's views bucket starts full, so a stranger opening one
// connection after another had ViewBurst directories drawn with each.
// The views of one source address share a bucket across its connections
// (twice MaxConnsPerIP, refilled at a quarter of it a second), while
// connections from the node's own host have none.
func TestHellosAreRateLimitedPerSource(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.MaxConnsPerIP = 4 // 8 views at once, 1 a second
	}})
	n := c.Nodes[0]
	addr := n.Addr() // 127.0.0.1
	// sayHellos sends node.ViewBurst hellos at once on a new connection
	// from from, and returns how many got a directory: those not refused
	// before the answer to a ping sent after them. (A directory the node
	// pushes meanwhile, as it does on a change, is no answer: counting
	// directories would take it for one.)
	sayHellos := func(from string) int {
		conn := dialFrom(t, from, addr)
		defer conn.conn.Close()
		for range node.ViewBurst {
			conn.send(`{"op":"hello","v":1}`)
		}
		conn.send(`{"op":"ping"}`)
		_ = conn.conn.SetReadDeadline(time.Now().Add(settle))
		rated := 0
		for {
			line, err := conn.lr.Next()
			if err != nil {
				t.Fatalf("after %d refusals: %v", rated, err)
			}
			m, err := wire.Decode(line)
			switch {
			case err != nil:
				t.Fatal(err)
			case m.Op == wire.OpPong:
				return node.ViewBurst - rated
			case m.Op == wire.OpError && m.Code == wire.CodeRate:
				rated++
			case m.Op != wire.OpDirectory:
				t.Fatalf("a hello answered %+v", m)
			}
		}
	}
	const conns = 5
	fromHost, fromStranger := 0, 0
	for range conns {
		fromHost += sayHellos("127.0.0.1")
		fromStranger += sayHellos("127.0.0.9")
	}
	if fromHost != conns*node.ViewBurst {
		t.Errorf("the node's own host drew %d directories in %d connections of %d hellos, want all", fromHost, conns, node.ViewBurst)
	}
	// 8 at once, and 1 a second after: 42 would take 34 s.
	if fromStranger >= conns*node.ViewBurst-8 {
		t.Errorf("one address drew %d directories in %d connections of %d hellos, want its bucket of 8 and its refills", fromStranger, conns, node.ViewBurst)
	}
	if got := labelled(t, n, "switchboard_views_refused_total", "bucket", "source"); got != float64(conns*node.ViewBurst-fromStranger) {
		t.Errorf("switchboard_views_refused_total{bucket=\"source\"} = %v, want %d", got, conns*node.ViewBurst-fromStranger)
	}
}

// helloAnswers reads the answers to n hellos from next, and counts the
// directories and the rate refusals among them; any other answer fails
// the test.
func helloAnswers(t *testing.T, next func() ([]byte, error), n int) (dirs, rated int) {
	t.Helper()
	for range n {
		line, err := next()
		if err != nil {
			t.Fatalf("after %d directories and %d refusals: %v", dirs, rated, err)
		}
		m, err := wire.Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Op == wire.OpDirectory:
			dirs++
		case m.Op == wire.OpError && m.Code == wire.CodeRate:
			rated++
		default:
			t.Fatalf("a hello answered %+v", m)
		}
	}
	return dirs, rated
}
