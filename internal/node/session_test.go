package node_test

import (
	"bufio"
	"net"
	"testing"

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
	dirs, rated := 0, 0
	for range hellos {
		line, err := r.ReadBytes('\n')
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
	if dirs < node.ViewBurst || rated == 0 {
		t.Errorf("%d hellos at once: %d directories, %d refused; want the first %d answered and most of the rest refused", hellos, dirs, rated, node.ViewBurst)
	}
}
