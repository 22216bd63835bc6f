package client

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A node found busy again and again is asked again after growing pauses.
func TestBusyPause(t *testing.T) {
	hb := DefaultHeartbeat()
	var got []time.Duration
	for busy := 1; busy <= 6; busy++ {
		got = append(got, busyPause(hb, busy))
	}
	want := []time.Duration{0, 1500 * time.Millisecond, 4500 * time.Millisecond, 10500 * time.Millisecond, 15 * time.Second, 15 * time.Second}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("busyPause (-got +want):\n%s", diff)
	}
}
