package bus

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// takePortOnce makes the first server Open starts find its cluster port
// taken, as another process may take it between the draw and the bind,
// and returns the port it took. Not parallel: beforeStart is shared.
func takePortOnce(t *testing.T) *int {
	t.Helper()
	taken := new(int)
	beforeStart = func(opts *server.Options) {
		if *taken != 0 || opts.Cluster.Port <= 0 {
			return
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(opts.Cluster.Host, strconv.Itoa(opts.Cluster.Port)))
		if err != nil {
			t.Errorf("taking the cluster port: %v", err)
			return
		}
		*taken = opts.Cluster.Port
		t.Cleanup(func() { ln.Close() })
	}
	t.Cleanup(func() { beforeStart = nil })
	return taken
}

// A node of a new cluster draws its cluster port itself (its route to
// itself must name it): when someone takes that port before nats-server
// binds it, Open draws another rather than wait StartTimeout and fail.
func TestOpenDrawsAnotherClusterPort(t *testing.T) {
	taken := takePortOnce(t)
	b := openBus(t, Config{Name: "redraw", Cluster: "127.0.0.1:0", Secret: testSecret, JetStream: true, StoreDir: t.TempDir(), StartTimeout: time.Minute})
	if *taken == 0 {
		t.Fatal("the test took no port")
	}
	if addr := b.ClusterAddr(); addr == nil || addr.Port == *taken {
		t.Fatalf("the cluster listens on %v, want a port other than the taken %d", b.ClusterAddr(), *taken)
	}
}

// A cluster port the operator named and someone else holds by the time
// nats-server binds it fails Open with nats-server's own words, at once
// rather than after StartTimeout.
func TestOpenSaysWhyTheServerDidNotStart(t *testing.T) {
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	takePortOnce(t)
	cfg := Config{Name: "named", Cluster: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Secret: testSecret, ClusterName: "start.test",
		JetStream: true, StoreDir: t.TempDir(), StartTimeout: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), settleStart)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		b, err := Open(ctx, cfg)
		if err == nil {
			b.Close()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatalf("Open still waiting %v after its cluster port was taken", settleStart)
	}
	if !errors.Is(err, errRoutePort) || !strings.Contains(err.Error(), routeListenError) {
		t.Fatalf("Open on a taken cluster port: %v, want errRoutePort with nats-server's line", err)
	}
}

// settleStart bounds a start that must end: generous for a loaded CI
// machine, far below the StartTimeout it must not wait out.
const settleStart = 2 * time.Minute

// lowPort is a loopback address whose port was free a moment ago, drawn
// below the kernel's ephemeral range (32768 up) as localcluster.FreePort
// draws them, for a server that must come back on the same port.
func lowPort(t *testing.T) string {
	t.Helper()
	for range 200 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}
