package sim

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/wire"
)

func failoverBad() failover.Config {
	return failover.Config{RetryBase: time.Second, RetryMax: time.Millisecond}
}

// small is a quick scenario: 20 nodes, 4000 sessions over 4 s, one node
// killed at 2 s and two joining at 3 s.
func small() Config {
	return Config{
		Nodes: 20, Capacity: 1000, Sessions: 4000, Rate: 1000,
		Lifetime: 10 * time.Second,
		Events:   []NodeEvent{{At: 2 * time.Second, Kill: 1}, {At: 3 * time.Second, Join: 2}},
		Duration: 6 * time.Second,
	}
}

func mustRun(t *testing.T, cfg Config) Result {
	t.Helper()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDeterministic(t *testing.T) {
	for _, policy := range Policies() {
		t.Run(policy, func(t *testing.T) {
			cfg := small()
			cfg.Policy = policy
			cfg.Staleness = 500 * time.Millisecond
			cfg.Zones = 3
			a, b := mustRun(t, cfg), mustRun(t, cfg)
			if diff := cmp.Diff(a, b); diff != "" {
				t.Fatalf("same config, different results (-first +second):\n%s", diff)
			}
			if a.Arrived != 4000 || a.Attached+a.Left+a.Unattached != a.Arrived || a.Picks < a.Arrived {
				t.Errorf("accounting: %+v", a)
			}
			cfg.Seed = 2
			if c := mustRun(t, cfg); cmp.Equal(a, c) {
				t.Error("another seed, same result")
			}
		})
	}
}

// TestSameSessionsForEveryPolicy: arrivals, lifetimes and groups do not
// depend on the policy, so runs compare like with like.
func TestSameSessionsForEveryPolicy(t *testing.T) {
	var first []Result
	for _, policy := range []string{"random", "least-users"} {
		cfg := small()
		cfg.Policy = policy
		cfg.Events = []NodeEvent{}
		first = append(first, mustRun(t, cfg))
	}
	if first[0].Arrived != first[1].Arrived || first[0].Left != first[1].Left || first[0].Attached != first[1].Attached {
		t.Errorf("random %+v\nleast-users %+v", first[0], first[1])
	}
}

// TestNodeDeath kills one node of a cluster where nobody leaves, and checks
// that every session it held attaches again, elsewhere.
func TestNodeDeath(t *testing.T) {
	for _, staleness := range []time.Duration{0, 2 * time.Second} {
		for _, policy := range Policies() {
			t.Run(policy+"/"+staleness.String(), func(t *testing.T) {
				cfg := Config{
					Policy: policy, Nodes: 10, Capacity: 1000, Sessions: 2000, Rate: 1000,
					Lifetime: time.Hour, FixedLifetime: true, Staleness: staleness,
					Events:   []NodeEvent{{At: 3 * time.Second, Kill: 1}},
					Duration: 10 * time.Second,
				}
				res := mustRun(t, cfg)
				if len(res.Storms) != 1 {
					t.Fatalf("storms %+v", res.Storms)
				}
				st := res.Storms[0]
				// By 3 s all 2000 sessions have arrived (1000/s): the node
				// killed holds about a tenth of them.
				if st.Killed != 1 || st.Sessions < 100 || st.Sessions > 400 {
					t.Errorf("storm %+v", st)
				}
				if st.Reattached != st.Sessions || st.Left != 0 || len(st.Times) != st.Sessions {
					t.Errorf("storm of %d: %d re-attached, %d left, %d times", st.Sessions, st.Reattached, st.Left, len(st.Times))
				}
				// A drop waits up to 250 ms, then fetches and dials (20 ms each).
				if st.P50 <= 0.04 || st.Max > 1 || st.P50 > st.P99 || st.P99 > st.Max {
					t.Errorf("re-attach times p50 %v p99 %v max %v", st.P50, st.P99, st.Max)
				}
				if res.Attached != 2000 || res.Unattached != 0 || res.End.Nodes != 9 {
					t.Errorf("attached %d, unattached %d, live nodes %d", res.Attached, res.Unattached, res.End.Nodes)
				}
				if total := res.End.Mean * float64(res.End.Nodes); int(total+0.5) != res.Attached {
					t.Errorf("live nodes hold %v users, want all %d sessions", total, res.Attached)
				}
				last := res.Series[len(res.Series)-1]
				if last.Nodes != 9 {
					t.Errorf("last sample %+v", last)
				}
			})
		}
	}
}

// TestDeadNodeInStaleDirectory: a stale directory still shows the dead
// node up, so some picks land on it, fail to dial (three times each, as
// failover retries twice) and go elsewhere.
func TestDeadNodeInStaleDirectory(t *testing.T) {
	cfg := Config{
		Policy: "random", Nodes: 4, Capacity: 10_000, Sessions: 4000, Rate: 1000,
		Lifetime: time.Hour, FixedLifetime: true, Staleness: 3 * time.Second,
		Events:   []NodeEvent{{At: time.Second, Kill: 1}},
		Duration: 6 * time.Second,
	}
	stale := mustRun(t, cfg)
	if stale.DialFailed == 0 || stale.DialFailed%3 != 0 || stale.Unattached != 0 || stale.Attached != 4000 {
		t.Errorf("dial failures %d (want a positive multiple of 3), unattached %d, attached %d", stale.DialFailed, stale.Unattached, stale.Attached)
	}
	// Noticed at once, only the dials under way and the picks from the
	// last snapshot (a few tens of ms of arrivals) fail.
	cfg.Staleness = 0
	cfg.Detect = time.Millisecond
	if fresh := mustRun(t, cfg); fresh.DialFailed > stale.DialFailed/10 || fresh.DialFailed > 3*50 {
		t.Errorf("fresh directory, dead node noticed at once: %d dial failures (stale: %d)", fresh.DialFailed, stale.DialFailed)
	}
}

// TestScaleOut: four loaded nodes, four empty ones join, sessions keep
// arriving and nobody leaves. The default policy fills the new nodes; p2c
// only in part (a new node is in the sampled pair half the time), random
// not at all.
func TestScaleOut(t *testing.T) {
	got := map[string]float64{}
	for _, policy := range []string{"default", "p2c", "random"} {
		cfg := Config{
			Policy: policy, Nodes: 4, Capacity: 10_000, Sessions: 8000, Rate: 1000,
			Lifetime: time.Hour, FixedLifetime: true,
			Events:   []NodeEvent{{At: 4 * time.Second, Join: 4}},
			Duration: 10 * time.Second,
		}
		res := mustRun(t, cfg)
		got[policy] = res.End.MaxMean
		t.Logf("%-8s end %+v worst %.3f", policy, res.End, res.Worst)
	}
	// Ideal: 4000 on the old nodes (1000 each), then 4000 over eight, all
	// to the new ones: 1000 each, max/mean 1. Random gives the old nodes
	// 1500 and the new 500: max/mean 1.5.
	if !(got["default"] < 1.05 && got["default"] < got["p2c"] && got["p2c"] < got["random"] && got["random"] > 1.4) {
		t.Errorf("max/mean at the end: %v", got)
	}
}

// TestStaleHerding: with a stale directory, least-users sends everyone to
// the same nodes, which fill and refuse; the default policy falls back to
// p2c and does not.
func TestStaleHerding(t *testing.T) {
	cfg := Config{
		Nodes: 10, Capacity: 300, Sessions: 2500, Rate: 1000, Lifetime: time.Minute,
		Staleness: time.Second, Events: []NodeEvent{}, Duration: 3 * time.Second,
	}
	cfg.Policy = "least-users"
	lu := mustRun(t, cfg)
	cfg.Policy = "default"
	def := mustRun(t, cfg)
	if lu.Refused == 0 || def.Refused > lu.Refused/10 || lu.Worst <= def.Worst || lu.Peak != 300 {
		t.Errorf("least-users refused %d, worst %.2f, peak %d; default refused %d, worst %.2f",
			lu.Refused, lu.Worst, lu.Peak, def.Refused, def.Worst)
	}
	if lu.Attached+lu.Left+lu.Unattached != lu.Arrived {
		t.Errorf("accounting %+v", lu)
	}
}

// TestFullCluster: more sessions than room. The refused keep trying (the
// failover machine backs off) and are counted unattached at the end; no
// node goes over capacity.
func TestFullCluster(t *testing.T) {
	for _, policy := range Policies() {
		cfg := Config{
			Policy: policy, Nodes: 3, Capacity: 100, Sessions: 500, Rate: 1000,
			Lifetime: time.Hour, FixedLifetime: true, Events: []NodeEvent{}, Duration: 3 * time.Second,
		}
		res := mustRun(t, cfg)
		if res.Attached != 300 || res.Unattached != 200 || res.Peak != 100 || res.NoCandidate == 0 {
			t.Errorf("%s: attached %d, unattached %d, peak %d, no candidate %d", policy, res.Attached, res.Unattached, res.Peak, res.NoCandidate)
		}
	}
}

func TestStorm(t *testing.T) {
	cfg := Config{
		Policy: "default", Nodes: 10, Capacity: 1000, Sessions: -1, Storm: 5000, StormAt: time.Second,
		Lifetime: time.Hour, FixedLifetime: true, Events: []NodeEvent{}, Duration: 2 * time.Second,
	}
	res := mustRun(t, cfg)
	// All 5000 pick from the same directory, fresh and showing empty
	// nodes: the default policy takes any node within one user of the
	// least load, so it spreads them at random, about 500 each.
	if res.Arrived != 5000 || res.Attached != 5000 || res.End.MaxMean > 1.3 {
		t.Errorf("storm: %+v", res.End)
	}
	if res.Series[0].Max != 0 || res.Series[len(res.Series)-1].Mean != 500 {
		t.Errorf("series %+v", res.Series)
	}
}

// TestViewSize: a thinned directory changes nothing for random but makes
// picks cheaper; least-users then takes the least of a sample.
func TestViewSize(t *testing.T) {
	cfg := small()
	cfg.Policy = "p2c"
	full := mustRun(t, cfg)
	cfg.ViewSize = 5
	thin := mustRun(t, cfg)
	if thin.Arrived != full.Arrived || thin.End.MaxMean > 1.3 {
		t.Errorf("thin p2c: %+v", thin.End)
	}
	cfg.Policy = pick.DNSOnly
	// Only the picks from a held directory find no node: it came on the
	// connection lost, so no node answered it (and the client asks the
	// common address).
	if res := mustRun(t, cfg); res.Attached == 0 || res.NoCandidate != res.HeldPicks {
		t.Errorf("dns-only with a thin directory must still find the answering node: %+v", res)
	}
}

func TestConfig(t *testing.T) {
	got, err := Config{}.validate()
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Duration = 101 * time.Second
	want.Warmup = want.Duration / 5
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Config{} validated (-got +want):\n%s", diff)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown policy", Config{Policy: "fastest"}, `unknown policy "fastest"`},
		{"negative nodes", Config{Nodes: -1}, "at least one node"},
		{"negative rate", Config{Rate: -1}, "bad arrival rate"},
		{"negative storm", Config{Storm: -1}, "negative storm"},
		{"negative event", Config{Events: []NodeEvent{{At: time.Second, Kill: -1}}}, "bad node event"},
		{"tiny tick", Config{Tick: time.Nanosecond}, "below a microsecond"},
		{"negative view", Config{ViewSize: -1}, "negative view size"},
		{"bad failover", Config{Failover: failoverBad()}, "RetryBase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, small()); err != context.Canceled {
		t.Errorf("Run with a cancelled context: %v", err)
	}
}

func TestQueueOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	var q queue
	var want []event
	for i := range 2000 {
		e := event{at: int64(r.IntN(50)), s: int32(i)}
		q.push(e)
		e.seq = uint64(i)
		want = append(want, e)
	}
	var got []event
	for q.len() > 0 {
		got = append(got, q.pop())
	}
	// Sorted by time, ties first in, first out.
	for i := 1; i < len(got); i++ {
		if got[i].before(&got[i-1]) {
			t.Fatalf("pop %d: %+v after %+v", i, got[i], got[i-1])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("popped %d of %d", len(got), len(want))
	}
}

// TestThinned checks the directories ViewSize draws: the right size,
// distinct nodes, the answering node always in, every node drawn about
// equally often.
func TestThinned(t *testing.T) {
	cfg, err := Config{Nodes: 10, ViewSize: 1, Events: []NodeEvent{}}.validate()
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRun(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.snapshot(0)
	r.sync(&r.stale)
	v := &r.stale
	for _, k := range []int{1, 3, 5, 6, 9} {
		for _, self := range []int32{-1, 7} {
			r.cfg.ViewSize = k
			counts := map[string]int{}
			const draws = 20_000
			for range draws {
				got := r.thinned(v, 10, self)
				seen := map[string]bool{}
				for _, n := range got {
					if seen[n.ID] {
						t.Fatalf("k=%d: %s twice", k, n.ID)
					}
					seen[n.ID] = true
					counts[n.ID]++
				}
				if len(got) != k || (self >= 0 && !seen[r.ids[self]]) {
					t.Fatalf("k=%d self=%d: %d nodes, self in: %v", k, self, len(got), seen[r.ids[7]])
				}
			}
			for id, c := range counts {
				want := float64(draws*k) / 10
				if self >= 0 {
					if id == r.ids[self] {
						want = draws
					} else {
						want = float64(draws*(k-1)) / 9
					}
				}
				if d := float64(c) - want; d > 0.05*draws || d < -0.05*draws {
					t.Errorf("k=%d self=%d: %s drawn %d times, want about %.0f", k, self, id, c, want)
				}
			}
		}
	}
	if got := r.thinned(v, 4, -1); len(got) != 4 {
		t.Errorf("ViewSize 9 of 4 candidates: %d nodes, want all 4", len(got))
	}
}

// TestSampledViews: clients sent the views a node draws for a hello
// (their group first, weighted by spare capacity). With fresh
// directories the default policy herds over the whole directory and does
// not over views (within a tenth of p2c over the whole); stale, it picks
// exactly as p2c over the same views (without held directories: a held
// one is the node's own, as fresh as when the session attached, whatever
// the common address's staleness). Runs stay deterministic.
func TestSampledViews(t *testing.T) {
	base := Config{
		Nodes: 20, Capacity: 1000, Sessions: 3000, Rate: 1000, Lifetime: 20 * time.Second,
		Events: []NodeEvent{{At: 1500 * time.Millisecond, Kill: 1}}, Duration: 3500 * time.Millisecond,
	}
	run := func(policy string, staleness time.Duration, views bool) Result {
		cfg := base
		cfg.Policy, cfg.Staleness = policy, staleness
		if views {
			cfg.ViewSize, cfg.SampledViews = 5, true
		}
		return mustRun(t, cfg)
	}
	whole, viewed, p2c := run("default", 0, false), run("default", 0, true), run("p2c", 0, false)
	if diff := cmp.Diff(viewed, run("default", 0, true)); diff != "" {
		t.Fatalf("same config, different results (-first +second):\n%s", diff)
	}
	if viewed.Attached+viewed.Left+viewed.Unattached != viewed.Arrived || viewed.Unattached != 0 {
		t.Errorf("accounting %+v", viewed)
	}
	if viewed.Worst >= whole.Worst || viewed.Worst > 1.1*p2c.Worst {
		t.Errorf("fresh: default over views worst max/mean %.3f, over the whole directory %.3f, p2c over the whole %.3f", viewed.Worst, whole.Worst, p2c.Worst)
	}
	base.NoPushes = true
	for _, staleness := range []time.Duration{time.Second} {
		def, p := run("default", staleness, true), run("p2c", staleness, true)
		if def.Worst != p.Worst || def.End != p.End {
			t.Errorf("staleness %v: default over views %.3f (end %.3f), p2c over views %.3f (end %.3f)", staleness, def.Worst, def.End.MaxMean, p.Worst, p.End.MaxMean)
		}
	}
}

// TestHeldDirectory: the sessions of a dead node pick from the directory
// its node pushed them, kept current by the pushes of changes, and ask
// the common address only when it has nothing left; without pushes
// (NoPushes) every one of them asks.
func TestHeldDirectory(t *testing.T) {
	// Two nodes fill, a third joins at 2 s, the first two die at 3 s:
	// only the push of the join tells their sessions where to go.
	joined := Config{
		Policy: "random", Nodes: 2, Capacity: 5000, Sessions: 1000, Rate: 1000,
		Lifetime: time.Hour, FixedLifetime: true,
		Events:   []NodeEvent{{At: 2 * time.Second, Join: 1}, {At: 3 * time.Second, Kill: 2}},
		Duration: 5 * time.Second,
	}
	// Three nodes; the first dies at 1 s and is marked down (pushed at
	// 2.005 s); the second dies at 3 s: its sessions know the first is
	// down and never dial it.
	down := Config{
		Policy: "random", Nodes: 3, Capacity: 5000, Sessions: 1500, Rate: 1000,
		Lifetime: time.Hour, FixedLifetime: true,
		Events:   []NodeEvent{{At: time.Second, Kill: 1}, {At: 3 * time.Second, Kill: 1}},
		Duration: 5 * time.Second,
	}
	tests := []struct {
		name    string
		cfg     Config
		storm   int  // the storm looked at
		fetched bool // its sessions ask the common address
		failed  int  // some of its dials fail: 1, none: 0, either: -1
	}{
		// Dying together, the two nodes are not marked down yet: the
		// held directory lists the other dead one, and some dial it.
		{"join pushed", joined, 0, false, 1},
		{"join not held without pushes", with(joined, func(c *Config) { c.NoPushes = true }), 0, true, 1},
		// A view of one node holds only its own node: full, so the push
		// of the join adds nothing (as the Go client applies it).
		{"join not added to a full view", with(joined, func(c *Config) { c.ViewSize = 1 }), 0, true, -1},
		{"down pushed", down, 1, false, 0},
		// Fetched, the directory shows the first node down too.
		{"down without pushes", with(down, func(c *Config) { c.NoPushes = true }), 1, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustRun(t, tt.cfg)
			st := res.Storms[tt.storm]
			t.Logf("storm %+v; held picks %d, picks %d", st, res.HeldPicks, res.Picks)
			if st.Sessions < 300 || st.Reattached != st.Sessions || res.Unattached != 0 {
				t.Fatalf("storm of %d, %d re-attached, %d unattached", st.Sessions, st.Reattached, res.Unattached)
			}
			if fetched := st.Fetched == st.Sessions; fetched != tt.fetched || (!fetched && st.Fetched != 0) {
				t.Errorf("%d of the %d sessions fetched a directory; want all: %v", st.Fetched, st.Sessions, tt.fetched)
			}
			if some := st.Failed > 0; tt.failed >= 0 && some != (tt.failed == 1) {
				t.Errorf("%d failed attaches; want some: %v", st.Failed, tt.failed == 1)
			}
			if held := !tt.cfg.NoPushes; res.HeldDirectory != held || (res.HeldPicks >= st.Sessions) != held {
				t.Errorf("held directory %v, %d held picks for a storm of %d", res.HeldDirectory, res.HeldPicks, st.Sessions)
			}
		})
	}
}

func with(c Config, change func(*Config)) Config {
	c.Events = slices.Clone(c.Events)
	change(&c)
	return c
}

// TestHeldFaster: picking from the held directory saves the fetch, so
// the storm re-attaches sooner; the picks still spread.
func TestHeldFaster(t *testing.T) {
	cfg := Config{
		Policy: "default", Nodes: 10, Capacity: 1000, Sessions: 2000, Rate: 1000,
		Lifetime: time.Hour, FixedLifetime: true,
		Events:   []NodeEvent{{At: 3 * time.Second, Kill: 1}},
		Duration: 5 * time.Second,
	}
	held := mustRun(t, cfg)
	cfg.NoPushes = true
	fetch := mustRun(t, cfg)
	h, f := held.Storms[0], fetch.Storms[0]
	// The same sessions drop, after the same waits; one RTT (20 ms) less.
	if h.Sessions != f.Sessions || h.P50 >= f.P50 || h.Max >= f.Max {
		t.Errorf("held: %d sessions, p50 %v, max %v; fetching: %d, p50 %v, max %v", h.Sessions, h.P50, h.Max, f.Sessions, f.P50, f.Max)
	}
	if held.End.MaxMean > 1.1 {
		t.Errorf("held: end %+v", held.End)
	}
}

// TestPushBytes: a push of one change is a small fraction of a view, at
// any size; a whole directory is cut to one line.
func TestPushBytes(t *testing.T) {
	for _, nodes := range []int{100, 1000, 10_000} {
		delta, view, err := PushBytes(nodes, 1, 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		join, whole, err := PushBytes(nodes, 0, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d nodes: a death %d, a join %d, a view of 64 %d, whole %d bytes", nodes, delta, join, view, whole)
		if delta > 400 || join > 400 || delta*20 > view || view > 16<<10 || whole-1 > wire.MaxLine || whole < view {
			t.Errorf("%d nodes: a death %d, a join %d bytes; a view %d, whole %d", nodes, delta, join, view, whole)
		}
		if nodes >= 1000 && whole < wire.MaxLine-1000 {
			t.Errorf("%d nodes: a whole directory of %d bytes is not cut at the line", nodes, whole)
		}
	}
	ten, _, err := PushBytes(1000, 10, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	one, _, _ := PushBytes(1000, 1, 0, 64)
	if ten < 9*one/2 || ten > 10*one {
		t.Errorf("ten changes %d bytes, one %d", ten, one)
	}
}

// TestPushesCounted: small's death (marked down at 3 s) and joins (at
// 3 s) make one push of three changes to every attached session, far
// smaller than whole views; past DeltaMax changes a push is whole views.
func TestPushesCounted(t *testing.T) {
	res := mustRun(t, small())
	p := res.Pushes
	if p.Count != 1 || p.Whole != 0 || p.Sessions < 1000 || p.Sessions > 4000 || p.Bytes*3 > p.ViewBytes {
		t.Errorf("pushes %+v", p)
	}
	delta, view, err := PushBytes(22, 1, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Bytes != int64(p.Sessions*delta) || p.ViewBytes != int64(p.Sessions*view) {
		t.Errorf("pushes %+v: want %d sessions of %d bytes (views %d)", p, p.Sessions, delta, view)
	}
	cfg := small()
	cfg.Events = []NodeEvent{{At: 3 * time.Second, Join: DeltaMax + 1}}
	if p := mustRun(t, cfg).Pushes; p.Count != 1 || p.Whole != 1 || p.Bytes != p.ViewBytes {
		t.Errorf("%d joins at once: pushes %+v", DeltaMax+1, p)
	}
}
