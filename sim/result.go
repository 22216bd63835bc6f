package sim

// Result is what one run measured. Times are in seconds of simulated time.
type Result struct {
	// Policy is the policy that ran.
	Policy string `json:"policy"`
	// Staleness is the directory staleness of the run, in seconds.
	Staleness float64 `json:"staleness_s"`
	// Duration is the simulated time, and Warmup the start of the window
	// of Worst, in seconds.
	Duration float64 `json:"duration_s"`
	Warmup   float64 `json:"warmup_s"`
	// Arrived counts the sessions that arrived; Attached those of them
	// attached at the end; Left those whose lifetime ended (before or
	// after attaching); Unattached those still trying to attach at the end.
	Arrived    int `json:"arrived"`
	Attached   int `json:"attached"`
	Left       int `json:"left"`
	Unattached int `json:"unattached"`

	// End is the users per live node at the end of the run.
	End Loads `json:"end"`
	// Worst is the largest max/mean seen at any snapshot after the warm-up,
	// and WorstAt when.
	Worst   float64 `json:"worst_max_mean"`
	WorstAt float64 `json:"worst_at_s"`
	// Peak is the most users seen on one node at any snapshot.
	Peak int `json:"peak"`

	// HeldDirectory says the sessions held the directory pushed to them
	// and picked from it first after a drop (Config.NoPushes false).
	HeldDirectory bool `json:"held_directory"`

	// Picks counts the calls to the policy; HeldPicks those of them from
	// a directory a session held when its node died.
	Picks     int `json:"picks"`
	HeldPicks int `json:"held_picks"`
	// Refused counts attaches refused by a full node; DialFailed dials of
	// a dead node; NoCandidate picks that found no node (pick.ErrNoNode).
	// Failed is Refused+DialFailed: the failed attaches.
	Refused     int `json:"refused"`
	DialFailed  int `json:"dial_failed"`
	NoCandidate int `json:"no_candidate"`
	Failed      int `json:"failed_attaches"`

	// Pushes counts the directories the nodes pushed to attached
	// sessions, and their bytes.
	Pushes Pushes `json:"pushes"`

	// Storms describes each re-attach storm (one per NodeEvent that
	// killed nodes), in order.
	Storms []Storm `json:"storms,omitempty"`

	// Series samples the users per live node every Config.Sample.
	Series []Point `json:"series"`
}

// Storm is one re-attach storm: the sessions of the nodes killed at one
// moment dropping and attaching elsewhere.
type Storm struct {
	// At is when the nodes died; Killed how many.
	At     float64 `json:"at_s"`
	Killed int     `json:"killed"`
	// Sessions is the storm's size: the sessions the dead nodes held.
	Sessions int `json:"sessions"`
	// Reattached counts those attached again by the end of the run, and
	// Left those whose lifetime ended first.
	Reattached int `json:"reattached"`
	Left       int `json:"left"`
	// Failed counts the failed attaches (refused or dial failed) of the
	// storm's sessions.
	Failed int `json:"failed_attaches"`
	// Fetched counts the storm's sessions that asked the common address
	// for a directory (at least once) before attaching again: all of
	// them without a held directory, only those whose held directory's
	// candidates failed with one.
	Fetched int `json:"fetched"`
	// Worst is the largest max/mean users per live node at any snapshot
	// in the 2 s from the death: whether the storm herded onto a few
	// nodes.
	Worst float64 `json:"worst_max_mean"`
	// P50, P99 and Max are percentiles (stats.Quantile at 0.50, 0.99 and
	// 1: nearest rank, so each is one of Times) of the time from the death
	// to the session being attached again; Max is when the storm was over.
	P50 float64 `json:"p50_s"`
	P99 float64 `json:"p99_s"`
	Max float64 `json:"max_s"`
	// Times are the re-attach times themselves, in increasing order.
	Times []float64 `json:"-"`
}

// Point is a sample of the users per live node at one moment.
type Point struct {
	// T is the time, in seconds from the start.
	T float64 `json:"t"`
	// Nodes counts the live nodes.
	Nodes int `json:"nodes"`
	// Min, Mean and Max are the users per live node.
	Min  int     `json:"min"`
	Mean float64 `json:"mean"`
	Max  int     `json:"max"`
}
