package bench

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// millisList turns milliseconds into durations, for the tables below.
func millisList(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestSummarize(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	want := Percentiles{P50: 50, P90: 90, P99: 99, Max: 100}
	if diff := cmp.Diff(Summarize(lat), want); diff != "" {
		t.Errorf("Summarize (-got +want):\n%s", diff)
	}
}

// Few samples: the figures are samples themselves (nearest rank), the
// median of an even count is the lower middle one, and p90 and p99 of four
// are the largest.
func TestSummarizeFewSamples(t *testing.T) {
	want := Percentiles{P50: 2, P90: 4, P99: 4, Max: 4}
	if diff := cmp.Diff(Summarize(millisList(4, 1, 3, 2)), want); diff != "" {
		t.Errorf("Summarize (-got +want):\n%s", diff)
	}
}
