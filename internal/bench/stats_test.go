package bench

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWithin(t *testing.T) {
	tests := []struct {
		name   string
		delays []time.Duration
		total  int
		bound  time.Duration
		want   float64
	}{
		{"nothing happened", nil, 0, time.Second, 0},
		{"all within", millisList(100, 200, 300), 3, 500 * time.Millisecond, 1},
		{"the bound itself is within", millisList(500), 1, 500 * time.Millisecond, 1},
		{"one late", millisList(100, 200, 600, 300), 4, 500 * time.Millisecond, 0.75},
		{"pending ones are not within", millisList(100, 200), 4, time.Second, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Within(tt.delays, tt.total, tt.bound); got != tt.want {
				t.Errorf("Within = %v, want %v", got, tt.want)
			}
		})
	}
}

// Reattach timing from synthetic timestamps: a node killed at t0, the
// sessions' drops and reattachments around it.
func TestReattachDelays(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(msAfter int) time.Time { return t0.Add(time.Duration(msAfter) * time.Millisecond) }
	var never time.Time
	tests := []struct {
		name        string
		drops, back []time.Time
		wantDelays  []time.Duration
		wantPending int
	}{
		{
			name:  "sessions that never dropped do not count",
			drops: []time.Time{never, never}, back: []time.Time{never, never},
		},
		{
			name:  "delays run from the kill, not from the drop",
			drops: []time.Time{at(1), at(2)}, back: []time.Time{at(150), at(420)},
			wantDelays: []time.Duration{150 * time.Millisecond, 420 * time.Millisecond},
		},
		{
			name:  "a drop before the kill is someone else's",
			drops: []time.Time{at(-500), at(3)}, back: []time.Time{at(-400), at(90)},
			wantDelays: []time.Duration{90 * time.Millisecond},
		},
		{
			name:  "dropped and not back is pending",
			drops: []time.Time{at(1), at(1)}, back: []time.Time{never, at(80)},
			wantDelays: []time.Duration{80 * time.Millisecond}, wantPending: 1,
		},
		{
			name:  "dropped again after reattaching is pending again",
			drops: []time.Time{at(700)}, back: []time.Time{at(300)},
			wantPending: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pending := reattachDelays(t0, tt.drops, tt.back)
			if diff := cmp.Diff(got, tt.wantDelays); diff != "" {
				t.Errorf("delays (-got +want):\n%s", diff)
			}
			if pending != tt.wantPending {
				t.Errorf("pending = %d, want %d", pending, tt.wantPending)
			}
		})
	}
}

func TestSummarizeReattach(t *testing.T) {
	var delays []time.Duration
	for i := 1; i <= 98; i++ {
		delays = append(delays, time.Duration(i*5)*time.Millisecond) // 5..490 ms
	}
	delays = append(delays, 800*time.Millisecond) // one late
	got := SummarizeReattach(delays, 1)           // and one never came back
	want := Reattach{
		Dropped: 100, Pending: 1,
		MS:          Percentiles{P50: 250, P90: 450, P99: 800, Max: 800},
		Within500ms: 0.98, Within1s: 0.99,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("SummarizeReattach (-got +want):\n%s", diff)
	}
}

func TestMaxMeanOf(t *testing.T) {
	counts := map[string]int{"n1": 1500, "n2": 1500, "n3": 0}
	tests := []struct {
		name string
		keep func(string) bool
		want float64
	}{
		{"all nodes", nil, 1.5},
		{"without the dead one", func(id string) bool { return id != "n3" }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaxMeanOf(counts, tt.keep); got != tt.want {
				t.Errorf("MaxMeanOf = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMergeAndDiff(t *testing.T) {
	before := map[string]int{"n1": 1000, "n2": 1000, "n3": 1000}
	arrived := map[string]int{"n1": 10, "n4": 990}
	end := Merge(before, arrived)
	if diff := cmp.Diff(end, map[string]int{"n1": 1010, "n2": 1000, "n3": 1000, "n4": 990}); diff != "" {
		t.Errorf("Merge (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(Diff(end, before), map[string]int{"n1": 10, "n2": 0, "n3": 0, "n4": 990}); diff != "" {
		t.Errorf("Diff (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(Diff(map[string]int{"n2": 5}, map[string]int{"n1": 3}), map[string]int{"n1": -3, "n2": 5}); diff != "" {
		t.Errorf("Diff of a node gone (-got +want):\n%s", diff)
	}
	// 3 nodes of 1000, a 4th joins, 1000 arrive spread evenly by a plain
	// round robin: the classic 1.25.
	rr := Merge(before, map[string]int{"n1": 250, "n2": 250, "n3": 250, "n4": 250})
	if got := MaxMeanOf(rr, nil); got != 1.25 {
		t.Errorf("round-robin scale-out max/mean = %v, want 1.25", got)
	}
}

func TestDetect(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(msAfter int) time.Time { return t0.Add(time.Duration(msAfter) * time.Millisecond) }
	tests := []struct {
		name string
		seen []time.Time
		want Detection
	}{
		{"no watchers", nil, Detection{}},
		{"two peers", []time.Time{at(640), at(610)}, Detection{FirstMS: 610, AllMS: 640}},
		{"one missed", []time.Time{at(600), {}}, Detection{FirstMS: 600, AllMS: 600, Missed: 1}},
		{"all missed", []time.Time{{}, {}}, Detection{Missed: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(Detect(t0, tt.seen), tt.want); diff != "" {
				t.Errorf("Detect (-got +want):\n%s", diff)
			}
		})
	}
}

func TestKiBPer(t *testing.T) {
	tests := []struct {
		name          string
		before, after float64
		n             int
		want          float64
	}{
		{"no sessions", 0, 1 << 20, 0, 0},
		{"12 KiB each", 4 << 20, 4<<20 + 1000*12*1024, 1000, 12},
		{"100,000 sessions in 1.14 GiB", 0, 100000 * 12 * 1024, 100000, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KiBPer(tt.before, tt.after, tt.n); got != tt.want {
				t.Errorf("KiBPer = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVictim(t *testing.T) {
	tests := []struct {
		name   string
		counts map[string]int
		spare  []string
		want   string
	}{
		{"the most loaded", map[string]int{"n1": 990, "n2": 1010, "n3": 1000}, nil, "n2"},
		{"a tie goes to the first", map[string]int{"n1": 1000, "n2": 1000, "n3": 1000}, nil, "n1"},
		{"spared nodes are left out", map[string]int{"n1": 1100, "n2": 950, "n3": 950}, []string{"n1"}, "n2"},
		{"n10 sorts after n9", map[string]int{"n9": 5, "n10": 5}, nil, "n9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := victim(tt.counts, tt.spare...); got != tt.want {
				t.Errorf("victim = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMedianBy(t *testing.T) {
	type run struct {
		name string
		ms   float64
	}
	tests := []struct {
		name     string
		runs     []run
		want     string
		wantKeys []float64
	}{
		{"one run", []run{{"a", 5}}, "a", []float64{5}},
		{"the middle of three", []run{{"a", 900}, {"b", 700}, {"c", 1500}}, "a", []float64{900, 700, 1500}},
		{"the lower middle of four", []run{{"a", 4}, {"b", 1}, {"c", 3}, {"d", 2}}, "d", []float64{4, 1, 3, 2}},
		{"ties keep run order", []run{{"a", 1}, {"b", 1}, {"c", 1}}, "b", []float64{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, keys := MedianBy(tt.runs, func(r run) float64 { return r.ms })
			if got.name != tt.want {
				t.Errorf("MedianBy picked %q, want %q", got.name, tt.want)
			}
			if diff := cmp.Diff(keys, tt.wantKeys); diff != "" {
				t.Errorf("keys (-got +want):\n%s", diff)
			}
		})
	}
}

func TestWorst(t *testing.T) {
	if got := worst(1.02, []float64{1.001, 1.068, 1.02}); got != 1.068 {
		t.Errorf("worst = %v, want 1.068", got)
	}
	if got := withWorst(1.02, nil); got != "1.020" {
		t.Errorf("withWorst of one run = %q", got)
	}
	if got := withWorst(1.02, []float64{1.02, 1.068}); got != "1.020 (worst of 2 runs: 1.068)" {
		t.Errorf("withWorst = %q", got)
	}
}
