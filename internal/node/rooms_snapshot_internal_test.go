package node

import (
	"testing"
	"time"
)

// The steward keeps a room's snapshot once what the room needs is a
// quarter of the retention old, and after an attempt (which may have
// failed: the bus refused it, or it was too large) not again before the
// back-off, rather than at every tick until what the room needs expires.
func TestKeepDue(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	const every = 8 * time.Hour
	tests := []struct {
		name        string
		now         time.Time
		from, retry time.Time
		every       time.Duration
		want        bool
	}{
		{"no retention", t0.Add(100 * every), t0, time.Time{}, 0, false},
		{"nothing stored", t0.Add(every), time.Time{}, time.Time{}, every, false},
		{"young", t0.Add(every - time.Second), t0, time.Time{}, every, false},
		{"a quarter of the retention old", t0.Add(every), t0, time.Time{}, every, true},
		{"a tick after a failed attempt", t0.Add(every + 200*time.Millisecond), t0, t0.Add(every + keepBackoff(every)), every, false},
		{"the back-off after it", t0.Add(every + keepBackoff(every)), t0, t0.Add(every + keepBackoff(every)), every, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keepDue(tt.now, tt.from, tt.retry, tt.every); got != tt.want {
				t.Errorf("keepDue = %v, want %v", got, tt.want)
			}
		})
	}
	// Attempts a back-off apart, from the first due one until what the
	// room needs expires (four times every after it was stored).
	if n := int((3 * every) / keepBackoff(every)); n < 10 || n > 100 {
		t.Errorf("%d attempts before the room's records expire; want a few dozen at most, and some", n)
	}
}
