package node

import (
	"testing"
	"time"
)

// A change of users alone waits 2 ms per peer, from Coalesce up to the
// base heartbeat, and once the heartbeat has slowed, a heartbeat; the
// view is rebuilt at most every quarter heartbeat.
func TestUsersEvery(t *testing.T) {
	const base = 200 * time.Millisecond
	cfg := Config{Heartbeat: base, Coalesce: 2 * time.Millisecond}
	tests := []struct {
		size  int
		every time.Duration
		want  time.Duration
	}{
		{0, base, 2 * time.Millisecond},
		{1, base, 2 * time.Millisecond},
		{3, base, 4 * time.Millisecond},
		{30, base, 58 * time.Millisecond},
		{101, base, 200 * time.Millisecond},
		{1000, base, 200 * time.Millisecond},
		// A node told of deaths by its bus slows its heartbeat with size.
		{30, 600 * time.Millisecond, 600 * time.Millisecond},
		{100, 2 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		if got := usersEvery(cfg, tt.size, tt.every); got != tt.want {
			t.Errorf("usersEvery(%d nodes, heartbeat %v) = %v, want %v", tt.size, tt.every, got, tt.want)
		}
	}
	if got := viewEvery(cfg); got != 50*time.Millisecond {
		t.Errorf("viewEvery = %v, want 50ms", got)
	}
}
