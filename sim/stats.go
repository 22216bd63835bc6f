package sim

import "math"

// Percentile returns the p-th percentile (0 <= p <= 100) of sorted, which
// must be in increasing order, by linear interpolation between the two
// nearest ranks: the value at rank p/100*(len-1), counting from 0. So the
// 0th percentile is the smallest value, the 100th the largest and the 50th
// the median (the mean of the middle two for an even count). A p outside
// [0, 100] is clamped to it; an empty slice gives 0, and so does a NaN p.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 || math.IsNaN(p) {
		return 0
	}
	p = min(max(p, 0), 100)
	rank := p / 100 * float64(n-1)
	lo := int(math.Floor(rank))
	if lo >= n-1 {
		return sorted[n-1]
	}
	frac := rank - float64(lo)
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}

// MaxMean returns the largest load over the mean load: 1 is a perfect
// balance, 2 means the busiest node holds twice its fair share. It is 0
// for no loads or when every load is 0 (nothing to balance).
func MaxMean(loads []int) float64 {
	st := loadStats(loads)
	return st.MaxMean
}

// Loads summarises the users per node at one moment.
type Loads struct {
	// Nodes is how many nodes were counted (the live ones).
	Nodes int `json:"nodes"`
	// Min and Max are the fewest and the most users on one node.
	Min int `json:"min"`
	Max int `json:"max"`
	// Mean is the mean users per node.
	Mean float64 `json:"mean"`
	// MaxMean is Max/Mean (0 when Mean is 0); see MaxMean.
	MaxMean float64 `json:"max_mean"`
}

// loadStats summarises loads.
func loadStats(loads []int) Loads {
	if len(loads) == 0 {
		return Loads{}
	}
	st := Loads{Nodes: len(loads), Min: loads[0], Max: loads[0]}
	sum := 0
	for _, l := range loads {
		st.Min, st.Max = min(st.Min, l), max(st.Max, l)
		sum += l
	}
	st.Mean = float64(sum) / float64(len(loads))
	if sum > 0 {
		st.MaxMean = float64(st.Max) / st.Mean
	}
	return st
}
