// Package bench opens many client sessions against a Switchboard service
// and measures where they land and how long they take: the engine behind
// `switchboard bench`.
//
// Open attaches Load.Clients sessions with Load.Concurrency dials in
// flight and returns a Run that keeps them attached (with failover) until
// Close. Snapshot reads where the sessions are now; the Run records every
// session's drops and reattachments for failover measurements.
//
// RunScenario runs one of the scenarios (storm, scaleout, failover,
// drain, latency, detect, memory, rtt): it starts a local cluster of
// `switchboard serve` child processes for every policy it compares (or
// uses Config.Service), hurts or grows it as the scenario says, and
// returns a Report that prints as tables, marshals to JSON and draws SVG
// charts. The policy "nats" runs the same scenario with nats.go clients
// against NATS servers embedded in this process, the baseline users know.
//
// The arithmetic (Within, reattach delays, Detect, KiBPer) is pure and
// tested on small inputs; percentiles, medians and max/mean come from
// package stats (stats.Quantile: q in [0, 1], nearest rank), shared with
// the simulator. The scenarios are tested small against real child
// processes.
//
// Caller's duties: RunScenario blocks until the scenario ends or ctx
// does; it kills nodes and raises the process's descriptor limit (memory),
// so run one scenario at a time in a process of its own, the way the CLI
// does.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/stats"
)

// Load describes the sessions to open.
type Load struct {
	// Target is the common address (any client.Dial target form).
	Target string
	// Resolver is the DNS server for dns: targets ("" = the system's).
	Resolver string
	// Clients is how many sessions to open.
	Clients int
	// Concurrency is how many dials run at once (default 50).
	Concurrency int
	// Policy names the pick policy (pick.ByName, or "dns-only").
	Policy string
	// Group is the clients' "region/zone".
	Group string
	// Groups, when set, spread the clients over groups instead: client
	// i is in Groups[i mod len(Groups)].
	Groups []string
	// PlainDNS makes the clients look a dns: target up as plain A/AAAA
	// records in random order, without SRV (client.WithPlainDNS): the
	// round robin of a plain DNS front, for the dns-only baseline.
	PlainDNS bool
	// UserPrefix starts every user name (default "u"); users are numbered.
	UserPrefix string
	// DialTimeout bounds one session's Dial (default 10 s).
	DialTimeout time.Duration
	// DropBase bounds the random wait of a session that dropped before it
	// asks the common address again (failover.Config.DropBase; default the
	// client's, client.DefaultDropBase).
	DropBase time.Duration
	// Ping, when set, is the sessions' heartbeat interval
	// (client.Heartbeat: ping after Ping of silence, the node gone after
	// 3*Ping); default the client's, client.DefaultHeartbeat.
	Ping time.Duration
	// NoTracker makes every session pick on its own, as independent
	// clients do, instead of sharing one pick.Tracker that counts the
	// picks of this process the directory does not show yet.
	NoTracker bool
	// Seed seeds the picks (0 = random).
	Seed uint64
	// TLS, when set, makes the sessions speak TLS (client.WithTLS); its
	// ServerName is the service name the nodes must prove. Each session is
	// a first-time client: client.WithTLS gives it a session cache of its
	// own, empty, so its first handshake is a full one.
	TLS *tls.Config
	// ReturningTLS, with TLS, makes every session a returning client: each
	// has a TLS session cache of its own (never shared with another
	// session, as 3,000 clients on 3,000 devices would have), and Open
	// fills it with one untimed visit of that same client (Dial, then
	// Close) before the timed dials start, so that each timed handshake can
	// resume the session of the earlier visit.
	ReturningTLS bool
	// Primed, when set with ReturningTLS, is called after the untimed
	// visits and before the timed dials (to wait until the nodes count
	// the visitors gone, say); an error ends Open with it.
	Primed func(ctx context.Context) error
	// Logger receives the sessions' logs (default: discard).
	Logger *slog.Logger
}

// Run is a set of open sessions.
type Run struct {
	load     Load
	sessions []*client.Session
	connect  []time.Duration
	failed   int
	errs     []error
	elapsed  time.Duration
	// handshakes counts the TLS handshakes of the timed dials, and
	// primeFailed the untimed visits that failed (ReturningTLS).
	handshakes  Handshakes
	primeFailed int
	// cpu is this process's CPU time over the timed dials (-1: unknown).
	cpu time.Duration

	mu      sync.Mutex
	drops   []time.Time // when each session dropped, by index (zero: never)
	reattch []time.Time // when each session reattached after its last drop
	wg      sync.WaitGroup
}

// Open attaches the sessions of load. progress, if not nil, is called
// with the number of sessions done so far (attached or failed), from the
// dialing goroutines.
func Open(ctx context.Context, load Load, progress func(done int)) (*Run, error) {
	if load.Clients <= 0 {
		return nil, errors.New("bench: clients must be positive")
	}
	if load.Concurrency <= 0 {
		load.Concurrency = 50
	}
	if load.UserPrefix == "" {
		load.UserPrefix = "u"
	}
	if load.DialTimeout <= 0 {
		load.DialTimeout = 10 * time.Second
	}
	if load.Logger == nil {
		load.Logger = slog.New(slog.DiscardHandler)
	}
	var r pick.Rand = pick.DefaultRand()
	if load.Seed != 0 {
		r = pick.NewRand(load.Seed)
	}
	policy, err := pick.ByName(load.Policy, r)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	retry := client.DefaultRetry()
	if load.DropBase > 0 {
		retry.DropBase = load.DropBase
	}

	run := &Run{
		load:     load,
		sessions: make([]*client.Session, load.Clients),
		connect:  make([]time.Duration, load.Clients),
		drops:    make([]time.Time, load.Clients),
		reattch:  make([]time.Time, load.Clients),
	}
	// options are session i's client options; tlsCfg is its TLS
	// configuration (nil: plain TCP).
	options := func(i int, tracker *pick.Tracker, tlsCfg *tls.Config) []client.Option {
		group := load.Group
		if len(load.Groups) > 0 {
			group = load.Groups[i%len(load.Groups)]
		}
		opts := []client.Option{
			client.WithUser(fmt.Sprintf("%s%d", load.UserPrefix, i)),
			client.WithPolicy(policy),
			client.WithRand(r),
			client.WithGroup(group),
			client.WithResolver(load.Resolver),
			client.WithRetry(retry),
			client.WithClientName("switchboard-bench/1"),
			client.WithLogger(load.Logger),
			client.WithEventBuffer(sessionEvents),
		}
		if tracker != nil {
			opts = append(opts, client.WithTracker(tracker))
		}
		if load.Ping > 0 {
			opts = append(opts, client.WithHeartbeat(client.Heartbeat{Interval: load.Ping, Timeout: 3 * load.Ping}))
		}
		if tlsCfg != nil {
			opts = append(opts, client.WithTLS(tlsCfg))
		}
		if load.PlainDNS {
			opts = append(opts, client.WithPlainDNS())
		}
		return opts
	}
	var timed handshakeCounter
	var timedTLS func(i int) *tls.Config
	if load.TLS != nil {
		shared := timed.config(load.TLS) // no cache: client.WithTLS gives each session its own
		timedTLS = func(int) *tls.Config { return shared }
	}
	if load.TLS != nil && load.ReturningTLS {
		caches := make([]tls.ClientSessionCache, load.Clients)
		for i := range caches {
			caches[i] = tls.NewLRUClientSessionCache(16)
		}
		withCache := func(cfg *tls.Config, i int) *tls.Config {
			cfg = cfg.Clone()
			cfg.ClientSessionCache = caches[i]
			return cfg
		}
		var prime handshakeCounter
		primeBase := prime.config(load.TLS)
		var primeTracker *pick.Tracker
		if !load.NoTracker {
			primeTracker = pick.NewTracker(0)
		}
		var mu sync.Mutex
		dialAll(ctx, load, func(i int) {
			dctx, cancel := context.WithTimeout(ctx, load.DialTimeout)
			defer cancel()
			s, err := client.Dial(dctx, load.Target, options(i, primeTracker, withCache(primeBase, i))...)
			if err != nil {
				mu.Lock()
				run.primeFailed++
				if len(run.errs) < 5 {
					run.errs = append(run.errs, fmt.Errorf("bench: the untimed earlier visit: %w", err))
				}
				mu.Unlock()
				return
			}
			s.Close()
		})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if load.Primed != nil {
			if err := load.Primed(ctx); err != nil {
				return nil, fmt.Errorf("bench: after the earlier visits: %w", err)
			}
		}
		timedBase := timedTLS(0)
		timedTLS = func(i int) *tls.Config { return withCache(timedBase, i) }
	}
	var tracker *pick.Tracker
	if !load.NoTracker {
		tracker = pick.NewTracker(0)
	}
	var done atomic.Int64
	var mu sync.Mutex
	cpu0 := processCPU()
	start := time.Now()
	dialAll(ctx, load, func(i int) {
		var tlsCfg *tls.Config
		if timedTLS != nil {
			tlsCfg = timedTLS(i)
		}
		dctx, cancel := context.WithTimeout(ctx, load.DialTimeout)
		t0 := time.Now()
		s, err := client.Dial(dctx, load.Target, options(i, tracker, tlsCfg)...)
		took := time.Since(t0)
		cancel()
		mu.Lock()
		if err != nil {
			run.failed++
			if len(run.errs) < 5 {
				run.errs = append(run.errs, err)
			}
		} else {
			run.sessions[i] = s
			run.connect[i] = took
		}
		mu.Unlock()
		if s != nil {
			run.wg.Go(func() { run.watch(i, s) })
		}
		if progress != nil {
			progress(int(done.Add(1)))
		}
	})
	run.elapsed = time.Since(start)
	run.cpu = -1
	if cpu0 >= 0 {
		run.cpu = processCPU() - cpu0
	}
	run.handshakes = timed.count()
	if ctx.Err() != nil {
		run.Close()
		return nil, ctx.Err()
	}
	return run, nil
}

// dialAll calls each for every session index of load, Concurrency at a
// time, and returns when all calls have (or ctx ended the feed).
func dialAll(ctx context.Context, load Load, each func(i int)) {
	next := make(chan int)
	var dialers sync.WaitGroup
	for range min(load.Concurrency, load.Clients) {
		dialers.Go(func() {
			for i := range next {
				each(i)
			}
		})
	}
feed:
	for i := range load.Clients {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	dialers.Wait()
}

// sessionEvents is the event buffer of each of a run's sessions. Run.watch
// reads every event as it comes, so a few slots are enough; the client's
// default of 256 (some 120 KB a session, scanned by the garbage collector)
// made a run of 10,000 sessions a process of gigabytes.
const sessionEvents = 8

// Handshakes counts TLS handshakes that succeeded, by kind: Full ones
// (certificate sent and verified, a new session) and Resumed ones (a
// session ticket from an earlier connection accepted: no certificate).
type Handshakes struct {
	Full    int `json:"full"`
	Resumed int `json:"resumed"`
}

// handshakeCounter counts the handshakes of the TLS configurations it
// makes.
type handshakeCounter struct{ full, resumed atomic.Int64 }

// config returns a clone of base that counts its handshakes in h. Go's
// TLS calls VerifyConnection for every connection, resumed ones included,
// with ConnectionState.DidResume set.
func (h *handshakeCounter) config(base *tls.Config) *tls.Config {
	cfg := base.Clone()
	prev := base.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if prev != nil {
			if err := prev(cs); err != nil {
				return err
			}
		}
		if cs.DidResume {
			h.resumed.Add(1)
		} else {
			h.full.Add(1)
		}
		return nil
	}
	return cfg
}

func (h *handshakeCounter) count() Handshakes {
	return Handshakes{Full: int(h.full.Load()), Resumed: int(h.resumed.Load())}
}

// watch records session i's drops and reattachments until it closes.
func (r *Run) watch(i int, s *client.Session) {
	for e := range s.Events() {
		switch e.Kind {
		case client.Disconnected:
			r.mu.Lock()
			if e.Node.ID != "" {
				r.drops[i] = time.Now()
				r.reattch[i] = time.Time{}
			}
			r.mu.Unlock()
		case client.Reattached:
			r.mu.Lock()
			r.reattch[i] = time.Now()
			r.mu.Unlock()
		}
	}
}

// Close closes every session.
func (r *Run) Close() {
	var wg sync.WaitGroup
	for _, s := range r.sessions {
		if s != nil {
			wg.Go(func() { s.Close() })
		}
	}
	wg.Wait()
	r.wg.Wait()
}

// Result is what a run measured, as printed by `switchboard bench`.
type Result struct {
	// Policy is the policy the sessions picked with.
	Policy string `json:"policy"`
	// PerNode counts sessions by node ID, including up nodes with none.
	PerNode map[string]int `json:"per_node"`
	// MaxMean is the most loaded node's sessions over the mean.
	MaxMean float64 `json:"max_mean"`
	// ConnectMS are percentiles of Dial latency, in milliseconds.
	ConnectMS Percentiles `json:"connect_ms"`
	// Failed counts sessions that could not attach.
	Failed int `json:"failed"`
	// Attached counts sessions attached now.
	Attached int `json:"attached"`
	// ElapsedMS is how long attaching all sessions took.
	ElapsedMS float64 `json:"elapsed_ms"`
	// Errors holds the first few errors.
	Errors []string `json:"errors,omitempty"`
}

// Percentiles summarise a latency distribution, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Snapshot reports where the sessions are now. Up nodes of the latest
// directory with no session count too, so that max/mean sees them.
func (r *Run) Snapshot() Result {
	res := Result{Policy: r.load.Policy, PerNode: map[string]int{}, Failed: r.failed, ElapsedMS: ms(r.elapsed)}
	var lat []time.Duration
	for i, s := range r.sessions {
		if s == nil {
			continue
		}
		lat = append(lat, r.connect[i])
		if !s.Connected() {
			continue
		}
		res.Attached++
		res.PerNode[s.Node().ID]++
	}
	if i := firstLive(r.sessions); i >= 0 {
		for _, n := range r.sessions[i].Directory().Nodes {
			if _, ok := res.PerNode[n.ID]; !ok && (n.Available() || n.Status == directory.Full) {
				res.PerNode[n.ID] = 0
			}
		}
	}
	res.MaxMean = stats.MaxMean(slices.Collect(maps.Values(res.PerNode)))
	res.ConnectMS = Summarize(lat)
	for _, err := range r.errs {
		res.Errors = append(res.Errors, err.Error())
	}
	return res
}

func firstLive(sessions []*client.Session) int {
	for i, s := range sessions {
		if s != nil && s.Connected() {
			return i
		}
	}
	return -1
}

// Reattach reports, for the sessions that dropped since `since`, how long
// each took to reattach (pending ones are counted in Pending).
type Reattach struct {
	Dropped int         `json:"dropped"`
	Pending int         `json:"pending"`
	MS      Percentiles `json:"ms"`
	// Within500ms and Within1s are the fractions of dropped sessions
	// reattached within those times.
	Within500ms float64 `json:"within_500ms"`
	Within1s    float64 `json:"within_1s"`
}

// ReattachDelays returns, for the sessions that dropped at or after
// killed, how long after killed each one reattached, and how many of them
// have not reattached yet.
func (r *Run) ReattachDelays(killed time.Time) (delays []time.Duration, pending int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return reattachDelays(killed, r.drops, r.reattch)
}

// DropSpan is how long after killed the first and the last session that
// dropped since then saw its drop; ok is false when none did.
func (r *Run) DropSpan(killed time.Time) (first, last time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.drops {
		if d.IsZero() || d.Before(killed) {
			continue
		}
		since := d.Sub(killed)
		if !ok || since < first {
			first = since
		}
		last = max(last, since)
		ok = true
	}
	return first, last, ok
}

// reattachDelays pairs drops[i] with reattached[i]: a session counts when
// it dropped at or after killed; it is pending when it has no reattachment
// after its drop.
func reattachDelays(killed time.Time, drops, reattached []time.Time) (delays []time.Duration, pending int) {
	for i, d := range drops {
		if d.IsZero() || d.Before(killed) {
			continue
		}
		if i >= len(reattached) || reattached[i].Before(d) {
			pending++
			continue
		}
		delays = append(delays, reattached[i].Sub(killed))
	}
	return delays, pending
}

// SummarizeReattach turns reattach delays and the count still pending
// into a Reattach: the pending sessions count as dropped and as not
// reattached within any bound.
func SummarizeReattach(delays []time.Duration, pending int) Reattach {
	res := Reattach{Dropped: len(delays) + pending, Pending: pending, MS: Summarize(delays)}
	res.Within500ms = Within(delays, res.Dropped, 500*time.Millisecond)
	res.Within1s = Within(delays, res.Dropped, time.Second)
	return res
}

// ConnectTimes returns how long each attached session's Dial took, in
// the order the sessions were opened.
func (r *Run) ConnectTimes() []time.Duration {
	var out []time.Duration
	for i, s := range r.sessions {
		if s != nil {
			out = append(out, r.connect[i])
		}
	}
	return out
}

// Handshakes counts the TLS handshakes of Open's timed dials (zero
// without TLS): with ReturningTLS, Full above 0 means some sessions did
// not resume their earlier visit's session.
func (r *Run) Handshakes() Handshakes { return r.handshakes }

// ClientCPU is the CPU time this process (the clients) used over Open's
// timed dials, or -1 when it cannot be read.
func (r *Run) ClientCPU() time.Duration { return r.cpu }

// PrimeFailed counts the untimed earlier visits (ReturningTLS) that
// failed; those sessions' timed dials had no session to resume.
func (r *Run) PrimeFailed() int { return r.primeFailed }

// Sessions returns the open sessions (nil where a dial failed).
func (r *Run) Sessions() []*client.Session { return r.sessions }

// Summarize returns the percentiles of lat in milliseconds, by
// stats.Quantile (nearest rank: each figure is one of the latencies).
func Summarize(lat []time.Duration) Percentiles {
	if len(lat) == 0 {
		return Percentiles{}
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	return Percentiles{
		P50: ms(stats.Quantile(sorted, 0.50)),
		P90: ms(stats.Quantile(sorted, 0.90)),
		P99: ms(stats.Quantile(sorted, 0.99)),
		Max: ms(stats.Quantile(sorted, 1)),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
