package bus

import (
	"testing"
	"time"
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
// servers, the directory's, the rooms' and the watch's alike.
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
	for name, cb := range map[string]func(int) time.Duration{"rooms": nc.Opts.CustomReconnectDelayCB, "dir": dir.Opts.CustomReconnectDelayCB} {
		if cb == nil {
			t.Fatalf("%s: no reconnect delay: nats.go waits its fixed ReconnectWait", name)
		}
		if d := cb(10); d < time.Second || d > 2*time.Second {
			t.Errorf("%s: wait after 10 failed passes = %v, want 1s..2s", name, d)
		}
	}
}
