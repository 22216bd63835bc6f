package client_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/leaktest"
)

// signalDialer dials as a net.Dialer does, and says on dialed each time
// it is called (never blocking on it).
type signalDialer struct {
	d      net.Dialer
	dialed chan struct{}
	mu     sync.Mutex
	refuse bool
}

func (s *signalDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	select {
	case s.dialed <- struct{}{}:
	default:
	}
	s.mu.Lock()
	refuse := s.refuse
	s.mu.Unlock()
	if refuse {
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError("refused by the test")}
	}
	return s.d.DialContext(ctx, network, addr)
}

// Close ends a session in whatever phase of reattaching it is, and
// leaves no goroutine of it behind: waiting for a token, saying hello to
// a node that accepts the connection and never answers, backing off with
// every node unreachable, and attached.
func TestCloseInEveryPhaseLeavesNothingRunning(t *testing.T) {
	tests := []struct {
		name string
		// enter brings the session, attached to n, into the phase; it
		// returns once the session is in it.
		enter func(t *testing.T, n *fakeNode, d *signalDialer, token <-chan struct{})
		// tokenHangs makes every token after the first wait for the
		// session's end (the session asks for one before each hello at
		// the common address, so the other phases need an answer).
		tokenHangs bool
	}{
		{"attached", func(t *testing.T, n *fakeNode, d *signalDialer, token <-chan struct{}) {}, false},
		{"waiting for a token", func(t *testing.T, n *fakeNode, d *signalDialer, token <-chan struct{}) {
			n.dropAll()
			<-token
		}, true},
		{"hello to a node that never answers", func(t *testing.T, n *fakeNode, d *signalDialer, token <-chan struct{}) {
			n.pause()
			<-d.dialed // the heartbeat's second connection, or the reattach's
			<-d.dialed
		}, false},
		{"backing off, every node unreachable", func(t *testing.T, n *fakeNode, d *signalDialer, token <-chan struct{}) {
			d.mu.Lock()
			d.refuse = true
			d.mu.Unlock()
			n.dropAll()
			for range 5 {
				<-d.dialed
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNode(t, "n1")
			before := goleak.IgnoreCurrent()
			d := &signalDialer{dialed: make(chan struct{})}
			token := make(chan struct{}, 1)
			first := true
			tokenFunc := func(ctx context.Context) (string, error) {
				if first || !tt.tokenHangs {
					first = false // the session's goroutine is the only caller
					return "t", nil
				}
				select {
				case token <- struct{}{}:
				default:
				}
				<-ctx.Done()
				return "", ctx.Err()
			}
			s, err := client.Dial(dialCtx(t), n.Addr(), client.WithUser("alice"), client.WithDialer(d),
				client.WithTokenFunc(tokenFunc), client.WithRetry(fastRetry()),
				client.WithHeartbeat(client.Heartbeat{Interval: 50 * time.Millisecond, Timeout: 100 * time.Millisecond}))
			if err != nil {
				t.Fatal(err)
			}
			tt.enter(t, n, d, token)
			s.Close()
			for range s.Events() {
			}
			// The paused fake's readers wait for it to go on; they are the
			// fake's, not the session's.
			fake := goleak.IgnoreTopFunction("github.com/switchboard/switchboard/client_test.(*fakeConn).serve")
			leaktest.VerifyNoneWithin(t, 30*time.Second, append(leaktest.EngineLeftovers(), before, fake)...)
		})
	}
}
