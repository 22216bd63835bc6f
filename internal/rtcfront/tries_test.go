package rtcfront

import (
	"fmt"
	"testing"
	"time"
)

// A transcript of one address's refused tokens, another's beside it, and
// the window ending.
func TestTokenTries(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var tt tokenTries
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		op       string // "refuse" or "check"
		src      string
		at       time.Duration
		blocked  bool
		leftWant time.Duration
	}{
		{"check", "a", 0, false, 0},
		{"refuse", "a", 0, false, 0},
		{"refuse", "a", time.Second, false, 0},
		{"check", "a", 2 * time.Second, false, 0}, // two of three
		{"refuse", "a", 3 * time.Second, false, 0},
		{"check", "a", 3 * time.Second, true, 7 * time.Second}, // the window runs from the first
		{"check", "b", 3 * time.Second, false, 0},              // another address is apart
		{"check", "a", 9 * time.Second, true, time.Second},
		{"check", "a", 10 * time.Second, false, 0}, // the window ended
		{"refuse", "a", 11 * time.Second, false, 0},
		{"check", "a", 11 * time.Second, false, 0}, // a new window, one try used
	}
	for i, s := range steps {
		switch s.op {
		case "refuse":
			tt.refused(s.src, at(s.at))
		case "check":
			left, blocked := tt.blocked(s.src, at(s.at))
			if blocked != s.blocked || (blocked && left != s.leftWant) {
				t.Fatalf("step %d: %s at %v: blocked %v for %v, want %v for %v", i, s.src, s.at, blocked, left, s.blocked, s.leftWant)
			}
		}
	}
}

// The addresses remembered are bounded: past the bound, ended windows are
// forgotten, and while none has ended a new address is not counted.
func TestTokenTriesBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var tt tokenTries
	for i := range maxTokenTriesKept {
		tt.refused(fmt.Sprint("src", i), t0)
	}
	for range maxTokenTries {
		tt.refused("late", t0.Add(time.Second))
	}
	if _, blocked := tt.blocked("late", t0.Add(time.Second)); blocked || len(tt.by) != maxTokenTriesKept {
		t.Fatalf("full: late blocked %v, %d kept; want not counted, %d kept", blocked, len(tt.by), maxTokenTriesKept)
	}
	for range maxTokenTries {
		tt.refused("later", t0.Add(tokenTriesWindow))
	}
	if _, blocked := tt.blocked("later", t0.Add(tokenTriesWindow)); !blocked || len(tt.by) != 1 {
		t.Fatalf("after the window: later blocked %v, %d kept; want blocked, 1 kept", blocked, len(tt.by))
	}
}
