package bus

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// link is a TCP relay in front of a node's cluster port that the test
// can cut (the port refuses connections, as a peer behind a broken link
// does, and the connections through it end) and mend (the same port
// takes them again).
type link struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener // nil while cut
	conns []net.Conn
	wg    sync.WaitGroup
}

func newLink(t *testing.T, target string) *link {
	t.Helper()
	l := &link{addr: lowPort(t), target: target}
	l.mend(t)
	t.Cleanup(func() { l.cut(); l.wg.Wait() })
	return l
}

func (l *link) mend(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		t.Fatalf("listening on %s again: %v", l.addr, err)
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	l.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", l.target)
			l.mu.Lock()
			if err != nil || l.ln != ln {
				l.mu.Unlock()
				c.Close()
				if d != nil {
					d.Close()
				}
				continue
			}
			l.conns = append(l.conns, c, d)
			l.mu.Unlock()
			l.wg.Go(func() { _, _ = io.Copy(d, c); d.Close() })
			l.wg.Go(func() { _, _ = io.Copy(c, d); c.Close() })
		}
	})
}

func (l *link) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// TestImplicitRouteComesBack: n2 and n3 join n1 only, so their route to
// each other is learnt through n1 (implicit). The link between n2 and n3
// alone breaks for a while, and both keep their routes to n1. Once it
// is mended, n2 and n3 must be routed to each other again: before,
// nats-server dialled such a route once after it dropped (ConnectRetries
// was -1) and no one told either of the other again, so the two stayed
// apart for good, each seeing the other down, while n1 saw both up.
func TestImplicitRouteComesBack(t *testing.T) {
	n2port, n3port := lowPort(t), lowPort(t)
	// Each of n2 and n3 advertises a relay in front of its cluster port:
	// the other dials it there (n1 learnt them from their own routes to
	// it, which do not go through the relays).
	to2, to3 := newLink(t, n2port), newLink(t, n3port)
	beforeStart = func(o *server.Options) {
		switch o.ServerName {
		case "n2":
			o.Cluster.Advertise = to2.addr
		case "n3":
			o.Cluster.Advertise = to3.addr
		}
	}
	t.Cleanup(func() { beforeStart = nil })
	n1 := openBus(t, Config{Name: "n1", Cluster: "127.0.0.1:0", Secret: testSecret})
	seed := []string{n1.ClusterAddr().String()}
	var log2, log3 levelWatch
	n2 := openBus(t, Config{Name: "n2", Cluster: n2port, Secret: testSecret, Join: seed, Logger: slog.New(&log2)})
	n3 := openBus(t, Config{Name: "n3", Cluster: n3port, Secret: testSecret, Join: seed, Logger: slog.New(&log3)})
	routed := func(b *Bus, want ...string) func() error {
		return func() error {
			if got := b.RoutePeers(); !slices.Equal(got, want) {
				return fmt.Errorf("routed to %v, want %v", got, want)
			}
			return nil
		}
	}
	waitFor(t, "n2 in the full mesh", routed(n2, "n1", "n3"))
	waitFor(t, "n3 in the full mesh", routed(n3, "n1", "n2"))

	// nats-server keeps a pool of route connections to each peer, each
	// dialled again on its own when it drops.
	rz, err := n2.server.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := 0
	for _, r := range rz.Routes {
		if r.RemoteName == "n3" {
			pool++
		}
	}
	to2.cut()
	to3.cut()
	waitFor(t, "n2 cut from n3", routed(n2, "n1"))
	waitFor(t, "n3 cut from n2", routed(n3, "n1"))
	// The side that dialled each connection of the pool has failed to
	// dial it again since: the one attempt nats-server made before is
	// spent.
	waitFor(t, "a failed dial of each connection", func() error {
		_, n2 := log2.count(slog.LevelDebug, "Error trying to connect to route")
		_, n3 := log3.count(slog.LevelDebug, "Error trying to connect to route")
		if n2+n3 < pool {
			return fmt.Errorf("%d failed dials logged, %d connections dropped", n2+n3, pool)
		}
		return nil
	})
	to2.mend(t)
	to3.mend(t)
	waitFor(t, "n2 routed to n3 again", routed(n2, "n1", "n3"))
	waitFor(t, "n3 routed to n2 again", routed(n3, "n1", "n2"))
}
