package failover

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// A cap as large as a Duration goes (no cap, in effect) still gives waits
// that grow and never wrap around: doubling a wait past the largest
// Duration must not turn it negative, which would make every later wait
// zero and the client retry in a tight loop.
func TestWaitsNeverWrapAround(t *testing.T) {
	const forever = time.Duration(math.MaxInt64)
	tests := []struct {
		name  string
		cfg   Config
		out   Outcome
		first time.Duration // the wait of the first outcome, at its upper bound
	}{
		{"failed passes", Config{PassBase: time.Second, PassMax: forever}, noCand, time.Second},
		{"retries", Config{Retries: 200, RetryBase: time.Second, RetryMax: forever}, dialFailed("n1"), time.Second},
		{"quick drops", Config{DropBase: time.Second, PassMax: forever}, dropped("n1"), time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg, top{})
			if err != nil {
				t.Fatal(err)
			}
			now := t0
			m.Next(begin(0), now)
			if tt.out.Kind == DialFailed {
				m.Next(picked("n1"), now)
			}
			prev := time.Duration(0)
			for i := range 150 {
				a := m.Next(tt.out, now)
				what := fmt.Sprintf("outcome %d: %v", i+1, a)
				switch {
				case a.Step == Fail:
					t.Fatalf("%s: gave up without a deadline", what)
				case a.After < tt.first:
					t.Fatalf("%s: wait %v below the first one, %v", what, a.After, tt.first)
				case a.After < prev:
					t.Fatalf("%s: wait %v shorter than the one before, %v", what, a.After, prev)
				}
				prev = a.After
			}
		})
	}
}
