package bus

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestReconnectDelay(t *testing.T) {
	for _, tc := range []struct {
		passes int
		lo, hi time.Duration // the draws u=0 and u close to 1
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{5, 800 * time.Millisecond, 1600 * time.Millisecond},
		{6, time.Second, 2 * time.Second},
		{1000, time.Second, 2 * time.Second},
		{0, time.Second, 2 * time.Second}, // not a count nats.go gives: the longest
	} {
		if got := reconnectDelay(tc.passes, 0); got != tc.lo {
			t.Errorf("reconnectDelay(%d, 0) = %v, want %v", tc.passes, got, tc.lo)
		}
		if got := reconnectDelay(tc.passes, 0.999999); got > tc.hi || got < tc.hi-time.Millisecond {
			t.Errorf("reconnectDelay(%d, 0.999999) = %v, want just under %v", tc.passes, got, tc.hi)
		}
	}
}

// Every connection to an external NATS backs off between passes over its
// servers, the directory's, the rooms' and the watch's alike, and leaves
// a server that stopped answering its pings after seconds, not minutes.
func TestExternalConnectionsBackOff(t *testing.T) {
	url, _ := startExternal(t)
	b := openBus(t, Config{Name: "ext", External: url})
	nc, err := b.Connect("rooms")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	dir, err := b.connectDir("dir")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	for name, c := range map[string]*nats.Conn{"rooms": nc, "dir": dir} {
		if c.Opts.PingInterval != busPingInterval || c.Opts.MaxPingsOut != busMaxPingsOut {
			t.Errorf("%s: a ping every %v, %d unanswered at most; want %v and %d", name, c.Opts.PingInterval, c.Opts.MaxPingsOut, busPingInterval, busMaxPingsOut)
		}
		if c.Opts.FlusherTimeout != busWriteTimeout || !c.Opts.ReconnectOnFlusherError {
			t.Errorf("%s: writes wait %v, reconnect on a failed one %v; want %v and true", name, c.Opts.FlusherTimeout, c.Opts.ReconnectOnFlusherError, busWriteTimeout)
		}
	}
	for name, cb := range map[string]func(int) time.Duration{"rooms": nc.Opts.CustomReconnectDelayCB, "dir": dir.Opts.CustomReconnectDelayCB} {
		if cb == nil {
			t.Fatalf("%s: no reconnect delay: nats.go waits its fixed ReconnectWait", name)
		}
		if d := cb(10); d < time.Second || d > 2*time.Second {
			t.Errorf("%s: wait after 10 failed passes = %v, want 1s..2s", name, d)
		}
	}
}

// A connection to an external NATS that the node closes itself logs no
// loss: nats.go calls the disconnect handler for Close too, and the node
// would warn of a lost bus at every stop. (A real loss, and the line
// saying where the connection went, is TestBusServerKilledChangesNothing
// in internal/chaos.)
func TestClosedExternalConnectionLogsNoLoss(t *testing.T) {
	url, _ := startExternal(t)
	var logs syncBuffer
	b := openBus(t, Config{Name: "ext", External: url, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	closed := make(chan struct{})
	// nats.go calls the closed handler after the disconnect handler, on
	// the same goroutine: once it ran, so did the other.
	nc, err := b.Connect("rooms", nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	<-closed
	if strings.Contains(logs.String(), "lost a connection") {
		t.Errorf("closing a connection logged a loss:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
