package client_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A flow that was lost (a NAT that forgot it, the client's address
// changed) passes the second opinion, which goes on a new flow, and was
// taken for a busy node until MaxBusy (some 74 s with the default heartbeat). On Linux the
// session's connection carries a TCP_USER_TIMEOUT from its heartbeat: 10
// Timeouts (15 s by default), at most MaxBusy, so the kernel ends it
// once the pings sent on it go unacknowledged that long. Without a
// heartbeat the kernel's default stays. (The loss itself needs packet
// filtering to show.)
func TestSessionConnectionHasAUserTimeout(t *testing.T) {
	for _, c := range []struct {
		name string
		hb   client.Heartbeat
		want time.Duration
	}{
		{"default", client.DefaultHeartbeat(), 15 * time.Second},
		{"bounded by MaxBusy", client.Heartbeat{Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond, MaxBusy: 2 * time.Second}, 2 * time.Second},
		{"off", client.Heartbeat{}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newFakeNode(t, "a")
			s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithHeartbeat(c.hb), client.WithRetry(fastRetry()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			// Set as the session starts reading its connection.
			nodetest.Eventually(t, settle, func() error {
				got, err := s.UserTimeout()
				if err != nil {
					return err
				}
				if got != c.want {
					return fmt.Errorf("TCP_USER_TIMEOUT %v, want %v", got, c.want)
				}
				return nil
			})
		})
	}
}
