package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/chart"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/wire"
)

// The faults of the rtt-fault scenario (Config.Fault).
const (
	// FaultKill is kill -9 of a node that does not lead the first room's
	// stream.
	FaultKill = "kill"
	// FaultKillLeader is kill -9 of the node leading the first room's
	// stream in JetStream.
	FaultKillLeader = "kill-leader"
	// FaultStop is SIGSTOP of a node that does not lead the first room's
	// stream, and SIGCONT after Config.Pause.
	FaultStop = "stop"
	// FaultStopLeader is SIGSTOP of the node leading the first room's
	// stream, and SIGCONT after Config.Pause.
	FaultStopLeader = "stop-leader"
)

// Faults lists the faults rtt-fault knows, the default first.
func Faults() []string {
	return []string{FaultKillLeader, FaultKill, FaultStop, FaultStopLeader, FaultBus}
}

// RTTFaultReport is the rtt-fault scenario: Rooms rooms of RoomSize
// typists (member j of room r attached to node (r+j) mod nodes), each
// typing a script of its own at Rate characters a second, one chunk a
// character; a third of the way into the typing one node is hurt (Fault).
// Afterwards every typist's text must be in its room exactly once, and no
// member may have been shown a chunk twice.
//
// With Devices 2 each typist types from two sessions at once, the second
// on node (r+j+1) mod nodes, each its own device with a script of its
// own: the user's chunks cross and the room moves some of them
// (docs/rooms.md, "Two devices, one seq"). An ack then names the seq a
// chunk was sent with, not always the one it is stored under, so
// MissingAcked is not counted; instead every member must end up with
// each of the user's seqs from 1 to the number of characters both
// devices typed (Unsettled), and the user's text in the room must be the
// two scripts interleaved, each in its order, under exactly that many
// seqs (TextWrong).
type RTTFaultReport struct {
	Scenario string  `json:"scenario"`
	Fault    string  `json:"fault"`
	Nodes    int     `json:"nodes"`
	Rooms    int     `json:"rooms"`
	RoomSize int     `json:"room_size"`
	Typists  int     `json:"typists"`
	Rate     float64 `json:"chars_per_second"`
	// Devices is how many sessions each typist types from at once.
	Devices int `json:"devices_per_typist,omitempty"`
	// Seed made the scripts (and names the run's rooms).
	Seed uint64 `json:"seed"`
	// Hurt is the node killed or stopped; LedRoom says whether it led the
	// first room's stream (Leader names that room's stream leader when
	// the fault came).
	Hurt     string  `json:"hurt"`
	Leader   string  `json:"first_room_stream_leader"`
	PauseMS  float64 `json:"pause_ms,omitempty"`
	FaultAtS float64 `json:"fault_at_s"`
	// Typed counts the chunks typed (by every device); Acked those the node acknowledged
	// explicitly (an ack message; chunks the client learned were stored
	// from a room state instead are not counted).
	Typed int `json:"typed"`
	Acked int `json:"acked"`
	// MissingAcked counts acked chunks that some member of the room never
	// got, neither delivered nor in a room state; Missing lists the first
	// ones as "room user seq (members missing it)".
	MissingAcked int      `json:"missing_acked"`
	Missing      []string `json:"missing,omitempty"`
	// Duplicates counts deliveries a member was shown twice: a chunk
	// delivered again, or delivered after a room state that held it.
	// DuplicateList names the first ones.
	Duplicates    int      `json:"duplicates"`
	DuplicateList []string `json:"duplicate_list,omitempty"`
	// TextWrong counts typists whose text, read from the room state by a
	// member who joins after the typing, is not exactly what they typed;
	// TextDiffs shows the first differences.
	TextWrong int      `json:"text_wrong"`
	TextDiffs []string `json:"text_diffs,omitempty"`
	// HistoryErrors says which nodes could not give a late joiner a
	// room's state (a room read on another node after all is not counted
	// in TextWrong).
	HistoryErrors []string `json:"history_errors,omitempty"`
	// Unsettled counts members who, at the deadline, lacked a chunk of
	// another typist (neither delivered since their last room state nor
	// in it), and typists with text still unacked;
	// UnsettledList shows the first ones.
	Unsettled     int      `json:"unsettled"`
	UnsettledList []string `json:"unsettled_list,omitempty"`
	// Resent counts chunks the sessions sent again after a room state
	// (after a reattach, or after a rejoin to resynchronise).
	Resent int `json:"resent"`
	// Dropped counts sessions that lost their connection after the fault;
	// Reattach times their reattachments from the fault.
	Dropped  int         `json:"dropped"`
	Reattach Percentiles `json:"reattach_ms"`
	// DroppedElsewhere names the first sessions that dropped from a node
	// the fault did not hurt, and why: none is expected.
	DroppedElsewhere []string `json:"dropped_elsewhere,omitempty"`
	// DroppedSilentElsewhere counts those that dropped because their
	// client heard nothing from the node for its silence limit
	// (client.ErrNodeSilent): on a machine too loaded to run a node's
	// heartbeats in time, not a fault of the node.
	DroppedSilentElsewhere int `json:"dropped_silent_elsewhere"`
	Pending                int `json:"pending"`
	// HealMS is the time from the fault until every typist had a chunk
	// typed after the fault acknowledged (-1: some never did).
	HealMS float64 `json:"heal_ms"`
	// Churn is presence seen by members on nodes that were not hurt
	// after the fault, for typists who never left their room.
	Churn Churn `json:"presence_churn"`
	// Errors counts the error codes the sessions received; FirstErrors
	// holds the first messages.
	Errors      map[string]int `json:"errors,omitempty"`
	FirstErrors []string       `json:"first_errors,omitempty"`
	reattach    []float64
}

// Churn counts presence events for users who never left.
type Churn struct {
	// HurtLeaves and HurtJoins are about typists on the hurt node (who
	// dropped with it when it was killed); HealthyLeaves and HealthyJoins
	// about typists on the other nodes, who never dropped at all.
	HurtLeaves    int `json:"hurt_node_users_leaves"`
	HurtJoins     int `json:"hurt_node_users_joins"`
	HealthyLeaves int `json:"healthy_node_users_leaves"`
	HealthyJoins  int `json:"healthy_node_users_joins"`
	// DroppedLeaves and DroppedJoins are about typists on the other nodes
	// whose own session dropped after the fault (a client that gave up
	// on a slow node, or was asked to move): that leave is their own.
	// They are not in HealthyLeaves and HealthyJoins.
	DroppedLeaves int `json:"dropped_users_leaves"`
	DroppedJoins  int `json:"dropped_users_joins"`
	// First lists the first events: who saw what about whom, when.
	// HealthyFirst lists the first about typists on the other nodes
	// whose sessions never dropped.
	First        []string `json:"first,omitempty"`
	HealthyFirst []string `json:"healthy_first,omitempty"`
}

// typist is one member of an rtt-fault room: it types its script and
// records what its session saw.
type typist struct {
	s      *client.Session
	room   string
	user   string
	node   string
	script string
	dev    int  // which of its user's devices it is (Config.Devices)
	shared bool // its user types from other devices too
	joined chan struct{}

	mu           sync.Mutex
	typed        uint64               // the last seq typed
	chars        int                  // characters typed
	seqAtFault   uint64               // typed when the fault came
	acks         map[uint64]time.Time // first ack of each seq
	delivered    map[string]map[uint64]int
	highest      map[string]uint64 // sender -> highest seq in delivered
	covered      map[string]uint64 // sender -> highest seq a room state held
	dupes        []string
	numberErr    string
	droppedAt    time.Time // after the fault
	droppedWhy   string    // the node it dropped from, and why
	droppedMute  bool      // it dropped because the node sent nothing for the client's silence limit
	back         time.Time
	resync       bool // a room state is due after a reattach or rejoin
	rejoining    bool
	resent       int
	sendErr      error
	dropsOverall int
	// keys, when not nil, times keystrokes (roll.go): when each chunk
	// of each typist of the run was typed, and its first delivery.
	keys *keystrokes
}

// lacks returns the first of seqs 1..last of sender from that t's member
// neither was delivered since its last room state nor got in one (0 if
// it has them all). A chunk shown live before a state that does not hold
// it is off the member's screen until its stored copy comes: it is
// lacking meanwhile, though it was delivered once. The caller holds t.mu.
func (t *typist) lacks(from string, last uint64) uint64 {
	d := t.delivered[from]
	for seq := t.covered[from] + 1; seq <= last; seq++ {
		if d[seq] == 0 {
			return seq
		}
	}
	return 0
}

// faultRun is one rtt-fault run in progress.
type faultRun struct {
	e       *env
	rep     *RTTFaultReport
	lc      *localcluster.Cluster
	typists []*typist
	byUser  map[string]*typist // room/user -> its first device
	// devices is how many sessions each typist types from (0: one).
	devices int

	mu        sync.Mutex
	faultAt   time.Time // zero until the fault
	hurt      string
	errCount  map[string]int
	firstErrs []string
	// over is set once the run is summarized: the leaves that come after
	// are the bench closing its own typists, not churn.
	over bool
	// seen is the presence members saw after the fault, sorted into Churn
	// when the run is summarized (presence).
	seen []presenceSeen
}

// presenceSeen is one presence event a member saw: who saw what about
// whom, and when.
type presenceSeen struct {
	by    *typist
	about *typist
	event string
	at    time.Duration // after the fault
}

// perTypist is how many sessions each typist types from.
func (r *faultRun) perTypist() int { return max(r.devices, 1) }

// lastSeqs returns, for each typist (room/user), the seq their room
// stores their last chunk under once everything is stored: the last seq
// its one session typed, or with several devices the characters they
// all typed.
func (r *faultRun) lastSeqs() map[string]uint64 {
	last := map[string]uint64{}
	for _, t := range r.typists {
		t.mu.Lock()
		if r.perTypist() > 1 {
			last[t.room+"/"+t.user] += uint64(t.chars)
		} else {
			last[t.room+"/"+t.user] = t.typed
		}
		t.mu.Unlock()
	}
	return last
}

func runRTTFault(ctx context.Context, e *env) (Report, error) {
	cfg := e.cfg
	fault := cfg.Fault
	if fault == "" {
		fault = FaultKillLeader
	}
	if !slices.Contains(Faults(), fault) {
		return nil, fmt.Errorf("bench: rtt-fault: fault %q: want one of %s", fault, strings.Join(Faults(), ", "))
	}
	pause := cfg.Pause
	if pause <= 0 {
		pause = 3 * time.Second
	}
	if cfg.Nodes < 3 {
		return nil, fmt.Errorf("bench: rtt-fault: %d nodes; hurting one needs 3 for a quorum", cfg.Nodes)
	}
	seed := rand.Uint64() % 1e9
	devices := max(cfg.Devices, 1)
	if devices > 2 {
		return nil, fmt.Errorf("bench: rtt-fault: %d devices a typist; 1 or 2", devices)
	}
	rep := &RTTFaultReport{Scenario: "rtt-fault", Fault: fault, Nodes: cfg.Nodes, Rooms: cfg.Rooms, RoomSize: cfg.RoomSize,
		Typists: cfg.Rooms * cfg.RoomSize, Rate: cfg.Rate, Seed: seed, Errors: map[string]int{}}
	if devices > 1 {
		rep.Devices = devices
	}
	if strings.HasPrefix(fault, "stop") || fault == FaultBus {
		rep.PauseMS = ms(pause)
	}
	var bus *extBus
	if fault == FaultBus {
		// The nodes on an external NATS, whose servers the fault kills.
		var err error
		if bus, err = e.startBus(ctx, busServers); err != nil {
			return nil, err
		}
		defer bus.stop()
		e.bus = bus.URL()
	}
	c, err := e.start(ctx, cfg.Nodes)
	e.bus = ""
	if err != nil {
		return nil, err
	}
	defer c.stop(ctx)
	lc := c.local
	r := &faultRun{e: e, rep: rep, lc: lc, byUser: map[string]*typist{}, errCount: map[string]int{}, devices: devices}
	defer func() {
		// A stopped node cannot end until it runs again.
		for i, n := range lc.Nodes {
			if n.Alive() {
				_ = lc.Resume(i)
			}
		}
	}()
	// Every node's address is the common address, so that any node may
	// die, the one answering DNS included.
	target := strings.Join(lc.Addrs(), ",")
	var wg sync.WaitGroup
	defer func() {
		for _, t := range r.typists {
			t.s.Close()
		}
		wg.Wait()
	}()
	if err := r.open(ctx, target, &wg, seed); err != nil {
		return nil, err
	}
	if err := r.awaitJoined(ctx); err != nil {
		return nil, err
	}

	// Type, and hurt a node a third of the way in.
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	faultIn := (cfg.Duration / 3).Round(time.Millisecond)
	rep.FaultAtS = faultIn.Seconds()
	e.logf("%d typists (%d devices each) in %d rooms of %d across %d nodes, %.0f chars/s for %v; %s after %v", rep.Typists, devices, cfg.Rooms, cfg.RoomSize,
		cfg.Nodes, cfg.Rate, cfg.Duration, fault, faultIn)
	var typing sync.WaitGroup
	for _, t := range r.typists {
		typing.Go(func() { t.typeScript(ctx, interval) })
	}
	faultErr := make(chan error, 1)
	go func() {
		if bus != nil {
			faultErr <- r.hurtBus(ctx, bus, faultIn, pause)
			return
		}
		faultErr <- r.hurtNode(ctx, fault, faultIn, pause)
	}()
	typing.Wait()
	if err := <-faultErr; err != nil {
		return nil, err
	}
	e.logf("typing done; waiting for every chunk to be acked and seen")
	r.settle(ctx, target)
	if err := r.readHistory(ctx, target); err != nil {
		return nil, err
	}
	r.summarize()
	return rep, nil
}

// homeFirst picks the node named id while it is available and not
// excluded, else what fallback picks: a session that starts on its home
// node and fails over like any client.
func homeFirst(id string, fallback pick.Policy) pick.Policy {
	return pick.PolicyFunc(func(nodes []directory.Node, req pick.Request) (pick.Result, error) {
		if req.Exclude == nil || !req.Exclude(id) {
			for _, n := range nodes {
				if n.ID == id && n.Available() {
					return pick.Result{Node: n, Reason: "bench: home node " + id}, nil
				}
			}
		}
		return fallback.Pick(nodes, req)
	})
}

// faultScript is what one typist types: n characters of words in lines
// of about lineLen, ending with a line end.
func faultScript(rng *rand.Rand, n, lineLen int) string {
	words := []string{"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "real", "time", "text", "types",
		"every", "key", "as", "it", "comes", "node", "dies", "and", "nothing", "is", "lost", "twice"}
	var b strings.Builder
	line := 0
	for b.Len() < n {
		w := words[rng.IntN(len(words))]
		if line > 0 {
			if line+1+len(w) > lineLen {
				b.WriteByte('\n')
				line = 0
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()[:n-1] + "\n"
}

// open attaches and joins every typist.
func (r *faultRun) open(ctx context.Context, target string, wg *sync.WaitGroup, seed uint64) error {
	cfg := r.e.cfg
	devices := r.perTypist()
	n := cfg.Rooms * cfg.RoomSize * devices
	chars := max(int(cfg.Rate*cfg.Duration.Seconds()+0.5), 2)
	// Keep a room's lines within the 100 a state carries.
	lineLen := max(40, chars*cfg.RoomSize*devices/80+1)
	var ids []string
	for _, nd := range r.lc.Nodes {
		ids = append(ids, nd.ID)
	}
	fallback := pick.Default(pick.DefaultRand())
	progress, end := r.e.counter("joined", n)
	defer end()
	next := make(chan int)
	var mu sync.Mutex
	var done int
	var errs []error
	var dialers sync.WaitGroup
	for range min(cfg.Concurrency, n) {
		dialers.Go(func() {
			for i := range next {
				ro, j, d := i/devices/cfg.RoomSize, i/devices%cfg.RoomSize, i%devices
				t := &typist{room: fmt.Sprintf("fault-%d-%d", seed, ro), user: fmt.Sprintf("r%dm%d", ro, j), dev: d, shared: devices > 1,
					node: ids[(ro+j+d)%len(ids)], joined: make(chan struct{}), acks: map[uint64]time.Time{},
					delivered: map[string]map[uint64]int{}, covered: map[string]uint64{}}
				t.script = faultScript(rand.New(rand.NewPCG(seed, uint64(i))), chars, lineLen)
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				s, err := client.Dial(dctx, target, client.WithUser(t.user), client.WithPolicy(homeFirst(t.node, fallback)),
					client.WithClientName("switchboard-bench/1"))
				cancel()
				if err == nil {
					err = s.Join(t.room)
				}
				mu.Lock()
				done++
				progress(done)
				if err != nil {
					errs = append(errs, err)
					mu.Unlock()
					if s != nil {
						s.Close()
					}
					continue
				}
				t.s = s
				r.typists = append(r.typists, t)
				if d == 0 {
					r.byUser[t.room+"/"+t.user] = t
				}
				mu.Unlock()
				wg.Go(func() { r.watch(t) })
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	dialers.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("bench: rtt-fault: %d of %d sessions could not attach and join: %w", len(errs), n, errors.Join(errs[:min(3, len(errs))]...))
	}
	return nil
}

// awaitJoined waits until every typist has its room's state; a fresh
// cluster elects its JetStream leaders first.
func (r *faultRun) awaitJoined(ctx context.Context) error {
	deadline := time.After(60 * time.Second)
	for _, t := range r.typists {
		select {
		case <-t.joined:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			return fmt.Errorf("bench: rtt-fault: not every typist got its room's state within 60 s (errors: %q)", r.firstErrs)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// watch records what t's session sees, and resynchronises the room (a
// join again, whose state makes the client resend what is unacked) after
// an error that says a chunk was not stored: the client package does not
// retry text on "unavailable" or "rate" by itself.
func (r *faultRun) watch(t *typist) {
	once := sync.OnceFunc(func() { close(t.joined) })
	for ev := range t.s.Events() {
		now := time.Now()
		switch ev.Kind {
		case client.Disconnected:
			if ev.Node.ID == "" {
				continue
			}
			r.mu.Lock()
			after := !r.faultAt.IsZero()
			r.mu.Unlock()
			t.mu.Lock()
			t.dropsOverall++
			if after && t.droppedAt.IsZero() {
				t.droppedAt = now
				t.droppedWhy = fmt.Sprintf("%s from %s: %v", t.user, ev.Node.ID, ev.Err)
				t.droppedMute = errors.Is(ev.Err, client.ErrNodeSilent)
			}
			t.mu.Unlock()
		case client.Reattached:
			t.mu.Lock()
			if !t.droppedAt.IsZero() && t.back.IsZero() {
				t.back = now
			}
			t.resync = true
			t.mu.Unlock()
		case client.Received:
			r.received(t, ev.Message, now, once)
		}
	}
}

func (r *faultRun) received(t *typist, m wire.Message, now time.Time, joined func()) {
	if m.Op == wire.OpError {
		r.mu.Lock()
		r.errCount[m.Code]++
		if len(r.firstErrs) < 5 {
			r.firstErrs = append(r.firstErrs, fmt.Sprintf("%s: %s: %s", t.user, m.Code, m.Message))
		}
		r.mu.Unlock()
		if m.Room == t.room && (m.Code == wire.CodeUnavailable || m.Code == wire.CodeRate) {
			r.rejoinLater(t)
		}
		return
	}
	if m.Room != t.room {
		return
	}
	switch m.Op {
	case wire.OpRoom:
		joined()
		if m.State == nil {
			return
		}
		t.mu.Lock()
		for from, seq := range m.State.Seqs {
			t.covered[from] = max(t.covered[from], seq)
		}
		// The state replaces what the member shows. Chunks it was shown
		// live that the state does not hold yet are off its screen now:
		// the one delivery of each that follows shows it once. (Only
		// the few above the state's seq are visited: a member gets a
		// state for every chunk of its own that the room moves.)
		if t.highest == nil {
			t.highest = map[string]uint64{}
		}
		for from, d := range t.delivered {
			held := m.State.Seqs[from]
			for seq := held + 1; seq <= t.highest[from]; seq++ {
				delete(d, seq)
			}
			t.highest[from] = min(t.highest[from], held)
		}
		if t.resync {
			// What the client just sent again on this state (those
			// acked meanwhile aside).
			t.resync = false
			t.resent += len(t.s.UnackedText(t.room))
		}
		t.mu.Unlock()
	case wire.OpAck:
		t.mu.Lock()
		if _, ok := t.acks[m.Seq]; !ok {
			t.acks[m.Seq] = now
		}
		t.mu.Unlock()
	case wire.OpText:
		t.mu.Lock()
		d := t.delivered[m.From]
		if d == nil {
			d = map[uint64]int{}
			t.delivered[m.From] = d
		}
		d[m.Seq]++
		if t.highest == nil {
			t.highest = map[string]uint64{}
		}
		t.highest[m.From] = max(t.highest[m.From], m.Seq)
		if t.keys != nil && d[m.Seq] == 1 && m.Seq > t.covered[m.From] {
			t.keys.delivered(t.room, m.From, m.Seq, now)
		}
		switch {
		case d[m.Seq] > 1:
			t.dupes = append(t.dupes, fmt.Sprintf("%s %s %d delivered %d times to %s", t.room, m.From, m.Seq, d[m.Seq], t.user))
		case m.Seq <= t.covered[m.From]:
			t.dupes = append(t.dupes, fmt.Sprintf("%s %s %d delivered to %s after a room state that held it (seq %d)", t.room, m.From, m.Seq, t.user, t.covered[m.From]))
		}
		t.mu.Unlock()
	case wire.OpPresence:
		r.presence(t, m)
	}
}

// rejoinLater joins t's room again after a moment, once however many
// errors come meanwhile.
func (r *faultRun) rejoinLater(t *typist) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rejoining {
		return
	}
	t.rejoining = true
	time.AfterFunc(200*time.Millisecond, func() {
		t.mu.Lock()
		t.rejoining = false
		t.resync = true
		t.mu.Unlock()
		_ = t.s.Join(t.room)
	})
}

// presence notes churn: presence after the fault and before the run is
// summarized, seen on a node that was not hurt, about a typist (typists
// never leave until the bench closes them, after the summary).
func (r *faultRun) presence(t *typist, m wire.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.faultAt.IsZero() || r.over || t.node == r.hurt || (m.Event != "leave" && m.Event != "join") {
		return
	}
	if who := r.byUser[t.room+"/"+m.User]; who != nil {
		r.seen = append(r.seen, presenceSeen{by: t, about: who, event: m.Event, at: time.Since(r.faultAt)})
	}
}

// countChurn sorts the presence seen by the typist it is about: of the
// hurt node, of another node but whose session dropped at any time
// during the run, or of another node and never dropped (healthy:
// presence about them is never right). It sorts once the run is over,
// not as each event comes: on a loaded machine a member may see a
// typist's leave before the bench has handled that typist's own drop.
func (r *faultRun) countChurn(seen []presenceSeen, hurtNode string) {
	for _, s := range seen {
		r.countPresence(s, hurtNode)
	}
}

func (r *faultRun) countPresence(s presenceSeen, hurtNode string) {
	t, who := s.by, s.about
	hurt := who.node == hurtNode
	dropped := false
	if !hurt {
		who.mu.Lock()
		dropped = !who.droppedAt.IsZero()
		who.mu.Unlock()
	}
	c := &r.rep.Churn
	if len(c.First) < 10 || (!hurt && !dropped && len(c.HealthyFirst) < 10) {
		ev := fmt.Sprintf("%s on %s saw %s of %s (home %s) %.0f ms after the fault",
			t.user, t.node, s.event, who.user, who.node, ms(s.at))
		if len(c.First) < 10 {
			c.First = append(c.First, ev)
		}
		if !hurt && !dropped && len(c.HealthyFirst) < 10 {
			c.HealthyFirst = append(c.HealthyFirst, ev)
		}
	}
	leave := s.event == "leave"
	switch {
	case hurt && leave:
		c.HurtLeaves++
	case hurt:
		c.HurtJoins++
	case dropped && leave:
		c.DroppedLeaves++
	case dropped:
		c.DroppedJoins++
	case leave:
		c.HealthyLeaves++
	default:
		c.HealthyJoins++
	}
}

// typeScript types t's script, one character every interval from a
// random phase on.
func (t *typist) typeScript(ctx context.Context, interval time.Duration) {
	if sleepCtx(ctx, time.Duration(rand.Int64N(int64(interval)))) != nil {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for k := range len(t.script) {
		seq, err := t.s.SendText(t.room, t.script[k:k+1])
		t.mu.Lock()
		if err != nil {
			t.sendErr = err
			t.mu.Unlock()
			return
		}
		t.typed = seq
		t.chars++
		if t.keys != nil {
			t.keys.typed(t.room, t.user, seq)
		}
		// A device counts on above its user's other devices' chunks.
		if !t.shared && seq != uint64(k+1) && t.numberErr == "" {
			t.numberErr = fmt.Sprintf("%s in %s: character %d got seq %d", t.user, t.room, k+1, seq)
		}
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// hurtNode waits until the fault is due, then kills or stops a node.
func (r *faultRun) hurtNode(ctx context.Context, fault string, after, pause time.Duration) error {
	if err := sleepCtx(ctx, after); err != nil {
		return err
	}
	leader, err := r.streamLeader(ctx, r.typists[0].room)
	if err != nil {
		return err
	}
	victim := -1
	for i, n := range r.lc.Nodes {
		isLeader := n.ID == leader
		if isLeader == strings.HasSuffix(fault, "-leader") {
			victim = i
			break
		}
	}
	if victim < 0 {
		return fmt.Errorf("bench: rtt-fault: no node to hurt for %s (leader %s)", fault, leader)
	}
	id := r.lc.Nodes[victim].ID
	r.e.logf("%s: %s (the first room's stream leader is %s)", fault, id, leader)
	r.mu.Lock()
	r.hurt, r.rep.Hurt, r.rep.Leader = id, id, leader
	r.faultAt = time.Now()
	for _, t := range r.typists {
		t.mu.Lock()
		t.seqAtFault = t.typed
		t.mu.Unlock()
	}
	r.mu.Unlock()
	if strings.HasPrefix(fault, "kill") {
		return r.lc.Kill(victim)
	}
	if err := r.lc.Pause(victim); err != nil {
		return err
	}
	sleepErr := sleepCtx(ctx, pause) // the fault itself: the node stalls this long
	if err := r.lc.Resume(victim); err != nil {
		return err
	}
	r.e.logf("resumed %s after %v", id, pause)
	return sleepErr
}

// streamLeader asks a live node's NATS server which server leads the
// JetStream stream that holds room: the stream whose subjects hold a
// message for the room (the node stores rooms in streams named
// *_ROOMS_<k>, on subjects ending in the room's name).
func (r *faultRun) streamLeader(ctx context.Context, room string) (string, error) {
	// Patient: a saturated machine answers slowly.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	for _, n := range r.lc.Nodes {
		if !n.Alive() {
			continue
		}
		leader, err := streamLeaderAt(ctx, n, room)
		if err == nil {
			return leader, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("bench: rtt-fault: finding the stream leader of %s: %w", room, errors.Join(errs...))
}

func streamLeaderAt(ctx context.Context, n *localcluster.Node, room string) (string, error) {
	name, leader, err := n.RoomStream(ctx, room)
	if err != nil {
		return "", err
	}
	if leader == "" {
		return "", fmt.Errorf("stream %s has no leader now", name)
	}
	return leader, nil
}

// awaitSettled waits until every typist has nothing unacked and every
// member has seen every other typist's last chunk, or until timeout; the
// report counts what is still missing then.
func (r *faultRun) awaitSettled(ctx context.Context, timeout time.Duration) {
	err := awaitFor(ctx, timeout, func(context.Context) error {
		if n := len(r.unsettled()); n > 0 {
			return fmt.Errorf("%d typists or members not settled", n)
		}
		return nil
	})
	if err != nil {
		r.e.logf("not settled: %v", err)
	}
	list := r.unsettled()
	r.rep.Unsettled = len(list)
	r.rep.UnsettledList = list[:min(10, len(list))]
}

// unsettled describes the typists with text unacked and the members who
// lack a chunk of another typist (typist.lacks). It waits for what the
// summary checks: a member shown every chunk live has not settled while
// a room state took some off its screen and their stored copies are on
// the way.
func (r *faultRun) unsettled() []string {
	last := r.lastSeqs()
	var out []string
	for _, t := range r.typists {
		if un := t.s.UnackedText(t.room); len(un) > 0 {
			out = append(out, fmt.Sprintf("%s %s (on %s, attached %v): %d unacked from seq %d", t.room, t.user, t.s.Node().ID, t.s.Connected(), len(un), un[0].Seq))
		}
	}
	for _, t := range r.typists {
		t.mu.Lock()
		for _, u := range r.typists {
			if u.room != t.room || u.user == t.user {
				continue
			}
			if seq := t.lacks(u.user, last[u.room+"/"+u.user]); seq != 0 {
				out = append(out, fmt.Sprintf("%s %s (on %s) lacks seq %d of %s's %d", t.room, t.user, t.s.Node().ID, seq, u.user, last[u.room+"/"+u.user]))
				break
			}
		}
		t.mu.Unlock()
	}
	return out
}

// settle waits until the run has settled (awaitSettled) and every node
// holding members of a room has applied its typists' acked text
// (awaitApplied), then until the members have what those nodes sent them
// meanwhile.
func (r *faultRun) settle(ctx context.Context, target string) {
	r.awaitSettled(ctx, 60*time.Second)
	r.awaitApplied(ctx, target, 60*time.Second)
	r.awaitSettled(ctx, 60*time.Second)
}

// awaitApplied waits, up to timeout, until every node that holds members
// of a room gives a joiner a state holding every typist's acked text of
// it: the node's feed has applied that text, and so has delivered it to
// its members or sent them a state holding it. Members shown text live
// have it on screen before their node applies it; a node whose room
// consumer stalled after the fault applies it seconds later, may send
// them a state without the chunks it never stored (room/live.go), and
// delivers the stored copies after that. A summary before then would
// count the copies on their way as missing.
func (r *faultRun) awaitApplied(ctx context.Context, target string, timeout time.Duration) {
	acked := map[string]map[string]uint64{} // room -> typist -> highest seq acked
	holders := map[string]map[string]bool{} // room -> nodes of its members
	for _, t := range r.typists {
		t.mu.Lock()
		top := uint64(0)
		for seq := range t.acks {
			top = max(top, seq)
		}
		t.mu.Unlock()
		if acked[t.room] == nil {
			acked[t.room], holders[t.room] = map[string]uint64{}, map[string]bool{}
		}
		acked[t.room][t.user] = max(acked[t.room][t.user], top)
		if id := t.s.Node().ID; id != "" {
			holders[t.room][id] = true
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	n := 0
	for room, nodes := range holders {
		for node := range nodes {
			n++
			user := fmt.Sprintf("check%d", n)
			wg.Go(func() {
				for {
					st, err := lateState(ctx, target, user, node, room)
					behind := ""
					if err == nil {
						for u, seq := range acked[room] {
							if st.Seqs[u] < seq {
								behind = fmt.Sprintf("%s's seq %d of %d", u, st.Seqs[u], seq)
								break
							}
						}
					}
					if err == nil && behind == "" {
						return
					}
					if sleepCtx(ctx, 250*time.Millisecond) != nil {
						r.e.logf("%s on %s never held every acked chunk (%s, %v)", room, node, behind, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

// readHistory joins every room as a fresh member on a node that was not
// hurt and compares each typist's text in the room's state with what the
// typist typed.
func (r *faultRun) readHistory(ctx context.Context, target string) error {
	var homes []string
	for _, n := range r.lc.Nodes {
		if n.Alive() && n.ID != r.hurt {
			homes = append(homes, n.ID)
		}
	}
	rooms := map[string][]*typist{}
	for _, t := range r.typists {
		rooms[t.room] = append(rooms[t.room], t)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range rooms {
			if !yield(k) {
				return
			}
		}
	})
	// Read every room at once: a room that does not answer should not
	// hold up the others.
	states := make([]*wire.RoomState, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, room := range names {
		wg.Go(func() {
			// On the first node that was not hurt; if that node cannot
			// load the room, on the next, so that the report tells a
			// node's stuck room from lost text.
			var failed []error
			for k, home := range homes {
				states[i], errs[i] = lateState(ctx, target, fmt.Sprintf("late%d-%d", i, k), home, room)
				if errs[i] == nil {
					break
				}
				failed = append(failed, fmt.Errorf("on %s: %w", home, errs[i]))
			}
			if len(failed) > 0 {
				r.mu.Lock()
				r.rep.HistoryErrors = append(r.rep.HistoryErrors, errors.Join(failed...).Error())
				r.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	last := r.lastSeqs()
	for i, room := range names {
		st, err := states[i], errs[i]
		if err != nil {
			// The room's history could not be read: none of its text is
			// shown as typed.
			r.e.logf("%v", err)
			r.rep.TextWrong += len(rooms[room]) / r.perTypist()
			if len(r.rep.TextDiffs) < 5 {
				r.rep.TextDiffs = append(r.rep.TextDiffs, err.Error())
			}
			continue
		}
		typed := map[string][]string{} // user -> what each device typed
		for _, t := range rooms[room] {
			t.mu.Lock()
			want := t.script[:t.chars]
			if !t.shared {
				want = t.script[:t.typed]
			}
			t.mu.Unlock()
			typed[t.user] = append(typed[t.user], want)
		}
		for _, user := range slices.Sorted(maps.Keys(typed)) {
			parts, seq := typed[user], last[room+"/"+user]
			got := textOf(st, user)
			var diff string
			switch {
			case len(parts) == 1 && got != parts[0]:
				diff = firstDiff(parts[0], got)
			case len(parts) == 2 && !interleaves(got, parts[0], parts[1]):
				diff = fmt.Sprintf("%q is not %q and %q interleaved", clip(got, 48), clip(parts[0], 24), clip(parts[1], 24))
			case st.Seqs[user] != seq:
				diff = "the text as typed, under other seqs"
			default:
				continue
			}
			r.rep.TextWrong++
			if len(r.rep.TextDiffs) < 5 {
				r.rep.TextDiffs = append(r.rep.TextDiffs, fmt.Sprintf("%s %s: state seq %d of %d typed; %s",
					room, user, st.Seqs[user], seq, diff))
			}
		}
	}
	return nil
}

// interleaves reports whether s is a and b interleaved, each kept in its
// order: what a room holds of a user who typed a on one device and b on
// another.
func interleaves(s, a, b string) bool {
	if len(s) != len(a)+len(b) {
		return false
	}
	// ok[j] says whether s[:i+j] is a[:i] and b[:j] interleaved, for the
	// row i being filled (ok[:j]) and the row before (ok[j:]).
	ok := make([]bool, len(b)+1)
	for i := 0; i <= len(a); i++ {
		for j := 0; j <= len(b); j++ {
			if i == 0 && j == 0 {
				ok[0] = true
				continue
			}
			fromA := i > 0 && ok[j] && a[i-1] == s[i+j-1]
			fromB := j > 0 && ok[j-1] && b[j-1] == s[i+j-1]
			ok[j] = fromA || fromB
		}
	}
	return ok[len(b)]
}

// clip shortens s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// lateState attaches user to node home, joins room and returns its state.
func lateState(ctx context.Context, target, user, home, room string) (*wire.RoomState, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := client.Dial(dctx, target, client.WithUser(user), client.WithPolicy(homeFirst(home, pick.Default(nil))),
		client.WithClientName("switchboard-bench/1"))
	if err != nil {
		return nil, fmt.Errorf("bench: rtt-fault: reading %s: %w", room, err)
	}
	defer s.Close()
	if err := s.Join(room); err != nil {
		return nil, err
	}
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				return nil, fmt.Errorf("bench: rtt-fault: reading %s: session closed", room)
			}
			m := ev.Message
			switch {
			case ev.Kind != client.Received || m.Room != room:
			case m.Op == wire.OpRoom && m.State != nil:
				return m.State, nil
			case m.Op == wire.OpError && m.Code == wire.CodeUnavailable:
				retry.Reset(500 * time.Millisecond)
			case m.Op == wire.OpError:
				return nil, fmt.Errorf("bench: rtt-fault: reading %s: %s: %s", room, m.Code, m.Message)
			}
		case <-retry.C:
			if err := s.Join(room); err != nil {
				return nil, err
			}
		case <-dctx.Done():
			return nil, fmt.Errorf("bench: rtt-fault: reading %s: no room state: %w", room, dctx.Err())
		}
	}
}

// textOf is what user typed as a room state shows it: their completed
// lines, oldest first, each with its line end, then their live line.
func textOf(st *wire.RoomState, user string) string {
	var b strings.Builder
	for _, l := range st.Lines {
		if l.From == user {
			b.WriteString(l.Text)
			b.WriteByte('\n')
		}
	}
	b.WriteString(st.Live[user])
	return b.String()
}

// firstDiff describes where got first differs from want.
func firstDiff(want, got string) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	clip := func(s string) string {
		s = s[min(i, len(s)):]
		if len(s) > 24 {
			s = s[:24] + "..."
		}
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("first difference at byte %d of %d (got %d): want %s, got %s", i, len(want), len(got), clip(want), clip(got))
}

// summarize computes the report's figures from what the typists saw.
func (r *faultRun) summarize() {
	rep := r.rep
	r.mu.Lock()
	r.over = true // from now on the typists' sessions close
	faultAt := r.faultAt
	seen, hurtNode := r.seen, r.hurt
	counts := r.errCount
	rep.FirstErrors = slices.Clone(r.firstErrs)
	r.mu.Unlock()
	r.countChurn(seen, hurtNode)
	for k, v := range counts {
		rep.Errors[k] = v
	}
	type chunk struct {
		room, user string
		seq        uint64
	}
	missing := map[chunk]int{}
	var reattach []time.Duration
	heal := time.Duration(0)
	healed := true
	for _, t := range r.typists {
		t.mu.Lock()
		rep.Typed += t.chars
		rep.Acked += len(t.acks)
		rep.Resent += t.resent
		rep.Duplicates += len(t.dupes)
		for _, d := range t.dupes {
			if len(rep.DuplicateList) < 5 {
				rep.DuplicateList = append(rep.DuplicateList, d)
			}
		}
		if t.numberErr != "" && len(rep.FirstErrors) < 10 {
			rep.FirstErrors = append(rep.FirstErrors, t.numberErr)
		}
		if t.sendErr != nil && len(rep.FirstErrors) < 10 {
			rep.FirstErrors = append(rep.FirstErrors, fmt.Sprintf("%s: SendText: %v", t.user, t.sendErr))
		}
		if !t.droppedAt.IsZero() {
			rep.Dropped++
			if elsewhere := !strings.Contains(t.droppedWhy, " from "+rep.Hurt+":"); elsewhere {
				if len(rep.DroppedElsewhere) < 5 {
					rep.DroppedElsewhere = append(rep.DroppedElsewhere, t.droppedWhy)
				}
				if t.droppedMute {
					rep.DroppedSilentElsewhere++
				}
			}
			if t.back.IsZero() {
				rep.Pending++
			} else {
				reattach = append(reattach, t.back.Sub(faultAt))
			}
		}
		// Healed: the first chunk typed after the fault was acked.
		first := time.Time{}
		for seq, at := range t.acks {
			if seq > t.seqAtFault && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
		if t.typed > t.seqAtFault {
			if first.IsZero() {
				healed = false
			} else {
				heal = max(heal, first.Sub(faultAt))
			}
		}
		t.mu.Unlock()
	}
	// Every acked chunk of every other typist must have reached every
	// member: delivered, or held by a room state it received. With
	// devices an ack may name another seq than the one its chunk is
	// stored under: the settle and text checks stand for this one.
	for _, t := range r.typists {
		if r.perTypist() > 1 {
			break
		}
		t.mu.Lock()
		acked := slices.Collect(func(yield func(uint64) bool) {
			for seq := range t.acks {
				if !yield(seq) {
					return
				}
			}
		})
		t.mu.Unlock()
		for _, u := range r.typists {
			if u.room != t.room || u.user == t.user {
				continue
			}
			u.mu.Lock()
			for _, seq := range acked {
				if u.delivered[t.user][seq] == 0 && seq > u.covered[t.user] {
					missing[chunk{t.room, t.user, seq}]++
				}
			}
			u.mu.Unlock()
		}
	}
	rep.MissingAcked = len(missing)
	keys := slices.SortedFunc(func(yield func(chunk) bool) {
		for k := range missing {
			if !yield(k) {
				return
			}
		}
	}, func(a, b chunk) int {
		return strings.Compare(fmt.Sprintf("%s %s %09d", a.room, a.user, a.seq), fmt.Sprintf("%s %s %09d", b.room, b.user, b.seq))
	})
	for _, k := range keys[:min(5, len(keys))] {
		rep.Missing = append(rep.Missing, fmt.Sprintf("%s %s %d (%d members)", k.room, k.user, k.seq, missing[k]))
	}
	rep.Reattach = Summarize(reattach)
	rep.reattach = millis(reattach)
	rep.HealMS = ms(heal)
	if !healed {
		rep.HealMS = -1
	}
}

// Passed reports whether the run kept every promise: nothing acked
// missing, nothing shown twice, every typist's text in its room, every
// session back.
func (r *RTTFaultReport) Passed() bool {
	return r.MissingAcked == 0 && r.Duplicates == 0 && r.TextWrong == 0 && r.Unsettled == 0 && r.Pending == 0 && len(r.HistoryErrors) == 0
}

// WriteTable implements Report.
func (r *RTTFaultReport) WriteTable(w io.Writer) {
	what := "kill -9"
	switch {
	case strings.HasPrefix(r.Fault, "stop"):
		what = fmt.Sprintf("SIGSTOP for %.1f s of", r.PauseMS/1000)
	case r.Fault == FaultBus:
		what = fmt.Sprintf("kill -9 of every nats-server of the external bus for %.1f s, under", r.PauseMS/1000)
	}
	devices := ""
	if r.Devices > 1 {
		devices = fmt.Sprintf(", each from %d devices at once on two nodes", r.Devices)
	}
	fmt.Fprintf(w, "rtt-fault (%s): %d typists%s in %d rooms of %d across %d nodes, %.0f chars/s each; %s %s after %.1f s (the first room's stream leader was %s); seed %d\n\n",
		r.Fault, r.Typists, devices, r.Rooms, r.RoomSize, r.Nodes, r.Rate, what, r.Hurt, r.FaultAtS, r.Leader, r.Seed)
	heal := "never"
	if r.HealMS >= 0 {
		heal = f1(r.HealMS)
	}
	table(w, []string{"typed", "acked", "missing acked", "duplicates", "text wrong", "unsettled", "resent", "dropped", "reattach p50 ms", "p99 ms", "max ms", "pending", "heal ms"}, [][]string{{
		fmt.Sprint(r.Typed), fmt.Sprint(r.Acked), fmt.Sprint(r.MissingAcked), fmt.Sprint(r.Duplicates), fmt.Sprint(r.TextWrong),
		fmt.Sprint(r.Unsettled), fmt.Sprint(r.Resent), fmt.Sprint(r.Dropped), f1(r.Reattach.P50), f1(r.Reattach.P99), f1(r.Reattach.Max),
		fmt.Sprint(r.Pending), heal,
	}})
	c := r.Churn
	fmt.Fprintf(w, "\npresence churn on the nodes not hurt: about typists of %s %d leaves, %d joins; about typists of the other nodes %d leaves, %d joins",
		r.Hurt, c.HurtLeaves, c.HurtJoins, c.HealthyLeaves, c.HealthyJoins)
	if c.DroppedLeaves+c.DroppedJoins > 0 {
		fmt.Fprintf(w, " (and %d leaves, %d joins about those of them whose session dropped)", c.DroppedLeaves, c.DroppedJoins)
	}
	fmt.Fprintln(w)
	for _, s := range c.First {
		fmt.Fprintf(w, "churn: %s\n", s)
	}
	for _, s := range c.HealthyFirst {
		fmt.Fprintf(w, "churn about a typist of a node not hurt: %s\n", s)
	}
	for _, s := range r.UnsettledList {
		fmt.Fprintf(w, "unsettled: %s\n", s)
	}
	for _, s := range r.Missing {
		fmt.Fprintf(w, "missing: %s\n", s)
	}
	for _, s := range r.DuplicateList {
		fmt.Fprintf(w, "duplicate: %s\n", s)
	}
	for _, s := range r.HistoryErrors[:min(5, len(r.HistoryErrors))] {
		fmt.Fprintf(w, "history: %s\n", strings.ReplaceAll(s, "\n", "; "))
	}
	for _, s := range r.TextDiffs {
		fmt.Fprintf(w, "text: %s\n", s)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "errors: %s\n", perNode(r.Errors))
	}
	for _, s := range r.FirstErrors {
		fmt.Fprintf(w, "error: %s\n", s)
	}
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s: nothing acked lost, nothing shown twice, every typist's text present\n", verdict)
}

// Charts implements Report.
func (r *RTTFaultReport) Charts() []Chart {
	return []Chart{
		{"rtt-fault-reattach", chart.Line{Title: fmt.Sprintf("rtt-fault (%s): %d typists, time to reattach (CDF)", r.Fault, r.Typists),
			XLabel: "ms after the fault", YLabel: "fraction of dropped sessions",
			Series: []chart.Series{chart.CDF(fmt.Sprintf("%s (%d)", r.Hurt, r.Dropped), r.reattach)}}.Render},
	}
}
