package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var approx = cmpopts.EquateApprox(0, 1e-12)

// oneTo returns 1, 2, ..., n.
func oneTo(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i + 1)
	}
	return out
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []float64
		q      float64
		want   float64
	}{
		{"empty", nil, 0.5, 0},
		{"one value, q0", []float64{5}, 0, 5},
		{"one value, q0.5", []float64{5}, 0.5, 5},
		{"one value, q1", []float64{5}, 1, 5},
		{"q0 is the smallest", []float64{1, 2, 3, 4}, 0, 1},
		{"q1 is the largest", []float64{1, 2, 3, 4}, 1, 4},
		{"median of an odd count is the middle one", []float64{1, 2, 10}, 0.5, 2},
		{"median of an even count is the lower middle one", []float64{1, 2, 3, 4}, 0.5, 2},
		{"just above a half takes the upper middle", []float64{1, 2, 3, 4}, 0.51, 3},
		{"q0.25 of four is the first: exactly a quarter at or below", []float64{1, 2, 3, 4}, 0.25, 1},
		{"q0.26 of four is the second", []float64{1, 2, 3, 4}, 0.26, 2},
		{"never interpolates", []float64{10, 20}, 0.1, 10},
		{"p90 of 1..100 is 90", oneTo(100), 0.9, 90},
		{"p99 of 1..100 is 99", oneTo(100), 0.99, 99},
		{"p99 of 1..1000 is 990", oneTo(1000), 0.99, 990},
		{"p99 of 1..101 is 100: ceil(99.99)", oneTo(101), 0.99, 100},
		{"p7 of 1..100 is 7 despite 0.07*100 > 7 in floating point", oneTo(100), 0.07, 7},
		{"p99.9 of 1..1000 is 999", oneTo(1000), 0.999, 999},
		{"ties", []float64{7, 7, 7}, 0.33, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(Quantile(tt.sorted, tt.q), tt.want); diff != "" {
				t.Errorf("Quantile(%v, %v) (-got +want):\n%s", tt.sorted, tt.q, diff)
			}
		})
	}
}

// A q on the 0-100 scale, a negative q or NaN is a bug at the call site:
// Quantile panics, even over no values, instead of clamping quietly.
func TestQuantileRejectsQOutsideZeroOne(t *testing.T) {
	for _, q := range []float64{99, 50, 1.0000001, -0.01, math.NaN(), math.Inf(1)} {
		for _, sorted := range [][]float64{nil, {1, 2, 3}} {
			t.Run(fmt.Sprintf("%v of %d", q, len(sorted)), func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Errorf("Quantile(%v, %v) did not panic", sorted, q)
					}
				}()
				Quantile(sorted, q)
			})
		}
	}
}

func TestQuantileOfDurations(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	sorted := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	got := []time.Duration{Quantile(sorted, 0.5), Quantile(sorted, 0.9), Quantile(sorted, 0.99), Median(sorted)}
	if diff := cmp.Diff(got, ms(5, 9, 10, 5)); diff != "" {
		t.Errorf("p50, p90, p99, median (-got +want):\n%s", diff)
	}
}

// bruteQuantile is the definition written out on whole percents, with no
// floating point: the smallest value v such that at least pct% of the
// values are <= v.
func bruteQuantile(values []int, pct int) int {
	n := len(values)
	best, found := 0, false
	for _, v := range values {
		atOrBelow := 0
		for _, w := range values {
			if w <= v {
				atOrBelow++
			}
		}
		if atOrBelow*100 >= pct*n && (!found || v < best) {
			best, found = v, true
		}
	}
	return best
}

// Quantile against the brute force over random samples with ties, for
// every whole percentile: it is a value of the sample, at least q of the
// sample is at or below it, and no smaller value of the sample qualifies.
func TestQuantileAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		n := 1 + rng.IntN(60)
		values := make([]int, n)
		for i := range values {
			values[i] = rng.IntN(1 + rng.IntN(100)) // sometimes many ties
		}
		sorted := slices.Clone(values)
		slices.Sort(sorted)
		for pct := 0; pct <= 100; pct++ {
			q := float64(pct) / 100
			if got, want := Quantile(sorted, q), bruteQuantile(values, pct); got != want {
				t.Fatalf("trial %d: Quantile(%v, %v) = %d, brute force %d", trial, sorted, q, got, want)
			}
		}
	}
}

// Quantile never decreases as q grows, and Median is Quantile(0.5).
func TestQuantileIsMonotone(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		sorted := make([]float64, 1+rng.IntN(200))
		for i := range sorted {
			sorted[i] = rng.NormFloat64()
		}
		slices.Sort(sorted)
		prev := math.Inf(-1)
		for i := 0; i <= 1000; i++ {
			v := Quantile(sorted, float64(i)/1000)
			if v < prev {
				t.Fatalf("Quantile(%v) = %v < %v at the step before", float64(i)/1000, v, prev)
			}
			prev = v
		}
		if Median(sorted) != Quantile(sorted, 0.5) || prev != sorted[len(sorted)-1] || Quantile(sorted, 0) != sorted[0] {
			t.Fatalf("median, q0 or q1 disagree on %v", sorted)
		}
	}
}

func TestQuantileIndex(t *testing.T) {
	tests := []struct {
		n    int
		q    float64
		want int
	}{
		{1, 0, 0}, {1, 1, 0},
		{2, 0.5, 0}, {2, 0.51, 1},
		{3, 0.5, 1}, {4, 0.5, 1}, {5, 0.5, 2},
		{100, 0.99, 98}, {100, 1, 99}, {100, 0.01, 0}, {100, 0, 0},
		{100, 0.07, 6}, {1000, 0.999, 998},
		// A billion values and more: the largest is still the 1-quantile.
		{999_999_999, 1, 999_999_998}, {1_000_000_000, 1, 999_999_999}, {5_000_000_000, 1, 4_999_999_999},
		{5_000_000_000, 0.99, 4_949_999_999},
	}
	for _, tt := range tests {
		if got := QuantileIndex(tt.n, tt.q); got != tt.want {
			t.Errorf("QuantileIndex(%d, %v) = %d, want %d", tt.n, tt.q, got, tt.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("QuantileIndex(0, 0.5) did not panic")
		}
	}()
	QuantileIndex(0, 0.5)
}

func TestRangeAndMean(t *testing.T) {
	tests := []struct {
		name    string
		values  []int
		lo, hi  int
		mean    float64
		maxMean float64
	}{
		{"none", nil, 0, 0, 0, 0},
		{"all zero", []int{0, 0, 0}, 0, 0, 0, 0},
		{"one", []int{7}, 7, 7, 7, 1},
		{"even", []int{1000, 1000, 1000}, 1000, 1000, 1000, 1},
		{"unsorted", []int{2, 6, 4}, 2, 6, 4, 1.5},
		{"one of two holds three quarters", []int{3, 1}, 1, 3, 2, 1.5},
		{"all on one of four", []int{0, 4, 0, 0}, 0, 4, 1, 4},
		{"scale-out by round robin", []int{1250, 1250, 1250, 250}, 250, 1250, 1000, 1.25},
		{"mean 3, max 5", []int{2, 2, 5, 3}, 2, 5, 3, 5.0 / 3},
		{"everything on one of 1000", append(make([]int, 999), 1000), 0, 1000, 1, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := Range(tt.values)
			got := []float64{float64(lo), float64(hi), Mean(tt.values), MaxMean(tt.values)}
			want := []float64{float64(tt.lo), float64(tt.hi), tt.mean, tt.maxMean}
			if diff := cmp.Diff(got, want, approx); diff != "" {
				t.Errorf("lo, hi, mean, max/mean of %v (-got +want):\n%s", tt.values, diff)
			}
		})
	}
}

func TestMeanOfDurations(t *testing.T) {
	d := []time.Duration{time.Second, 2 * time.Second, 6 * time.Second}
	if got := time.Duration(Mean(d)); got != 3*time.Second {
		t.Errorf("Mean = %v, want 3s", got)
	}
}
