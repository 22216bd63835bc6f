package node

import (
	"testing"
	"time"
)

// A change of users alone waits 2 ms per peer, from Coalesce up to the
// heartbeat; the view is rebuilt at most every quarter heartbeat.
func TestUsersEvery(t *testing.T) {
	cfg := Config{Heartbeat: 200 * time.Millisecond, Coalesce: 2 * time.Millisecond}
	tests := []struct {
		size int
		want time.Duration
	}{
		{0, 2 * time.Millisecond},
		{1, 2 * time.Millisecond},
		{3, 4 * time.Millisecond},
		{30, 58 * time.Millisecond},
		{101, 200 * time.Millisecond},
		{1000, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := usersEvery(cfg, tt.size); got != tt.want {
			t.Errorf("usersEvery(%d nodes) = %v, want %v", tt.size, got, tt.want)
		}
	}
	if got := viewEvery(cfg); got != 50*time.Millisecond {
		t.Errorf("viewEvery = %v, want 50ms", got)
	}
}
