package sim

import "github.com/switchboard/switchboard/stats"

// Loads summarises the users per node at one moment.
type Loads struct {
	// Nodes is how many nodes were counted (the live ones).
	Nodes int `json:"nodes"`
	// Min and Max are the fewest and the most users on one node.
	Min int `json:"min"`
	Max int `json:"max"`
	// Mean is the mean users per node.
	Mean float64 `json:"mean"`
	// MaxMean is Max/Mean (0 when Mean is 0), as stats.MaxMean: 1 is a
	// perfect balance, 2 means the busiest node holds twice its fair share.
	MaxMean float64 `json:"max_mean"`
}

// loadStats summarises loads.
func loadStats(loads []int) Loads {
	lo, hi := stats.Range(loads)
	return Loads{Nodes: len(loads), Min: lo, Max: hi, Mean: stats.Mean(loads), MaxMean: stats.MaxMean(loads)}
}
