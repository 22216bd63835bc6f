package bench

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/switchboard/switchboard/stats"
)

// Within returns the fraction of total events that took at most bound:
// delays holds the events that completed; total also counts those that
// never did, which are not within any bound. It is 0 when total is 0.
func Within(delays []time.Duration, total int, bound time.Duration) float64 {
	if total <= 0 {
		return 0
	}
	n := 0
	for _, d := range delays {
		if d <= bound {
			n++
		}
	}
	return float64(n) / float64(total)
}

// MaxMeanOf is stats.MaxMean over the counts of a map, keeping only the keys
// keep accepts (all of them when keep is nil).
func MaxMeanOf(counts map[string]int, keep func(id string) bool) float64 {
	var values []int
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		if keep == nil || keep(id) {
			values = append(values, counts[id])
		}
	}
	return stats.MaxMean(values)
}

// Merge adds the counts of several maps key by key; a key present in any
// map is present in the result.
func Merge(counts ...map[string]int) map[string]int {
	out := map[string]int{}
	for _, m := range counts {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// Diff returns after minus before, key by key, over the keys of both.
func Diff(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		out[k] = v - before[k]
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			out[k] = -v
		}
	}
	return out
}

// Ratio is a/b, or 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// millis converts durations to milliseconds, for charts and JSON.
func millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}

// Detection is when each watcher first saw an event, relative to when
// it was caused.
type Detection struct {
	// FirstMS is when the first watcher saw it.
	FirstMS float64 `json:"first_ms"`
	// AllMS is when the last watcher saw it: every watcher knew by then.
	AllMS float64 `json:"all_ms"`
	// Missed counts watchers that never saw it.
	Missed int `json:"missed"`
}

// Detect turns the times watchers first saw an event (zero: never) into a
// Detection relative to cause.
func Detect(cause time.Time, seen []time.Time) Detection {
	var d Detection
	first, last := time.Duration(math.MaxInt64), time.Duration(0)
	any := false
	for _, t := range seen {
		if t.IsZero() {
			d.Missed++
			continue
		}
		any = true
		first = min(first, t.Sub(cause))
		last = max(last, t.Sub(cause))
	}
	if any {
		d.FirstMS, d.AllMS = ms(first), ms(last)
	}
	return d
}

// KiBPer is (after-before) bytes divided among n, in KiB.
func KiBPer(before, after float64, n int) float64 {
	if n <= 0 {
		return 0
	}
	return (after - before) / float64(n) / 1024
}

// MedianBy returns the run whose key is the median of the runs' keys, by
// stats.Median's definition (the lower median for an even count; ties
// keep run order), and every run's key in run order. It panics on no
// runs.
func MedianBy[R any](runs []R, key func(R) float64) (median R, keys []float64) {
	keys = make([]float64, len(runs))
	idx := make([]int, len(runs))
	for i, r := range runs {
		keys[i] = key(r)
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(keys[a], keys[b]) })
	return runs[idx[stats.QuantileIndex(len(runs), 0.5)]], keys
}
