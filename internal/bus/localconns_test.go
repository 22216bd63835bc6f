package bus

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// The embedded server's loopback client port, which any local user can
// dial, holds at most MaxLocalConns connections, the node's own
// included, not nats-server's default of 65,536: the rest are refused at
// once, and the descriptors the node holds back for storage and peers
// stay its own. (The connections here authenticate, as the operator, so
// that none ends at the auth timeout while the test dials: a stranger's
// are held until it, and counted the same.)
func TestLoopbackClientPortIsBounded(t *testing.T) {
	b := openBus(t, Config{Name: "n1", Secret: testSecret, Cluster: "127.0.0.1:0"})
	var held []*nats.Conn
	t.Cleanup(func() {
		for _, nc := range held {
			nc.Close()
		}
	})
	refused := 0
	for range MaxLocalConns + 8 {
		nc, err := nats.Connect(b.server.ClientURL(), nats.UserInfo(OperatorUser, testSecret), nats.NoReconnect())
		if err != nil {
			// nats.go says ErrMaxConnectionsExceeded, or the broken pipe
			// of writing CONNECT to a server that said it and closed.
			refused++
			continue
		}
		held = append(held, nc)
	}
	if n := b.server.NumClients(); len(held) >= MaxLocalConns || refused == 0 {
		t.Fatalf("%d connections held (%d refused, the server counts %d), want fewer than %d beside the node's own", len(held), refused, n, MaxLocalConns)
	}
	if len(held) < MaxLocalConns/2 {
		t.Fatalf("%d connections held beside the node's own, want room for at least %d", len(held), MaxLocalConns/2)
	}
}
