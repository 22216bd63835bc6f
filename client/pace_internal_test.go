package client

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/wire"
)

// A budget holds an eighth less than the node's bursts (at least one
// chunk less when the burst allows it) and refills a little slower, so
// that the jitter between sends and the node's reads does not cost a
// refusal; a node that says no limits gets no budget.
func TestBudget(t *testing.T) {
	for _, tt := range []struct {
		burst int
		want  float64
	}{{1, 1}, {2, 1}, {5, 4}, {8, 7}, {200, 175}, {65536, 57344}} {
		if got := budgetBurst(tt.burst); got != tt.want {
			t.Errorf("budgetBurst(%d) = %v, want %v", tt.burst, got, tt.want)
		}
	}
	if b := newBudget(nil, time.Time{}); b != nil {
		t.Errorf("a budget for a node without limits: %+v; want none", b)
	}
	if b := newBudget(&wire.Limits{ChunkRate: 0, ChunkBurst: 5, ByteRate: 1, ByteBurst: 1}, time.Time{}); b != nil {
		t.Errorf("a budget for a chunk rate of 0: %+v; want none", b)
	}

	t0 := time.Unix(1000, 0)
	seconds := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	perChunk := seconds(1 / 9.8)      // 98% of 10 chunks a second
	per50Bytes := seconds(50 / 980.0) // 98% of 1,000 bytes a second
	b := newBudget(&wire.Limits{MaxChunk: 100, ChunkRate: 10, ChunkBurst: 5, ByteRate: 1000, ByteBurst: 400}, t0)
	steps := []struct {
		at   time.Duration // after t0
		size int
		wait time.Duration // 0: sent, and taken from the budget
	}{
		{0, 1, 0}, {0, 1, 0}, {0, 1, 0}, {0, 1, 0}, // the burst: 4 of 5
		{0, 1, perChunk}, // then a chunk every 1/9.8 s
		{perChunk, 1, 0},
		{perChunk, 1, perChunk},
		{10 * time.Second, 300, 0}, // full again: 350 bytes of 400
		{10 * time.Second, 100, per50Bytes},
		{20 * time.Second, 1000, 0}, // larger than the burst: goes when full
	}
	for i, st := range steps {
		now := t0.Add(st.at)
		got := b.wait(now, st.size)
		if d := got - st.wait; d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("step %d (%v, %d bytes): wait %v, want %v", i, st.at, st.size, got, st.wait)
		}
		if got == 0 {
			b.take(st.size)
		}
	}
	var none *budget
	if d := none.wait(t0, 1<<20); d != 0 {
		t.Errorf("no budget: wait %v; want 0", d)
	}
	none.take(1) // no budget, nothing to take
}

// Text longer than the node's chunk limit is cut between characters,
// each piece at most the limit unless one character is longer.
func TestCutText(t *testing.T) {
	for _, tt := range []struct {
		text string
		max  int
		want []string
	}{
		{"", 4, []string{""}},
		{"abcd", 4, []string{"abcd"}},
		{"abcdef", 4, []string{"abcd", "ef"}},
		{"abcdefgh", 4, []string{"abcd", "efgh"}},
		{"aé€😀", 4, []string{"aé", "€", "😀"}}, // 1+2, 3, 4 bytes
		{"😀😀", 3, []string{"😀", "😀"}},         // a character longer than the limit goes whole
		{"ab😀", 4, []string{"ab", "😀"}},
	} {
		got := cutText(tt.text, tt.max)
		if !slices.Equal(got, tt.want) {
			t.Errorf("cutText(%q, %d) = %q, want %q", tt.text, tt.max, got, tt.want)
		}
	}
}
