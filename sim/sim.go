package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/stats"
)

// epoch is simulated time 0 as the failover machines see it.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const never = math.MaxInt64

// Session states.
const (
	stWaiting  uint8 = iota // not arrived yet
	stTrying                // arrived or dropped, not attached
	stAttached              // attached to node[s]
	stGone                  // lifetime over
)

// Run simulates cfg and returns what it measured. It is deterministic: the
// same Config gives the same Result. It reads no clock and starts no
// goroutine; it returns ctx's error if ctx is done before the end.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return Result{}, err
	}
	r, err := newRun(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	return r.run()
}

// flow is a session that is not attached after a failure or a drop: the
// real failover.Machine orders its attempts.
type flow struct {
	m       *failover.Machine
	touched []int32 // nodes this flow failed on or dropped from: maybe excluded
	fresh   bool    // the next pick uses the directory a refusal carried
	self    int32   // the node whose hello answer that directory is, or -1
	storm   int32   // index in Result.Storms, or -1
	since   int64   // when the flow started
	// held: the next pick uses the directory the session held when its
	// node (home) died at dropAt, which it had since it attached at from
	// (held.go); until it asks the common address.
	held         bool
	home         int32
	from, dropAt int64
	asked        bool // it has asked the common address
}

func (f *flow) touch(n int32) {
	if !slices.Contains(f.touched, n) {
		f.touched = append(f.touched, n)
	}
}

// view is the directory a client picks from, built from one snapshot: only
// the nodes a pick may return (see build), as the policy gets them.
type view struct {
	lag   int64 // how far behind now its snapshot is
	k     int   // snapshot number, -1 before the first build
	at    int64 // snapshot time
	nodes []directory.Node
	idx   []int32 // node number of nodes[i]
	pos   []int32 // position in nodes of each node number, -1 if absent
	// cum[i] is the spare capacity of nodes[:i+1], for drawing sampled
	// views fast (see weighted); filled by build when they are used.
	cum []int64
}

func (v *view) swap(a, b int) {
	v.nodes[a], v.nodes[b] = v.nodes[b], v.nodes[a]
	v.idx[a], v.idx[b] = v.idx[b], v.idx[a]
	v.pos[v.idx[a]], v.pos[v.idx[b]] = int32(a), int32(b)
}

type run struct {
	ctx    context.Context
	cfg    Config
	policy pick.Policy

	world  *rand.Rand // arrivals, lifetimes, groups: the same for every policy
	jitter *rand.Rand // the failover machines' waits
	front  *rand.Rand // which node the common address leads a client to
	thin   *rand.Rand // which nodes a directory of ViewSize lists
	now    int64      // simulated time, ns

	// Nodes, by number. Numbers 0..live-1 have joined.
	ids     []string
	index   map[string]int32
	zone    []uint16
	groups  []string // zone names
	joinAt  []int64
	deathAt []int64 // never while alive
	frozen  []int32 // users when it died: what directories show until it is down
	users   []int32
	members [][]int32 // sessions attached, in any order
	live    int
	victim  int32 // the next node number a Kill considers

	// Sessions, by number: Poisson arrivals first, then the storm.
	state    []uint8
	node     []int32 // node attached to
	slot     []int32 // index in members[node]
	group    []uint16
	flows    map[int32]*flow
	attached int

	q           queue
	arrivals    int   // Poisson arrivals so far
	nextArrival int64 // time of the next one

	// Snapshots of users per node, every Tick, in a ring long enough for
	// the stalest view.
	ring         [][]int32
	taken        int
	stale, fresh view
	swaps        []int32
	listed       []directory.Node // scratch for ViewSize
	drawn        []int32          // scratch for weighted
	mark         []uint32         // per node number: r.gen if drawn
	gen          uint32

	// The directories sessions hold (held.go), unless Config.NoPushes.
	attachAt  []int64   // per session: when it last attached
	hist      [][]int32 // every histEvery-th snapshot
	histEvery int
	heldV     view
	heldOut   []directory.Node
	heldPCG   *rand.PCG
	heldRand  *rand.Rand

	// The pushes of changes (push.go), with or without held directories.
	pushes   []push // in order of time
	nextPush int    // the first not delivered

	nextSample int64
	res        Result
}

func newRun(ctx context.Context, cfg Config) (*run, error) {
	r := &run{ctx: ctx, cfg: cfg, flows: make(map[int32]*flow)}
	p, err := pick.ByName(cfg.Policy, pick.NewRand(cfg.Seed))
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	r.policy = p
	r.world = rand.New(rand.NewPCG(cfg.Seed, 0x5157_0001))
	r.jitter = rand.New(rand.NewPCG(cfg.Seed, 0x5157_0002))
	r.front = rand.New(rand.NewPCG(cfg.Seed, 0x5157_0003))
	r.thin = rand.New(rand.NewPCG(cfg.Seed, 0x5157_0004))

	total := cfg.Nodes
	for _, e := range cfg.Events {
		total += e.Join
	}
	r.ids = make([]string, total)
	r.index = make(map[string]int32, total)
	r.zone = make([]uint16, total)
	r.joinAt = make([]int64, total)
	r.deathAt = make([]int64, total)
	r.frozen = make([]int32, total)
	r.users = make([]int32, total)
	r.members = make([][]int32, total)
	width := len(strconv.Itoa(total - 1))
	for i := range total {
		r.ids[i] = fmt.Sprintf("n%0*d", width, i)
		r.index[r.ids[i]] = int32(i)
		r.zone[i] = uint16(i % cfg.Zones)
		r.joinAt[i], r.deathAt[i] = never, never
	}
	for z := range cfg.Zones {
		r.groups = append(r.groups, fmt.Sprintf("r%d/%c", z/2, 'a'+z%2))
	}
	r.live = cfg.Nodes
	for i := range cfg.Nodes {
		r.joinAt[i] = 0
	}

	sessions := cfg.Sessions + cfg.Storm
	r.state = make([]uint8, sessions)
	r.node = make([]int32, sessions)
	r.slot = make([]int32, sessions)
	r.group = make([]uint16, sessions)

	tick := int64(cfg.Tick)
	staleLag := int64(cfg.Staleness + cfg.Propagation)
	ringSpan := staleLag
	if !cfg.NoPushes {
		ringSpan = max(ringSpan, int64(heldRing))
		r.newHeld(total, sessions)
	}
	r.ring = make([][]int32, ringSpan/tick+3)
	for i := range r.ring {
		r.ring[i] = make([]int32, total)
	}
	r.stale = view{lag: staleLag, k: -1, pos: make([]int32, total)}
	r.fresh = view{lag: int64(cfg.Propagation), k: -1, pos: make([]int32, total)}

	r.res = Result{
		Policy: cfg.Policy, Staleness: cfg.Staleness.Seconds(),
		Duration: cfg.Duration.Seconds(), Warmup: cfg.Warmup.Seconds(), HeldDirectory: !cfg.NoPushes,
	}
	r.nextArrival = never
	if cfg.Sessions > 0 {
		r.nextArrival = r.gap()
	}
	return r, nil
}

// gap draws the time to the next Poisson arrival.
func (r *run) gap() int64 {
	return int64(r.world.ExpFloat64() / r.cfg.Rate * 1e9)
}

// clock is now as a time.Time, for the failover machines.
func (r *run) clock() time.Time { return epoch.Add(time.Duration(r.now)) }

func (r *run) run() (Result, error) {
	cfg := r.cfg
	end, tick := int64(cfg.Duration), int64(cfg.Tick)
	r.snapshot(0)
	nextTick := tick
	nextEvent := 0
	storm := cfg.Storm > 0
	for steps := 0; ; steps++ {
		if steps&0xffff == 0 {
			if err := r.ctx.Err(); err != nil {
				return Result{}, err
			}
			if cfg.Progress != nil {
				cfg.Progress(time.Duration(r.now), cfg.Duration)
			}
		}
		// The next thing to happen; ties go to node events, then the storm,
		// then scheduled events, then arrivals.
		const (
			none = iota
			nodeEvent
			stormArrives
			scheduled
			arrival
		)
		t, what := int64(never), none
		if nextEvent < len(cfg.Events) {
			t, what = int64(cfg.Events[nextEvent].At), nodeEvent
		}
		if storm && int64(cfg.StormAt) < t {
			t, what = int64(cfg.StormAt), stormArrives
		}
		if r.q.len() > 0 && r.q.top().at < t {
			t, what = r.q.top().at, scheduled
		}
		if r.nextArrival < t {
			t, what = r.nextArrival, arrival
		}
		// Pushes reach the sessions attached when they go out.
		for r.nextPush < len(r.pushes) && r.pushes[r.nextPush].at <= min(t, end) {
			r.deliver(&r.pushes[r.nextPush])
			r.nextPush++
		}
		// Snapshot k holds every change at or before k*Tick.
		for nextTick < t && nextTick <= end {
			r.now = nextTick
			r.snapshot(nextTick)
			nextTick += tick
		}
		if t > end {
			break
		}
		r.now = t
		switch what {
		case nodeEvent:
			e := cfg.Events[nextEvent]
			nextEvent++
			if e.Kill > 0 {
				r.kill(e.Kill)
			}
			for range e.Join {
				r.joinAt[r.live] = r.now
				r.live++
			}
			if e.Join > 0 {
				r.addPush(r.now+int64(cfg.Propagation), 0, e.Join)
			}
		case stormArrives:
			storm = false
			for s := cfg.Sessions; s < cfg.Sessions+cfg.Storm; s++ {
				r.arrive(int32(s))
			}
		case scheduled:
			e := r.q.pop()
			switch e.kind {
			case evDepart:
				r.depart(e.s)
			case evAttach:
				r.dialled(e.s, e.node)
			case evFetched:
				r.fetched(e.s)
			case evPick:
				if fl := r.flows[e.s]; fl != nil && r.state[e.s] == stTrying {
					r.pickStep(e.s, fl)
				}
			}
		case arrival:
			s := int32(r.arrivals)
			r.arrivals++
			r.nextArrival = never
			if r.arrivals < cfg.Sessions {
				r.nextArrival = r.now + r.gap()
			}
			r.arrive(s)
		}
	}
	r.now = end
	r.finish()
	return r.res, nil
}

// arrive starts session s: it got a directory from the common address and
// picks.
func (r *run) arrive(s int32) {
	r.res.Arrived++
	life := int64(r.cfg.Lifetime)
	if !r.cfg.FixedLifetime {
		life = int64(r.world.ExpFloat64() * float64(r.cfg.Lifetime))
	}
	if len(r.groups) > 1 {
		r.group[s] = uint16(r.world.IntN(len(r.groups)))
	}
	r.q.push(event{at: r.now + life, s: s, kind: evDepart})
	r.state[s] = stTrying
	n, err := r.pick(s, nil, r.answerer())
	if err != nil {
		fl := r.newFlow(s, -1)
		now := r.clock()
		fl.m.Next(failover.Outcome{Kind: failover.Begin}, now)
		fl.m.Next(failover.Outcome{Kind: failover.Fetched}, now)
		r.res.NoCandidate++
		r.do(s, fl, fl.m.Next(failover.Outcome{Kind: failover.NoCandidate, Err: err}, now))
		return
	}
	r.dial(s, n, 0)
}

// dial sends session s to node n after a wait; the outcome comes one RTT
// later.
func (r *run) dial(s, n int32, after time.Duration) {
	r.q.push(event{at: r.now + int64(after) + int64(r.cfg.RTT), s: s, node: n, kind: evAttach})
}

// dialled is the outcome of a dial of node n by session s.
func (r *run) dialled(s, n int32) {
	if r.state[s] != stTrying {
		return
	}
	var o failover.Outcome
	switch {
	case r.deathAt[n] <= r.now:
		o = failover.Outcome{Kind: failover.DialFailed, Node: r.ids[n]}
		r.res.DialFailed++
	case int(r.users[n]) >= r.cfg.Capacity:
		o = failover.Outcome{Kind: failover.Refused, Node: r.ids[n], Status: directory.Full}
		r.res.Refused++
	default:
		r.attach(s, n)
		return
	}
	fl := r.flows[s]
	if fl == nil {
		// The first failure of a new session: bring a machine up to date
		// with the steps it took without one.
		fl = r.newFlow(s, -1)
		then := epoch.Add(time.Duration(r.now - int64(r.cfg.RTT)))
		fl.m.Next(failover.Outcome{Kind: failover.Begin}, then)
		fl.m.Next(failover.Outcome{Kind: failover.Fetched}, then)
		fl.m.Next(failover.Outcome{Kind: failover.Picked, Node: r.ids[n]}, then)
	}
	if fl.storm >= 0 {
		r.res.Storms[fl.storm].Failed++
	}
	fl.touch(n)
	if o.Kind == failover.Refused {
		// The refusal carries the refusing node's directory.
		fl.fresh, fl.self = true, n
	}
	r.do(s, fl, fl.m.Next(o, r.clock()))
}

// fetched: session s, in a flow, has a directory from the common address.
func (r *run) fetched(s int32) {
	fl := r.flows[s]
	if r.state[s] != stTrying || fl == nil {
		return
	}
	fl.fresh, fl.self, fl.held = false, r.answerer(), false
	if fl.storm >= 0 && !fl.asked {
		r.res.Storms[fl.storm].Fetched++
	}
	fl.asked = true
	r.do(s, fl, fl.m.Next(failover.Outcome{Kind: failover.Fetched}, r.clock()))
}

// do carries out the action the machine of session s asked for.
func (r *run) do(s int32, fl *flow, act failover.Action) {
	switch act.Step {
	case failover.Refresh:
		r.q.push(event{at: r.now + int64(act.After) + int64(r.cfg.RTT), s: s, kind: evFetched})
	case failover.Pick:
		if act.After > 0 {
			// After a drop, the pick from the held directory waits.
			r.q.push(event{at: r.now + int64(act.After), s: s, kind: evPick})
			return
		}
		r.pickStep(s, fl)
	case failover.Dial:
		r.dial(s, r.index[act.Node], 0)
	case failover.Retry:
		r.dial(s, r.index[act.Node], act.After)
	default:
		// Done comes only with Attached, which attach handles; Fail never
		// comes, as flows have no deadline. Either way: stop trying.
		delete(r.flows, s)
	}
}

// pickStep picks for session s in flow fl and carries on.
func (r *run) pickStep(s int32, fl *flow) {
	now := r.clock()
	n, err := r.pick(s, fl, fl.self)
	if err != nil {
		r.res.NoCandidate++
		r.do(s, fl, fl.m.Next(failover.Outcome{Kind: failover.NoCandidate, Err: err}, now))
		return
	}
	r.do(s, fl, fl.m.Next(failover.Outcome{Kind: failover.Picked, Node: r.ids[n]}, now))
}

func (r *run) newFlow(s int32, storm int32) *flow {
	m, err := failover.New(r.cfg.Failover, r.jitter)
	if err != nil {
		panic(err) // validate checked the config and jitter is not nil
	}
	fl := &flow{m: m, storm: storm, since: r.now, self: -1}
	r.flows[s] = fl
	return fl
}

// answerer returns the node a hello at the common address reaches: one
// of the nodes the address lists (the available nodes of the stale
// directory), in random order as the client tries them, skipping dead ones
// as their hello fails. It returns -1 if the tries find none alive.
func (r *run) answerer() int32 {
	v := &r.stale
	r.sync(v)
	for range 16 {
		if len(v.idx) == 0 {
			break
		}
		if n := v.idx[r.front.IntN(len(v.idx))]; r.deathAt[n] > r.now {
			return n
		}
	}
	return -1
}

// pick runs the policy for session s on the directory it holds: the one
// from the common address (whose hello answer is self), or the one a
// refusal carried.
func (r *run) pick(s int32, fl *flow, self int32) (int32, error) {
	if fl != nil && fl.held && !fl.fresh {
		return r.pickHeld(s, fl)
	}
	v := &r.stale
	if fl != nil && fl.fresh {
		v = &r.fresh
	}
	r.sync(v)
	req := pick.Request{
		// The view's snapshot is at least lag old; its entries say
		// Propagation (AgeMS), and Age says the rest.
		Age: time.Duration(r.now - v.at - int64(r.cfg.Propagation)),
	}
	if v.at == 0 && r.now < v.lag {
		// Before the first Staleness: the cluster was as at time 0.
		req.Age = time.Duration(v.lag - int64(r.cfg.Propagation))
	}
	if len(r.groups) > 1 {
		// With one zone every node is in the client's zone and Affinity
		// keeps them all either way; without a group it does not look.
		req.Group = r.groups[r.group[s]]
	}
	if self >= 0 {
		req.Self = r.ids[self]
	}
	// The nodes the failover machine excludes are moved past the end of
	// the candidates rather than left to the status filter (which would
	// copy the directory for every such pick, and ask Exclude about every
	// node): the policy sees exactly the candidates it would have seen,
	// in another order.
	m := len(v.nodes)
	swaps := r.swaps[:0]
	if fl != nil && len(fl.touched) > 0 {
		now := r.clock()
		for _, n := range fl.touched {
			p := v.pos[n]
			if p < 0 || int(p) >= m || !fl.m.Excluded(r.ids[n], now) {
				continue
			}
			v.swap(int(p), m-1)
			swaps = append(swaps, p)
			m--
		}
	}
	var candidates []directory.Node
	if r.cfg.SampledViews && r.cfg.ViewSize > 0 {
		candidates = r.sampled(v, m, r.groups[r.group[s]])
	} else {
		candidates = r.thinned(v, m, self)
	}
	res, err := r.policy.Pick(candidates, req)
	r.res.Picks++
	for i := len(swaps) - 1; i >= 0; i-- {
		v.swap(int(swaps[i]), m)
		m++
	}
	r.swaps = swaps
	if err != nil {
		return -1, err
	}
	return r.indexOf(res.Node.ID)
}

// indexOf is the index of the node the policy picked.
func (r *run) indexOf(id string) (int32, error) {
	n, ok := r.index[id]
	if !ok {
		return -1, fmt.Errorf("sim: policy %s picked unknown node %q", r.cfg.Policy, id)
	}
	return n, nil
}

// thinned returns the candidates v.nodes[:m], or with Config.ViewSize a
// directory of that many of them drawn at random, self first if present.
func (r *run) thinned(v *view, m int, self int32) []directory.Node {
	k := r.cfg.ViewSize
	if k <= 0 || k >= m {
		return v.nodes[:m]
	}
	if len(r.mark) < len(v.pos) {
		r.mark = make([]uint32, len(v.pos))
	}
	r.gen++
	if r.gen == 0 { // wrapped: clear the marks
		clear(r.mark)
		r.gen = 1
	}
	out := r.listed[:0]
	if self >= 0 {
		if p := v.pos[self]; p >= 0 && int(p) < m {
			out = append(out, v.nodes[p])
			r.mark[self] = r.gen
		}
	}
	// Draw positions until k distinct ones are in: with k well below m
	// few draws repeat; near m, rejection gets slow, so draw the ones to
	// leave out instead.
	if k <= m/2 {
		for len(out) < k {
			p := r.thin.IntN(m)
			if n := v.idx[p]; r.mark[n] != r.gen {
				r.mark[n] = r.gen
				out = append(out, v.nodes[p])
			}
		}
	} else {
		for left := m - k; left > 0; {
			if n := v.idx[r.thin.IntN(m)]; r.mark[n] != r.gen {
				r.mark[n] = r.gen
				left--
			}
		}
		// The self node was marked to keep it, not to leave it out.
		if len(out) == 1 {
			r.mark[self] = r.gen - 1
			out = out[:0]
		}
		for p := range m {
			if r.mark[v.idx[p]] != r.gen {
				out = append(out, v.nodes[p])
			}
		}
	}
	r.listed = out
	return out
}

// sampled returns the view a node draws for a client in group from the
// candidates v.nodes[:m] (directory.Sample, Max ViewSize), as the real
// node does for a hello; the candidates are the available nodes, so
// Sample draws them all by group and spare capacity.
func (r *run) sampled(v *view, m int, group string) []directory.Node {
	if r.cfg.ViewSize >= m {
		return v.nodes[:m]
	}
	if m == len(v.nodes) && len(r.groups) == 1 {
		return r.weighted(v)
	}
	idx := directory.Sample(v.nodes[:m], directory.ViewRequest{Max: r.cfg.ViewSize, Group: group}, r.thin)
	out := r.listed[:0]
	for _, i := range idx {
		out = append(out, v.nodes[i])
	}
	r.listed = out
	return out
}

// weighted returns what directory.Sample draws from all of v.nodes for a
// client in the one zone there is, in O(ViewSize log nodes) rather than
// O(nodes log nodes): ViewSize nodes drawn one after another without
// replacement, each with a probability proportional to its spare capacity
// among those not drawn yet, and listed in ID order. Sample's keys
// (-ln(u)/spare, the smallest first; Efraimidis and Spirakis) give
// exactly that distribution; with one zone every candidate is in the
// client's zone and no share is kept for elsewhere. A draw is a binary
// search of the prefix sums build keeps; a node drawn again is drawn
// anew, which leaves the others' probabilities those of a draw without
// it (TestWeightedIsSample checks it against Sample).
func (r *run) weighted(v *view) []directory.Node {
	k := r.cfg.ViewSize
	if len(r.mark) < len(v.pos) {
		r.mark = make([]uint32, len(v.pos))
	}
	r.gen++
	if r.gen == 0 {
		clear(r.mark)
		r.gen = 1
	}
	total := v.cum[len(v.cum)-1]
	picked := r.drawn[:0]
	for len(picked) < k {
		u := r.thin.Int64N(total)
		p, _ := slices.BinarySearch(v.cum, u+1) // the first prefix sum past u
		if n := v.idx[p]; r.mark[n] != r.gen {
			r.mark[n] = r.gen
			picked = append(picked, int32(p))
		}
	}
	slices.Sort(picked)
	out := r.listed[:0]
	for _, p := range picked {
		out = append(out, v.nodes[p])
	}
	r.drawn, r.listed = picked, out
	return out
}

// sync brings v to the latest snapshot at or before now - v.lag.
func (r *run) sync(v *view) {
	k := 0
	if t := r.now - v.lag; t > 0 {
		k = int(t / int64(r.cfg.Tick))
	}
	k = min(k, r.taken-1)
	if k != v.k {
		r.build(v, k)
	}
}

// build fills v from snapshot k. The directory lists the nodes that had
// joined by then and were not yet shown down; a node that died shows the
// users it had, in an entry growing older, until Detect after its death. The view holds only those
// that directory.Node.Available accepts (up, with room): that is what the
// status filter every named policy starts with (pick.Available) keeps, so
// it keeps all of them without copying, and the picks are those it would
// make from the whole directory.
func (r *run) build(v *view, k int) {
	at := int64(k) * int64(r.cfg.Tick)
	users := r.ring[k%len(r.ring)]
	v.k, v.at = k, at
	v.nodes, v.idx = v.nodes[:0], v.idx[:0]
	for i := range v.pos {
		v.pos[i] = -1
	}
	ageMS := r.cfg.Propagation.Milliseconds()
	keepCum := r.cfg.SampledViews && r.cfg.ViewSize > 0 && len(r.groups) == 1
	v.cum = v.cum[:0]
	var spare int64
	for i := range r.live {
		if r.joinAt[i] > at {
			continue
		}
		r.appendListed(v, i, int(users[i]), at, ageMS, keepCum, &spare)
	}
}

// appendListed adds node i to v as a directory taken at at shows it,
// with users and an entry ageMS old, unless it shows down by then or
// directory.Node.Available would not keep it (see build). With keepCum
// it adds the node's spare capacity to *spare and keeps the running sum
// in v.cum.
func (r *run) appendListed(v *view, i, users int, at, ageMS int64, keepCum bool, spare *int64) {
	n := directory.Node{
		ID: r.ids[i], Group: r.groups[r.zone[i]], Status: directory.Up,
		Users: users, Capacity: r.cfg.Capacity, AgeMS: ageMS,
	}
	if d := r.deathAt[i]; d <= at {
		if at-d >= int64(r.cfg.Detect) {
			return // down
		}
		// Silent since it died: its last update ages.
		n.Users = int(r.frozen[i])
		n.AgeMS += (at - d) / int64(time.Millisecond)
	}
	if !n.Available() {
		return
	}
	v.pos[i] = int32(len(v.nodes))
	v.nodes = append(v.nodes, n)
	v.idx = append(v.idx, int32(i))
	if keepCum {
		*spare += int64(n.Spare())
		v.cum = append(v.cum, *spare)
	}
}

func (r *run) attach(s, n int32) {
	r.state[s] = stAttached
	r.node[s] = n
	r.slot[s] = int32(len(r.members[n]))
	r.members[n] = append(r.members[n], s)
	r.users[n]++
	r.attached++
	if r.attachAt != nil {
		r.attachAt[s] = r.now
	}
	if fl := r.flows[s]; fl != nil {
		if fl.storm >= 0 {
			st := &r.res.Storms[fl.storm]
			st.Reattached++
			st.Times = append(st.Times, float64(r.now-fl.since)/1e9)
		}
		delete(r.flows, s)
	}
}

func (r *run) depart(s int32) {
	switch r.state[s] {
	case stAttached:
		n := r.node[s]
		list := r.members[n]
		i, last := r.slot[s], list[len(list)-1]
		list[i], r.slot[last] = last, i
		r.members[n] = list[:len(list)-1]
		r.users[n]--
		r.attached--
	case stTrying:
		if fl := r.flows[s]; fl != nil {
			if fl.storm >= 0 {
				r.res.Storms[fl.storm].Left++
			}
			delete(r.flows, s)
		}
	}
	r.state[s] = stGone
	r.res.Left++
}

// kill makes count live nodes die now, the lowest numbers first; their
// sessions drop and start re-attaching.
func (r *run) kill(count int) {
	storm := int32(len(r.res.Storms))
	r.res.Storms = append(r.res.Storms, Storm{At: float64(r.now) / 1e9})
	st := &r.res.Storms[storm]
	now := r.clock()
	for ; count > 0 && int(r.victim) < r.live; r.victim++ {
		n := r.victim
		if r.deathAt[n] != never {
			continue
		}
		count--
		st.Killed++
		r.deathAt[n], r.frozen[n] = r.now, r.users[n]
		st.Sessions += len(r.members[n])
		held := r.attachAt != nil
		for _, s := range r.members[n] {
			r.state[s] = stTrying
			r.attached--
			fl := r.newFlow(s, storm)
			fl.touch(n)
			if held {
				fl.held, fl.home, fl.from, fl.dropAt = true, n, r.attachAt[s], r.now
			}
			r.do(s, fl, fl.m.Next(failover.Outcome{Kind: failover.Dropped, Node: r.ids[n], Held: held}, now))
		}
		r.users[n], r.members[n] = 0, nil
	}
	if st.Killed > 0 {
		// Marked down Detect later; that reaches the sessions of the
		// other nodes Propagation after.
		r.addPush(r.now+int64(r.cfg.Detect+r.cfg.Propagation), st.Killed, 0)
	}
}

// stormWindow is how long after a death Storm.Worst looks, in seconds:
// the storm is over well within it.
const stormWindow = 2.0

// snapshot records the users per node at time at (snapshot number taken)
// and samples the loads.
func (r *run) snapshot(at int64) {
	copy(r.ring[r.taken%len(r.ring)], r.users[:r.live])
	r.keepHistory(r.taken)
	r.taken++
	lo, hi, sum, count := int32(math.MaxInt32), int32(0), 0, 0
	for i := range r.live {
		if r.deathAt[i] != never {
			continue
		}
		u := r.users[i]
		lo, hi = min(lo, u), max(hi, u)
		sum += int(u)
		count++
	}
	if count == 0 {
		lo = 0
	}
	r.res.Peak = max(r.res.Peak, int(hi))
	if at >= int64(r.cfg.Warmup) && sum > 0 {
		if mm := float64(hi) * float64(count) / float64(sum); mm > r.res.Worst {
			r.res.Worst, r.res.WorstAt = mm, float64(at)/1e9
		}
	}
	for i := range r.res.Storms {
		// The storm's own spread: where its sessions went.
		st := &r.res.Storms[i]
		if d := float64(at)/1e9 - st.At; d >= 0 && d <= stormWindow && sum > 0 {
			st.Worst = max(st.Worst, float64(hi)*float64(count)/float64(sum))
		}
	}
	if at >= r.nextSample {
		mean := 0.0
		if count > 0 {
			mean = float64(sum) / float64(count)
		}
		r.res.Series = append(r.res.Series, Point{T: float64(at) / 1e9, Nodes: count, Min: int(lo), Mean: mean, Max: int(hi)})
		r.nextSample += int64(r.cfg.Sample)
	}
}

// finish computes the figures at the end of the run.
func (r *run) finish() {
	var loads []int
	for i := range r.live {
		if r.deathAt[i] == never {
			loads = append(loads, int(r.users[i]))
		}
	}
	r.res.End = loadStats(loads)
	r.res.Attached = r.attached
	for _, st := range r.state {
		if st == stTrying {
			r.res.Unattached++
		}
	}
	r.res.Failed = r.res.Refused + r.res.DialFailed
	for i := range r.res.Storms {
		st := &r.res.Storms[i]
		slices.Sort(st.Times)
		st.P50, st.P99 = stats.Quantile(st.Times, 0.50), stats.Quantile(st.Times, 0.99)
		st.Max = stats.Quantile(st.Times, 1)
	}
}
