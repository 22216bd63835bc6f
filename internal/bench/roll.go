package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/node"
)

// RollReport is the roll scenario: a rolling upgrade under typists.
// Rooms rooms of RoomSize typists (member j of room r homed on node
// (r+j) mod nodes) type Rate characters a second each; meanwhile every
// node in turn is drained to empty within Within (POST
// /v1/drain?within=), stopped (SIGTERM), started again and waited for
// until every node lists it up. Afterwards every typist's text must be
// in its room exactly once, and no member may have seen a user leave.
type RollReport struct {
	Scenario string `json:"scenario"`
	// From is the executable the nodes ran before the roll, when it
	// upgraded them (Config.FromBinary); empty when they restarted on
	// the same one.
	From     string  `json:"from,omitempty"`
	Nodes    int     `json:"nodes"`
	Rooms    int     `json:"rooms"`
	RoomSize int     `json:"room_size"`
	Typists  int     `json:"typists"`
	Rate     float64 `json:"chars_per_second"`
	WithinMS float64 `json:"within_ms"`
	Seed     uint64  `json:"seed"`
	// Steps is one row per node rolled, in order.
	Steps []RollStep `json:"steps"`
	// RollS is the time from the first drain to the last node up again.
	RollS float64 `json:"roll_s"`
	// Keystroke is the time from a keystroke to its first delivery to
	// each other member of its room, over the keystrokes typed during the
	// roll; KeystrokeAll over the whole run. Samples counts deliveries.
	Keystroke    Percentiles `json:"keystroke_ms"`
	KeystrokeAll Percentiles `json:"keystroke_all_ms"`
	Samples      int         `json:"samples"`
	// Moves counts the sessions' moves; Drops the sessions that lost
	// their connection at some point (a move that fell back to a
	// failover, say).
	Moves int `json:"moves"`
	Drops int `json:"drops"`
	// PerNode is where the typists are at the end.
	PerNode map[string]int `json:"per_node_end"`
	Result  FaultCounts    `json:"result"`
	Targets []Target       `json:"targets"`
}

// RollStep is one node's turn in a roll (or the one drain of bench
// drain).
type RollStep struct {
	Node string `json:"node"`
	// Sessions is what it held when the drain started; Asked how many it
	// asked to move; Closed how many it closed at the deadline.
	Sessions int    `json:"sessions"`
	Asked    int    `json:"asked"`
	Closed   int    `json:"closed"`
	Reason   string `json:"reason"`
	// EmptyMS is the time from the POST until the node reported the
	// drain over; MovedPerS is Asked over that time.
	EmptyMS   float64 `json:"empty_ms"`
	MovedPerS float64 `json:"moved_per_s"`
	// StopMS is SIGTERM to exit; UpMS the restart until every node lists
	// it up, CaughtUpMS until the rooms' streams had every copy caught up
	// again (roll only).
	StopMS     float64 `json:"stop_ms,omitempty"`
	UpMS       float64 `json:"up_ms,omitempty"`
	CaughtUpMS float64 `json:"caught_up_ms,omitempty"`
}

// FaultCounts are the text checks of a typing run (see RTTFaultReport).
type FaultCounts struct {
	Typed         int            `json:"typed"`
	Acked         int            `json:"acked"`
	MissingAcked  int            `json:"missing_acked"`
	Duplicates    int            `json:"duplicates"`
	TextWrong     int            `json:"text_wrong"`
	Unsettled     int            `json:"unsettled"`
	Leaves        int            `json:"presence_leaves"`
	Joins         int            `json:"presence_joins"`
	Errors        map[string]int `json:"errors,omitempty"`
	Detail        []string       `json:"detail,omitempty"`
	HistoryErrors []string       `json:"history_errors,omitempty"`
}

// keystrokes times keystrokes from their typing to their first delivery
// to each member. Safe for concurrent use.
type keystrokes struct {
	mu    sync.Mutex
	at    map[keyID]time.Time
	typ   []time.Time // when each sample's keystroke was typed
	taken []time.Duration
}

type keyID struct {
	room, user string
	seq        uint64
}

func newKeystrokes() *keystrokes { return &keystrokes{at: map[keyID]time.Time{}} }

func (k *keystrokes) typed(room, user string, seq uint64) {
	now := time.Now()
	k.mu.Lock()
	k.at[keyID{room, user, seq}] = now
	k.mu.Unlock()
}

func (k *keystrokes) delivered(room, from string, seq uint64, now time.Time) {
	k.mu.Lock()
	if at, ok := k.at[keyID{room, from, seq}]; ok {
		k.typ = append(k.typ, at)
		k.taken = append(k.taken, now.Sub(at))
	}
	k.mu.Unlock()
}

// between summarises the keystrokes typed in [from, to) (all with zero
// times) and counts them.
func (k *keystrokes) between(from, to time.Time) (Percentiles, int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var sel []time.Duration
	for i, at := range k.typ {
		if (from.IsZero() || !at.Before(from)) && (to.IsZero() || at.Before(to)) {
			sel = append(sel, k.taken[i])
		}
	}
	return Summarize(sel), len(sel)
}

// typing is a faultRun of typists over a local cluster whose keystrokes
// are timed, typing until stop.
type typing struct {
	r      *faultRun
	keys   *keystrokes
	target string
	wg     sync.WaitGroup // the typists' watchers
	typing sync.WaitGroup
	cancel context.CancelFunc
}

// startTyping opens the typists of e.cfg (Rooms of RoomSize), waits until
// each has its room, and starts typing: scripts long enough for expect.
func startTyping(ctx context.Context, e *env, lc *localcluster.Cluster, expect time.Duration) (*typing, error) {
	cfg := e.cfg
	seed := rand.Uint64() % 1e9
	saved := e.cfg.Duration
	e.cfg.Duration = expect // the scripts' length
	defer func() { e.cfg.Duration = saved }()
	rep := &RTTFaultReport{Scenario: "typing", Nodes: len(lc.Nodes), Rooms: cfg.Rooms, RoomSize: cfg.RoomSize,
		Typists: cfg.Rooms * cfg.RoomSize, Rate: cfg.Rate, Seed: seed, Errors: map[string]int{}}
	tp := &typing{r: &faultRun{e: e, rep: rep, lc: lc, byUser: map[string]*typist{}, errCount: map[string]int{}},
		keys: newKeystrokes(), target: strings.Join(lc.Addrs(), ",")}
	if err := tp.r.open(ctx, tp.target, &tp.wg, seed); err != nil {
		tp.close()
		return nil, err
	}
	if err := tp.r.awaitJoined(ctx); err != nil {
		tp.close()
		return nil, err
	}
	for _, t := range tp.r.typists {
		t.mu.Lock()
		t.keys = tp.keys
		t.mu.Unlock()
	}
	tctx, cancel := context.WithCancel(ctx)
	tp.cancel = cancel
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	for _, t := range tp.r.typists {
		tp.typing.Go(func() { t.typeScript(tctx, interval) })
	}
	return tp, nil
}

// mark starts counting presence churn and drops from now on.
func (tp *typing) mark() {
	tp.r.mu.Lock()
	tp.r.faultAt = time.Now()
	tp.r.hurt = "" // every typist counts as on a node not hurt
	tp.r.mu.Unlock()
	for _, t := range tp.r.typists {
		t.mu.Lock()
		t.seqAtFault = t.typed
		t.mu.Unlock()
	}
}

// finish stops the typing, waits until everything is acked and seen,
// reads every room's history from a late joiner, and returns the checks.
func (tp *typing) finish(ctx context.Context) FaultCounts {
	tp.cancel()
	tp.typing.Wait()
	tp.r.settle(ctx, tp.target)
	if err := tp.r.readHistory(ctx, tp.target); err != nil {
		tp.r.rep.HistoryErrors = append(tp.r.rep.HistoryErrors, err.Error())
	}
	tp.r.summarize()
	rep := tp.r.rep
	tp.r.mu.Lock() // presence may still come
	churn := rep.Churn
	churn.First = slices.Clone(churn.First)
	tp.r.mu.Unlock()
	out := FaultCounts{Typed: rep.Typed, Acked: rep.Acked, MissingAcked: rep.MissingAcked, Duplicates: rep.Duplicates,
		TextWrong: rep.TextWrong, Unsettled: rep.Unsettled, Errors: rep.Errors, HistoryErrors: rep.HistoryErrors,
		Leaves: churn.HealthyLeaves + churn.HurtLeaves + churn.DroppedLeaves, Joins: churn.HealthyJoins + churn.HurtJoins + churn.DroppedJoins}
	for _, list := range [][]string{rep.Missing, rep.DuplicateList, rep.TextDiffs, rep.UnsettledList, churn.First, rep.FirstErrors} {
		out.Detail = append(out.Detail, list[:min(3, len(list))]...)
	}
	return out
}

// moves counts the typists' moves and the typists that dropped since mark.
func (tp *typing) moves() (moves, drops int) {
	for _, t := range tp.r.typists {
		moves += t.s.Moves()
		t.mu.Lock()
		if !t.droppedAt.IsZero() {
			drops++
		}
		t.mu.Unlock()
	}
	return moves, drops
}

// perNode counts the typists on each node.
func (tp *typing) perNode() map[string]int {
	out := map[string]int{}
	for _, t := range tp.r.typists {
		out[t.s.Node().ID]++
	}
	return out
}

func (tp *typing) close() {
	if tp.cancel != nil {
		tp.cancel()
		tp.typing.Wait()
	}
	for _, t := range tp.r.typists {
		t.s.Close()
	}
	tp.wg.Wait()
}

// drainNode drains node n to empty within, through its HTTP API, and
// waits until it reports the drain over.
func drainNode(ctx context.Context, hc *http.Client, n *localcluster.Node, within time.Duration) (RollStep, error) {
	step := RollStep{Node: n.ID}
	t0 := time.Now()
	st, err := drainCall(ctx, hc, http.MethodPost, "http://"+n.HTTP+"/v1/drain?within="+within.String())
	if err != nil {
		return step, err
	}
	step.Sessions = st.Total
	err = awaitFor(ctx, within+30*time.Second, func(ctx context.Context) error {
		if st, err = drainCall(ctx, hc, http.MethodGet, "http://"+n.HTTP+"/v1/drain"); err != nil {
			return err
		}
		if !st.Done {
			return fmt.Errorf("%s: %d of %d asked, %d left", n.ID, st.Asked, st.Total, st.Sessions)
		}
		return nil
	})
	if err != nil {
		return step, fmt.Errorf("bench: draining %s: %w", n.ID, err)
	}
	took := time.Since(t0)
	step.Asked, step.Closed, step.Reason = st.Asked, st.Closed, st.Reason
	step.EmptyMS = ms(took)
	if took > 0 {
		step.MovedPerS = float64(st.Asked) / took.Seconds()
	}
	return step, nil
}

func drainCall(ctx context.Context, hc *http.Client, method, url string) (node.DrainStatus, error) {
	var st node.DrainStatus
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return st, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return st, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("%s %s: %w", method, url, err)
	}
	return st, nil
}

// rollWithin is the drain window of roll and drain when Config.Within is
// zero.
const rollWithin = 10 * time.Second

// rollLead is how long roll's typists type before the first drain and
// after the last node's copies caught up: the roll falls on typing under
// way, and typing goes on over the restarted nodes. A var, not a
// constant, so that TestRoll can shorten it.
var rollLead = 3 * time.Second

func runRoll(ctx context.Context, e *env) (Report, error) {
	cfg := e.cfg
	if cfg.Nodes < 3 {
		return nil, fmt.Errorf("bench: roll: %d nodes; rolling one at a time needs 3 for the rooms' quorum", cfg.Nodes)
	}
	within := cmpDuration(cfg.Within, rollWithin)
	if cfg.FromBinary != "" {
		// The nodes start on the earlier release; the roll upgrades them
		// to cfg.Binary, this one.
		e.logf("upgrading from %s to %s", cfg.FromBinary, cfg.Binary)
		e.cfg.Binary = cfg.FromBinary
	}
	c, err := e.start(ctx, cfg.Nodes)
	e.cfg.Binary = cfg.Binary
	if err != nil {
		return nil, err
	}
	defer c.stop(ctx)
	lc := c.local
	// Long enough scripts for the roll: each node's drain, stop and
	// restart, and some typing before and after.
	expect := 10*time.Second + time.Duration(cfg.Nodes)*(within+15*time.Second)
	tp, err := startTyping(ctx, e, lc, expect)
	if err != nil {
		return nil, err
	}
	defer tp.close()
	rep := &RollReport{Scenario: "roll", From: cfg.FromBinary, Nodes: cfg.Nodes, Rooms: cfg.Rooms, RoomSize: cfg.RoomSize, Typists: len(tp.r.typists),
		Rate: cfg.Rate, WithinMS: ms(within), Seed: tp.r.rep.Seed}
	e.logf("%d typists in %d rooms of %d over %d nodes, %.0f chars/s; rolling every node, each drained within %v", rep.Typists, cfg.Rooms, cfg.RoomSize, cfg.Nodes, cfg.Rate, within)
	if err := sleepCtx(ctx, rollLead); err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	tp.mark()
	rollStart := time.Now()
	for i, n := range lc.Nodes {
		step, err := drainNode(ctx, hc, n, within)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := lc.Terminate(i); err != nil {
			return nil, err
		}
		step.StopMS = ms(time.Since(t0))
		t0 = time.Now()
		if err := lc.RestartWith(i, cfg.Binary); err != nil {
			return nil, err
		}
		if err := c.awaitStatus(ctx, n.ID, directory.Up); err != nil {
			return nil, fmt.Errorf("bench: roll: %s did not come back up: %w", n.ID, err)
		}
		step.UpMS = ms(time.Since(t0))
		// As deploy/roll.sh does: the next node stops only once the
		// restarted node's copies of the rooms' streams have caught up.
		if err := lc.WaitCaughtUp(ctx, 2*time.Minute); err != nil {
			return nil, fmt.Errorf("bench: roll: after %s's restart: %w", n.ID, err)
		}
		step.CaughtUpMS = ms(time.Since(t0))
		e.logf("%s: %d sessions, empty after %.1f s (%s, %d closed), stopped in %.0f ms, up again after %.1f s, copies caught up after %.1f s",
			n.ID, step.Sessions, step.EmptyMS/1000, step.Reason, step.Closed, step.StopMS, step.UpMS/1000, step.CaughtUpMS/1000)
		rep.Steps = append(rep.Steps, step)
	}
	rollEnd := time.Now()
	rep.RollS = rollEnd.Sub(rollStart).Seconds()
	if err := sleepCtx(ctx, rollLead); err != nil {
		return nil, err
	}
	rep.Moves, rep.Drops = tp.moves()
	rep.PerNode = tp.perNode()
	e.logf("roll done in %.1f s; typing stops, waiting for every chunk to be acked and seen", rep.RollS)
	rep.Result = tp.finish(ctx)
	rep.Keystroke, rep.Samples = tp.keys.between(rollStart, rollEnd)
	rep.KeystrokeAll, _ = tp.keys.between(time.Time{}, time.Time{})
	rep.Targets = typingTargets("roll", rep.Result, rep.Drops, rep.Keystroke)
	return rep, nil
}

// typingTargets are issue 13's promises for typists during a drain or a
// roll.
func typingTargets(what string, r FaultCounts, drops int, key Percentiles) []Target {
	errs := 0
	for _, n := range r.Errors {
		errs += n
	}
	return []Target{
		{What: what + ": acked chunks lost", Want: "0", Got: fmt.Sprint(r.MissingAcked), Met: r.MissingAcked == 0 && r.Unsettled == 0},
		{What: what + ": chunks shown twice", Want: "0", Got: fmt.Sprint(r.Duplicates), Met: r.Duplicates == 0},
		{What: what + ": typists whose text is wrong", Want: "0", Got: fmt.Sprint(r.TextWrong), Met: r.TextWrong == 0 && len(r.HistoryErrors) == 0},
		{What: what + ": errors shown to users, drops", Want: "0, 0", Got: fmt.Sprintf("%d, %d", errs, drops), Met: errs == 0 && drops == 0},
		{What: what + ": presence leaves and joins seen for users who moved", Want: "0", Got: fmt.Sprint(r.Leaves + r.Joins), Met: r.Leaves+r.Joins == 0},
		{What: what + ": keystroke p99 meanwhile", Want: "<= 100 ms", Got: f1(key.P99) + " ms", Met: key.P99 <= 100},
	}
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// WriteTable implements Report.
func (r *RollReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "roll: %d typists in %d rooms of %d over %d nodes, %.0f chars/s each; every node in turn drained within %.0f s, stopped (SIGTERM), restarted and waited for; seed %d\n\n",
		r.Typists, r.Rooms, r.RoomSize, r.Nodes, r.Rate, r.WithinMS/1000, r.Seed)
	if r.From != "" {
		fmt.Fprintf(w, "an upgrade: the nodes started on %s and each restarted on this binary\n\n", r.From)
	}
	writeSteps(w, r.Steps)
	fmt.Fprintf(w, "\nroll %.1f s; moves %d, drops %d; typists at the end %s\n", r.RollS, r.Moves, r.Drops, perNode(r.PerNode))
	fmt.Fprintf(w, "keystroke to screen during the roll (%d deliveries): p50 %s p90 %s p99 %s max %s ms; whole run p99 %s ms\n\n",
		r.Samples, f1(r.Keystroke.P50), f1(r.Keystroke.P90), f1(r.Keystroke.P99), f1(r.Keystroke.Max), f1(r.KeystrokeAll.P99))
	writeCounts(w, r.Result)
	writeTargets(w, r.Targets)
}

func writeSteps(w io.Writer, steps []RollStep) {
	var rows [][]string
	for _, s := range steps {
		rows = append(rows, []string{s.Node, fmt.Sprint(s.Sessions), fmt.Sprint(s.Asked), fmt.Sprint(s.Closed), s.Reason,
			f1(s.EmptyMS / 1000), f1(s.MovedPerS), f1(s.StopMS), f1(s.UpMS / 1000), f1(s.CaughtUpMS / 1000)})
	}
	table(w, []string{"node", "sessions", "asked to move", "closed at deadline", "ended", "empty after s", "moved/s", "stop ms", "up again after s", "caught up after s"}, rows)
}

func writeCounts(w io.Writer, c FaultCounts) {
	table(w, []string{"typed", "acked", "acked lost", "shown twice", "text wrong", "unsettled", "presence leaves", "joins", "errors"}, [][]string{{
		fmt.Sprint(c.Typed), fmt.Sprint(c.Acked), fmt.Sprint(c.MissingAcked), fmt.Sprint(c.Duplicates), fmt.Sprint(c.TextWrong),
		fmt.Sprint(c.Unsettled), fmt.Sprint(c.Leaves), fmt.Sprint(c.Joins), perNode(c.Errors)}})
	for _, d := range slices.Concat(c.Detail, c.HistoryErrors) {
		fmt.Fprintf(w, "detail: %s\n", strings.ReplaceAll(d, "\n", "; "))
	}
	fmt.Fprintln(w)
}

// Charts implements Report.
func (r *RollReport) Charts() []Chart { return nil }
