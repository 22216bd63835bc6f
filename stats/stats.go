// Package stats is the arithmetic behind the figures Switchboard prints:
// one definition of a percentile, and the mean, median, range and
// max/mean that the benchmarks (internal/bench) and the simulator (sim)
// report. It is pure: no clock, no I/O, no goroutine.
//
// # Percentiles
//
// There is one definition, Quantile, and it takes q in [0, 1]: the 99th
// percentile is Quantile(sorted, 0.99), never Quantile(sorted, 99). A q
// outside [0, 1] panics rather than being clamped, so that a figure
// written on the 0-100 scale fails loudly instead of quietly becoming the
// maximum.
//
// The method is nearest rank: Quantile returns the smallest of the values
// such that at least a fraction q of all the values are at or below it.
// It is always one of the values, never an interpolation between two, so
// "p99 <= 50 ms" means exactly "at least 99% of the samples took at most
// 50 ms", and the median of an even count is the lower of the middle two.
//
//	sorted := []time.Duration{4, 1, 3, 2}
//	slices.Sort(sorted)
//	stats.Quantile(sorted, 0.5) // 2: the lower median
//	stats.Quantile(sorted, 0.9) // 4: ceil(0.9*4) = 4th value
//	stats.Quantile(sorted, 1)   // 4: the largest
//
// Caller's duties: Quantile and Median want their input sorted in
// increasing order (slices.Sort) and read it without copying; the other
// functions take values in any order. None of them keeps its argument.
package stats

import (
	"cmp"
	"fmt"
	"math"
)

// Number is the element types whose mean is computed: integers, floats
// and types built on them, such as time.Duration.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr |
		~float32 | ~float64
}

// QuantileIndex returns the 0-based index of the q-quantile in a sorted
// slice of n values, by the nearest-rank method of Quantile: ceil(q*n)-1,
// and 0 when q*n is 0. It lets a caller that ranks records by a key (a
// whole benchmark run by its p99, say) pick the same record Quantile
// would pick a value.
//
// The product q*n is taken with a tolerance of one part in 1e12, so that
// a decimal q lands where it is written: 0.07*100 is 7.000000000000001 in
// floating point, and the 7th value is still the 7th percentile of 100.
// The part is far above float64's rounding (about 1e-16) and far below a
// whole rank for any n a slice holds (a part in 1e9 was a whole rank at a
// billion values, and the 1-quantile was no longer the largest).
//
// It panics if n < 1, or if q is NaN or outside [0, 1].
func QuantileIndex(n int, q float64) int {
	if n < 1 {
		panic(fmt.Sprintf("stats: quantile of %d values", n))
	}
	if !(q >= 0 && q <= 1) { // also catches NaN
		panic(fmt.Sprintf("stats: quantile %v outside [0, 1] (the 99th percentile is 0.99)", q))
	}
	x := q * float64(n)
	rank := int(math.Ceil(x - x*1e-12))
	return min(max(rank, 1), n) - 1
}

// Quantile returns the q-quantile (0 <= q <= 1) of sorted, which must be
// in increasing order, by the nearest-rank method: the smallest value v
// of sorted such that at least q of the values are <= v, that is
// sorted[QuantileIndex(len(sorted), q)]. Quantile(s, 0) is the smallest
// value, Quantile(s, 1) the largest, Quantile(s, 0.99) the 99th
// percentile. An empty slice gives the zero value. It panics if q is NaN
// or outside [0, 1].
func Quantile[T cmp.Ordered](sorted []T, q float64) T {
	if len(sorted) == 0 {
		var zero T
		if !(q >= 0 && q <= 1) {
			QuantileIndex(1, q) // the same panic as for a non-empty slice
		}
		return zero
	}
	return sorted[QuantileIndex(len(sorted), q)]
}

// Median is Quantile(sorted, 0.5): the middle value of sorted, the lower
// of the middle two for an even count. Empty gives the zero value.
func Median[T cmp.Ordered](sorted []T) T {
	return Quantile(sorted, 0.5)
}

// Range returns the smallest and the largest of values, in any order; the
// zero values when there are none.
func Range[T cmp.Ordered](values []T) (lo, hi T) {
	if len(values) == 0 {
		return lo, hi
	}
	lo, hi = values[0], values[0]
	for _, v := range values[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

// Mean returns the arithmetic mean of values, summed in float64; 0 when
// there are none.
func Mean[T Number](values []T) float64 {
	if len(values) == 0 {
		return 0
	}
	sum := 0.0
	for _, v := range values {
		sum += float64(v)
	}
	return sum / float64(len(values))
}

// MaxMean returns the largest value over the mean of values: for loads
// per node, 1 is a perfect balance and 2 means the busiest node holds
// twice its fair share. It is 0 when there are no values or their mean is
// not positive (nothing to balance).
func MaxMean[T Number](values []T) float64 {
	mean := Mean(values)
	if !(mean > 0) {
		return 0
	}
	_, hi := Range(values)
	return float64(hi) / mean
}
