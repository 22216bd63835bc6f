package node

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startNATS runs a NATS server in the test, with JetStream or without.
func startNATS(t *testing.T, withJetStream bool) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true}
	if withJetStream {
		opts.JetStream, opts.StoreDir = true, t.TempDir()
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return ns
}

// readBus sorts what real servers answer: JetStream's account
// information, a server without JetStream (no responders), and a
// connection that is closed.
func TestReadBus(t *testing.T) {
	withJS, without := startNATS(t, true), startNATS(t, false)
	for _, tt := range []struct {
		name  string
		url   string
		close bool
		want  busRead
	}{
		{"JetStream answers", withJS.ClientURL(), false, busAnswered},
		{"no JetStream", without.ClientURL(), false, busNoJetStream},
		{"closed connection", withJS.ClientURL(), true, busUnreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if tt.close {
				nc.Close()
			}
			got, err := readBus(context.Background(), nc, js)
			if got != tt.want {
				t.Errorf("readBus: %s (%v), want %s", busReadNames[got], err, busReadNames[tt.want])
			}
		})
	}
}
