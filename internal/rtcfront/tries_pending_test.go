package rtcfront

import (
	"testing"
	"time"
)

// A transcript of one address's token tries begun and settled: tries
// being judged count against maxTokenTries as refused ones do, and a try
// the node accepts gives its count back.
func TestTokenTriesPending(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var tt tokenTries
	steps := []struct {
		op   string // "begin", "accept" (settled, not refused) or "refuse" (settled, refused)
		src  string
		at   time.Duration
		ok   bool          // begin: admitted
		wait time.Duration // begin: the wait told when not admitted
	}{
		{"begin", "a", 0, true, 0},
		{"begin", "a", 0, true, 0},
		{"begin", "a", 0, true, 0},
		{"begin", "a", 0, false, pendingRetry}, // three being judged
		{"begin", "b", 0, true, 0},             // another address is apart
		{"accept", "a", time.Second, false, 0},
		{"begin", "a", time.Second, true, 0}, // an accepted token frees its try
		{"refuse", "a", 2 * time.Second, false, 0},
		{"refuse", "a", 2 * time.Second, false, 0},
		{"begin", "a", 2 * time.Second, false, pendingRetry}, // two refused, one pending
		{"refuse", "a", 3 * time.Second, false, 0},
		{"begin", "a", 3 * time.Second, false, 9 * time.Second}, // three refused: the window's end
		{"begin", "a", 12 * time.Second, true, 0},               // the window ended
	}
	for i, s := range steps {
		switch s.op {
		case "begin":
			wait, ok := tt.begin(s.src, t0.Add(s.at))
			if ok != s.ok || (!ok && wait != s.wait) {
				t.Fatalf("step %d: begin %s at %v: admitted %v, wait %v; want %v, %v", i, s.src, s.at, ok, wait, s.ok, s.wait)
			}
		case "accept", "refuse":
			tt.settle(s.src, t0.Add(s.at), s.op == "refuse")
		}
	}
	tt.settle("a", t0.Add(12*time.Second), false)
	tt.settle("b", t0.Add(12*time.Second), false)
	if len(tt.pending) != 0 {
		t.Errorf("every try settled, %d addresses still pending: %v", len(tt.pending), tt.pending)
	}
}
