package room

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// Errors of the local-session calls; the node turns them into wire codes.
var (
	// ErrFull says a session's join was refused: the room had MaxUsers
	// users and the session's user was not one of them.
	ErrFull = errors.New("room: room is full")
	// ErrUserSessions says a session's join was refused: its user was in
	// the room from MaxUserSessions sessions already.
	ErrUserSessions = errors.New("room: the user is in the room from too many sessions")
	// ErrNotLocal says the session is not a local session of the room
	// (never registered, or detached).
	ErrNotLocal = errors.New("room: no such local session")
)

// local is a session of this node in the room.
type local struct {
	user     string
	active   bool      // it has the room's state and receives deliveries
	since    uint64    // Room.epoch when it last got the room's state
	rejected error     // why its join was refused (ErrFull, ErrUserSessions); nil if it was not
	leaving  bool      // it has asked to leave
	leftSent bool      // it has asked to leave and heard its leave
	retryAt  time.Time // earliest time to ask for its join again
	movedAt  uint64    // Room.records when it last got a state for a moved chunk (devices.go)
	// unstoredAt is Room.reconciles+1 when it last got a state for text
	// it was shown that the stream does not hold, 0 if never; owed says
	// it is due one and gets no text until then (live.go).
	unstoredAt uint64
	owed       bool
	// lost says the room took it out (lose): should a later copy of its
	// refused join store its membership again, Reconcile removes it.
	lost bool
}

// Room is one room's state on one node: the text (an rtt.Room), the
// members as the stream records them, the users they make, and this
// node's sessions in it, with the rules that turn records into deliveries
// and the cluster's state into cleanup records.
//
// A Room does no I/O, reads no clock and starts no goroutine; it is not
// safe for concurrent use: one goroutine owns it.
type Room struct {
	name    string
	cfg     Config
	text    *rtt.Room
	applied uint64 // the stream sequence of the last record applied
	// records counts the records this Room applied since it was made:
	// its own pace, where the stream's sequence also counts the records
	// of the other rooms that share the stream.
	records uint64

	members map[string]Member // by session key
	users   map[string]int    // user -> sessions in the room
	// senders holds every sender the text knows, with the stream
	// sequence of the record that last brought new text of theirs (0:
	// not known, for a sender restored from a snapshot without it).
	senders map[string]uint64

	local map[string]*local
	order []string // the keys of local, sorted: deliveries go in this order

	// devices holds what the room keeps of each user's devices
	// (devices.go).
	devices map[string]*devices
	// reconciles counts the calls of Reconcile (live.go).
	reconciles uint64
	moved      []string // during Apply: the sessions whose chunks it moved

	// Live text (live.go).
	live      map[string][]liveChunk // sender -> chunks shown live, waiting for the stream, by seq
	shown     map[string]uint64      // sender -> the last seq shown here, live or stored
	liveOff   map[string]liveOff     // sender -> live text held back after text shown and never stored
	gone      [2]map[string]uint64   // senders forgotten lately -> the last seq shown then; [1] the older
	epoch     uint64                 // counts the states sent to local sessions
	stale     bool                   // during Apply: sessions with since <= staleUpTo saw text never stored
	staleUpTo uint64
	unstored  []string
	lost      []string // Result.Lost of the record being applied

	// The last state line and its error, for the record applied then:
	// joins and re-joins between two records share one encoding.
	stateLine    []byte
	stateErr     error
	stateApplied uint64
	stateCached  bool

	// Presence evidence, see Reconcile.
	watched  time.Time            // the last Reconcile, zero before the first
	downFrom map[string]downSince // node -> since when it was seen down or missing with a majority up (or the bus's word)
	suspect  map[string]time.Time // own member key -> since when it looked stale
	dropAt   time.Time            // earliest time to ask for another cleanup
	// The room's stream leader as StoreLeader last gave it; since when
	// Reconcile has seen that leader live (zero: not live at the last
	// Reconcile), and since when it has seen none live (zero: live).
	leader      string
	leaderKnown bool
	storable    time.Time
	unstorable  time.Time
}

// New returns an empty room called name, as of stream sequence 0. It
// returns an error wrapping ErrConfig if cfg is unusable.
func New(name string, cfg Config) (*Room, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("room %s: %w", name, err)
	}
	return newRoom(name, cfg, rtt.NewRoom(cfg.MaxLines)), nil
}

func newRoom(name string, cfg Config, text *rtt.Room) *Room {
	return &Room{
		name:     name,
		cfg:      cfg,
		text:     text,
		members:  make(map[string]Member),
		users:    make(map[string]int),
		senders:  make(map[string]uint64),
		devices:  make(map[string]*devices),
		local:    make(map[string]*local),
		live:     make(map[string][]liveChunk),
		liveOff:  make(map[string]liveOff),
		shown:    make(map[string]uint64),
		downFrom: make(map[string]downSince),
		suspect:  make(map[string]time.Time),
	}
}

// Name is the room's name.
func (r *Room) Name() string { return r.name }

// Applied is the stream sequence of the last record applied (or of the
// snapshot the room was restored from). The caller's consumer resumes
// after it.
func (r *Room) Applied() uint64 { return r.applied }

// Members returns a copy of the room's members, by session key.
func (r *Room) Members() map[string]Member { return maps.Clone(r.members) }

// OwnMembers is how many members the room lists on this node
// (Config.Self), of any incarnation.
func (r *Room) OwnMembers() int {
	n := 0
	for _, m := range r.members {
		if m.Node == r.cfg.Self {
			n++
		}
	}
	return n
}

// Users returns the users in the room, sorted.
func (r *Room) Users() []string { return slices.Sorted(maps.Keys(r.users)) }

// Text returns a deep copy of the room's text state.
func (r *Room) Text() rtt.State { return r.text.State() }

// Result says what Apply did with one record, beyond what it delivered.
type Result struct {
	// Skipped is set when the record's seq was not above Applied: the
	// record is already in the state (the snapshot the room was restored
	// from covered it) and was ignored.
	Skipped bool
	// Duplicates counts the text chunks whose (sender, seq) was applied
	// before: resends, dropped on every node alike. It is 0 or 1 for a
	// text record, up to the number of chunks for a batch.
	Duplicates int
	// Moved counts the text chunks stored under another seq than their
	// session sent: another device of the same user had stored text
	// under that seq (devices.go).
	Moved int
	// Unstored names the senders whose text shown live was never stored
	// (room/live.go): the sessions that saw it got the room's state again.
	Unstored []string
	// Lost names the local sessions the record took out of the room: each
	// had lost its membership while it lived on, and the join Reconcile
	// asked for again was refused. Each was told (a removed error about
	// the room) and gets nothing more; the node detaches it.
	Lost []string
}

// Apply applies the record stored at stream sequence seq. Records must
// come in stream order; one at or below Applied is skipped. Deliveries to
// local sessions go to the Sink before Apply returns: text to every
// active local session but the one that typed it, a user's presence join
// when their first session joins and leave when their last one leaves,
// and the room's state to the sessions whose view no longer matches the
// room: those shown text live that was never stored (live.go), all of
// them when the room forgets senders (Config.MaxSenders), and the one
// that typed a chunk stored under another seq than it sent (devices.go).
func (r *Room) Apply(seq uint64, rec Record) Result {
	if seq <= r.applied {
		return Result{Skipped: true}
	}
	r.applied = seq
	r.records++
	rec = rec.valid()
	var res Result
	switch rec.Op {
	case OpText:
		r.applyText(rec, &res)
	case OpBatch:
		for _, chunk := range rec.Recs {
			if chunk.Op == OpText {
				r.applyText(chunk, &res)
			}
		}
	case OpJoin:
		r.applyJoin(rec)
	case OpLeave:
		r.applyLeave(rec)
	}
	if len(r.senders) > r.cfg.MaxSenders {
		r.forgetDeparted()
	}
	epoch := r.epoch
	if r.stale {
		r.resendStates(r.staleUpTo)
		res.Unstored = r.unstored
		r.stale, r.staleUpTo, r.unstored = false, 0, nil
	}
	res.Lost, r.lost = r.lost, nil
	if len(r.moved) > 0 {
		r.resendMoved(epoch)
	}
	return res
}

// applyText applies a chunk, counting in res what became of it.
func (r *Room) applyText(rec Record, res *Result) {
	if rec.User == "" || rec.Seq > maxSeq || len(rec.T) > wire.MaxChunkLimit {
		// Nodes refuse all of these; one that stored such a chunk
		// anyway would have every later chunk of its user taken for a
		// duplicate (past 2^53-1), or a delivery longer than a protocol
		// line sent to every member.
		return
	}
	sent, dev := rec.Seq, devHash(rec.Dev)
	if rec.Seq = r.storeSeq(rec.User, sent, dev); rec.Seq != sent {
		res.Moved++
		r.moved = append(r.moved, rec.Key)
	}
	applied := r.text.Apply(rec.User, rec.Seq, rec.T)
	w := r.storedLive(rec)
	if w.phantom {
		r.holdLive(rec.User)
		r.stale, r.staleUpTo = true, max(r.staleUpTo, w.phantomAt)
		r.unstored = append(r.unstored, fmt.Sprintf("%s %d", rec.User, rec.Seq))
	}
	if applied.Duplicate {
		if _, ok := r.senders[rec.User]; !ok {
			r.senders[rec.User] = 0
		}
		res.Duplicates++
		return
	}
	r.senders[rec.User] = r.applied
	r.remember(rec.User, rec.Seq, sent, dev)
	m := wire.Message{Op: wire.OpText, Room: r.name, From: rec.User, Seq: rec.Seq, T: rec.T}
	r.deliverTo(m, rec.Key, func(lm *local) bool {
		if r.stale && lm.since <= r.staleUpTo {
			// It gets the room's state once the record is applied, and
			// that holds this chunk. Sent now, the chunk could follow a
			// later one of its sender that it was shown live.
			return false
		}
		// The others saw it live, but for its user's other sessions
		// (live.go).
		return !w.same || lm.since > w.shownAt || lm.user == rec.User
	})
}

func (r *Room) applyJoin(rec Record) {
	if rec.Key == "" || rec.User == "" {
		return
	}
	if _, ok := r.members[rec.Key]; ok {
		return // a retried join
	}
	var refused error
	switch users := r.users[rec.User]; {
	case users == 0 && len(r.users) >= r.cfg.MaxUsers:
		refused = ErrFull
	case users >= r.cfg.MaxUserSessions:
		refused = ErrUserSessions
	}
	if refused != nil {
		if lm := r.local[rec.Key]; lm != nil {
			lm.rejected = refused
			if lm.active {
				r.lose(rec.Key, lm)
			}
		}
		return
	}
	if lm := r.local[rec.Key]; lm != nil && !lm.lost {
		// A copy stored again by a publish that retried may be taken
		// after an earlier copy was refused. A lost session was told it
		// is out and gets nothing: its refusal stands, and the
		// membership this copy makes is one Reconcile removes.
		lm.rejected = nil
	}
	r.members[rec.Key] = Member{User: rec.User, Node: rec.Node, Inc: rec.Inc}
	r.users[rec.User]++
	if r.users[rec.User] == 1 {
		r.deliver(wire.Message{Op: wire.OpPresence, Room: r.name, User: rec.User, Event: "join"}, "")
	}
}

func (r *Room) applyLeave(rec Record) {
	var gone []string
	for _, key := range rec.Keys {
		m, ok := r.members[key]
		if !ok {
			continue
		}
		delete(r.members, key)
		if r.users[m.User]--; r.users[m.User] <= 0 {
			delete(r.users, m.User)
			if ds := r.devices[m.User]; ds != nil {
				ds.keep(LeftDevices) // devices.go
				r.boundLeftDevices()
			}
			gone = append(gone, m.User)
		}
	}
	slices.Sort(gone)
	gone = slices.Compact(gone)
	for _, user := range gone {
		r.deliver(wire.Message{Op: wire.OpPresence, Room: r.name, User: user, Event: "leave"}, "")
	}
	for _, user := range gone {
		// A session stores its text before its leave, so what still
		// waits of a user who has no session left was never stored,
		// and nobody is left to store it: the sessions shown it get
		// the room's state.
		if w := r.live[user]; len(w) > 0 {
			r.stale = true
			for _, c := range w {
				r.staleUpTo = max(r.staleUpTo, c.epoch)
			}
			r.unstored = append(r.unstored, fmt.Sprintf("%s %d", user, w[0].seq))
			// The user's next session counts on from the stored seq:
			// its chunks after it are the next to show.
			delete(r.live, user)
			delete(r.shown, user)
		}
	}
	// Every leaver hears that it left: one whose user stays in the room
	// through another session, and one whose membership was gone
	// already (a cleanup removed it while its node was cut off). The
	// others heard it with everyone above.
	for _, key := range rec.Keys {
		lm := r.local[key]
		if lm == nil || !lm.active || !lm.leaving || lm.leftSent {
			continue
		}
		if !slices.Contains(gone, lm.user) {
			r.send(key, wire.Message{Op: wire.OpPresence, Room: r.name, User: lm.user, Event: "leave"})
		}
		lm.leftSent = true // once: a cleanup's leave may come before its own
	}
}

// departedIn lists the senders in rs who are not in the room, oldest
// first (see oldestFirst).
func (r *Room) departedIn(rs *wire.RoomState) []string {
	var departed []string
	for from := range rs.Live {
		if r.users[from] == 0 {
			departed = append(departed, from)
		}
	}
	for from := range rs.Seqs {
		if _, ok := rs.Live[from]; !ok && r.users[from] == 0 {
			departed = append(departed, from)
		}
	}
	r.oldestFirst(departed)
	return departed
}

// oldestFirst sorts senders by the stream sequence of the record that
// last brought new text of theirs, oldest first, and those of one record
// (or unknown: 0) by name. Every node that applied the same records, or
// restored the same snapshot, gets the same order.
func (r *Room) oldestFirst(senders []string) {
	slices.SortFunc(senders, func(a, b string) int {
		return cmp.Or(cmp.Compare(r.senders[a], r.senders[b]), strings.Compare(a, b))
	})
}

// cutLive returns the last keep bytes or fewer of text, starting at a
// character, after a U+FFFD that says something was cut before them.
func cutLive(text string, keep int) string {
	cut := len(text) - keep
	for cut < len(text) && !utf8.RuneStart(text[cut]) {
		cut++
	}
	return "\ufffd" + text[cut:]
}

// forgetDeparted forgets senders who are not in the room, in name order,
// until a quarter of MaxSenders is free: first those with no current
// line, then, if that is not enough, those who left in the middle of one
// (rtt.Room.Forget moves their unfinished line to the history; kept, a
// flood of passing senders would grow the room's state without bound).
//
// Every active local session then gets the room's state: its view still
// holds the forgotten senders and their seqs, and would take the text of
// one who comes back, counting from seq 1 again, for resends and drop it.
// The state also takes along any chunks of theirs shown live and waiting
// (their stored copies would be new to the room, and ones never stored
// would stay on screens).
func (r *Room) forgetDeparted() {
	var idle, unfinished []string
	for from := range r.senders {
		switch {
		case r.users[from] > 0:
		case r.text.Live(from) == "":
			idle = append(idle, from)
		default:
			unfinished = append(unfinished, from)
		}
	}
	slices.Sort(idle)
	slices.Sort(unfinished)
	for _, from := range append(idle, unfinished...) {
		if len(r.senders) <= r.cfg.MaxSenders*3/4 {
			break
		}
		r.stale, r.staleUpTo = true, r.epoch // every session
		r.forgotten(from)
		r.text.Forget(from)
		r.forgetLive(from)
		delete(r.senders, from)
		delete(r.devices, from)
	}
}

// deliver encodes m once and hands it to every active local session but
// the one under except, in key order.
func (r *Room) deliver(m wire.Message, except string) {
	r.deliverTo(m, except, func(*local) bool { return true })
}

// deliverTo is deliver to the sessions for which to says true.
func (r *Room) deliverTo(m wire.Message, except string, to func(*local) bool) {
	var line []byte
	for _, key := range r.order {
		// A session owed a state gets no text meanwhile: the state
		// holds it (live.go). Presence still comes.
		if lm := r.local[key]; !lm.active || (lm.owed && m.Op == wire.OpText) || key == except || !to(lm) {
			continue
		}
		if line == nil {
			var err error
			if line, err = wire.Encode(m); err != nil {
				return // a message of strings always encodes
			}
		}
		r.cfg.Sink.Deliver(key, line)
	}
}

// send hands m to the local session under key.
func (r *Room) send(key string, m wire.Message) {
	if line, err := wire.Encode(m); err == nil {
		r.cfg.Sink.Deliver(key, line)
	}
}

// Register adds the session under key, of user, as a local session that
// receives nothing yet. Register a session before its join is stored, so
// that Reconcile never takes the join for a member this node lost.
func (r *Room) Register(key, user string) {
	if _, ok := r.local[key]; !ok {
		i, _ := slices.BinarySearch(r.order, key)
		r.order = slices.Insert(r.order, i, key)
	}
	r.local[key] = &local{user: user}
}

// Activate starts the deliveries to the local session under key, once
// its join has been applied, and returns the room's state line for it
// (see StateLine). It returns ErrFull if the join was refused,
// ErrNotLocal if key is not registered, and StateLine's error (the
// session stays inactive) if the state does not fit a line.
func (r *Room) Activate(key string) ([]byte, error) {
	lm := r.local[key]
	switch {
	case lm == nil:
		return nil, fmt.Errorf("room %s: activating %s: %w", r.name, key, ErrNotLocal)
	case lm.rejected != nil:
		return nil, r.refusal(lm)
	}
	line, err := r.StateLine()
	if err != nil {
		return nil, err // not activated: it gets nothing without its state
	}
	lm.active, lm.owed = true, false
	r.epoch++
	lm.since = r.epoch
	return line, nil
}

// refusal is the error for lm's refused join: ErrFull or
// ErrUserSessions, wrapped with the figures.
func (r *Room) refusal(lm *local) error {
	if errors.Is(lm.rejected, ErrFull) {
		return fmt.Errorf("room %s: %w: %d users", r.name, ErrFull, r.cfg.MaxUsers)
	}
	return fmt.Errorf("room %s: %w: user %s is in it from %d sessions", r.name, lm.rejected, lm.user, r.cfg.MaxUserSessions)
}

// lose takes the active local session under key out of the room: its
// membership was removed while it lived on (its node was cut off longer
// than the grace), and the join Reconcile asked for again was refused
// (the room filled meanwhile). It gets no more deliveries, is told with a
// removed error about the room, and is listed in Result.Lost; it stays
// registered until the node detaches it.
func (r *Room) lose(key string, lm *local) {
	lm.active, lm.owed, lm.lost = false, false, true
	why := fmt.Sprintf("room %s is full (%d users)", r.name, r.cfg.MaxUsers)
	if !errors.Is(lm.rejected, ErrFull) {
		why = fmt.Sprintf("user %s is in room %s from %d sessions", lm.user, r.name, r.cfg.MaxUserSessions)
	}
	r.send(key, wire.Message{
		Op: wire.OpError, Code: wire.CodeRemoved, Room: r.name,
		Message: why + ": this session lost its place while its node was cut off and is no longer in the room",
	})
	r.lost = append(r.lost, key)
}

// Resync returns the state line for the active local session under key
// again, or nil (and no error) if there is no such active session. On
// StateLine's error the session goes on as it was. A session the room
// lost (see Result.Lost) gets the error its join again got: ErrFull or
// ErrUserSessions, wrapped.
func (r *Room) Resync(key string) ([]byte, error) {
	lm := r.local[key]
	if lm != nil && lm.rejected != nil {
		return nil, r.refusal(lm)
	}
	if lm == nil || !lm.active {
		return nil, nil
	}
	line, err := r.StateLine()
	if err != nil {
		return nil, err // it keeps the state it had
	}
	r.epoch++
	lm.since, lm.owed = r.epoch, false
	return line, nil
}

// MarkLeaving notes that the local session under key is about to store
// its leave: Reconcile does not ask for its join again meanwhile, and the
// session hears its own leave even while its user stays in the room.
func (r *Room) MarkLeaving(key string) {
	if lm := r.local[key]; lm != nil {
		lm.leaving = true
	}
}

// Detach forgets the local session under key. Its membership, if any,
// stays until a leave record removes it (Reconcile asks for one).
func (r *Room) Detach(key string) {
	if _, ok := r.local[key]; !ok {
		return
	}
	delete(r.local, key)
	if i, ok := slices.BinarySearch(r.order, key); ok {
		r.order = slices.Delete(r.order, i, i+1)
	}
}

// Seq is the last seq of user's text the room applied (0 if none).
func (r *Room) Seq(user string) uint64 { return r.text.Seq(user) }

// Locals is how many local sessions the room has.
func (r *Room) Locals() int { return len(r.local) }

// ErrStateTooLarge says a room's state does not fit one protocol line
// even with nothing left to cut: more users, with longer names, than
// MaxUsers at its bound allows.
var ErrStateTooLarge = errors.New("room: state too large for one line")

// StateLine encodes the room's full state as one room message for a
// joining session, newline included. Live lists every user in the room
// (with "" when they type nothing) and every sender with a non-empty
// current line; PendingCR the senders whose last chunk ended with a CR.
// A state that would not fit one protocol line (wire.MaxLine) loses,
// until it fits, in the order in which SnapshotWithin cuts a snapshot:
//
//  1. the unfinished lines of the senders who are not in the room, the
//     one whose text came longest ago first (by stream sequence, then
//     name): each becomes a U+FFFD, text lost, and their text that
//     follows continues after it, marked, as in a room restored from a
//     cut snapshot;
//  2. its oldest completed lines, one by one;
//  3. those senders whole, in the same order: their lines, seqs and
//     pending CRs (a joiner then takes their next chunk for one after a
//     gap, and marks it with a U+FFFD);
//  4. every pending CR (a joiner may then show an extra empty line where
//     a sender's CR and LF come in two chunks);
//  5. the start of its longest live lines (each longer than half the
//     longest keeps that many bytes at its end, after a U+FFFD), until
//     no live line is longer than 16 bytes.
//
// Then it returns an error wrapping ErrStateTooLarge. A snapshot, whose
// limit is far larger, therefore cuts only what the state line cuts too,
// and a joiner gets the same state from a room restored from it. The
// state is sized from its parts, not encoded at each step, so a join
// costs one encoding however large the room, and the joins and re-joins
// until the next record is applied share it. The line is shared: callers
// must not change it.
func (r *Room) StateLine() ([]byte, error) {
	if !r.stateCached || r.stateApplied != r.applied {
		r.stateLine, r.stateErr = r.encodeState()
		r.stateApplied, r.stateCached = r.applied, true
	}
	return r.stateLine, r.stateErr
}

// encodeState is StateLine without the cache.
func (r *Room) encodeState() ([]byte, error) {
	st := r.text.State()
	rs := &wire.RoomState{
		Lines:     make([]wire.Line, len(st.Lines)),
		Live:      make(map[string]string, len(r.users)),
		Seqs:      st.Seqs,
		PendingCR: st.PendingCR,
		Users:     r.Users(),
	}
	for i, l := range st.Lines {
		rs.Lines[i] = wire.Line{From: l.From, Text: l.Text}
	}
	for user := range r.users {
		rs.Live[user] = st.Live[user]
	}
	for from, text := range st.Live {
		if text != "" {
			rs.Live[from] = text
		}
	}
	m := wire.Message{Op: wire.OpRoom, Room: r.name, State: rs}

	// size is an upper bound of the encoded line, kept as parts go.
	const (
		frame     = len(`{"op":"room","room":,"state":{"lines":[],"live":{},"seqs":{},"pending_cr":{},"users":[]}}`)
		lineFrame = len(`{"from":,"t":},`)
		liveFrame = len(`:,`)
		seqFrame  = len(`:18446744073709551615,`)
		crFrame   = len(`:true,`)
		userFrame = len(`,`)
	)
	liveSize := func(from, text string) int { return wire.StringLen(from) + wire.StringLen(text) + liveFrame }
	seqSize := func(from string) int { return wire.StringLen(from) + seqFrame }
	crSize := func(from string) int { return wire.StringLen(from) + crFrame }
	size := frame + wire.StringLen(r.name)
	for _, l := range rs.Lines {
		size += wire.StringLen(l.From) + wire.StringLen(l.Text) + lineFrame
	}
	for from, text := range rs.Live {
		size += liveSize(from, text)
	}
	for from := range rs.Seqs {
		size += seqSize(from)
	}
	for from := range rs.PendingCR {
		size += crSize(from)
	}
	for _, u := range rs.Users {
		size += wire.StringLen(u) + userFrame
	}

	// The senders not in the room, once listed, those of them whose live
	// line may still be marked lost, and those who may still go whole.
	var departed, lives, seqs []string
	listed := false
	for {
		if size <= wire.MaxLine {
			line, err := wire.Encode(m)
			if err != nil {
				return nil, fmt.Errorf("room %s: encoding its state: %w", r.name, err)
			}
			if len(line)-1 <= wire.MaxLine {
				return line, nil
			}
			size = len(line) - 1 // not an upper bound after all: cut on
		}
		switch {
		case !listed:
			departed, listed = r.departedIn(rs), true
			lives, seqs = departed, departed
		case len(lives) > 0:
			// As in SnapshotWithin: the line stays, marked as lost, and
			// the sender's text that follows continues after the mark.
			from := lives[0]
			lives = lives[1:]
			if text := rs.Live[from]; len(text) > len(lost) {
				size -= wire.StringLen(text) - wire.StringLen(lost)
				rs.Live[from] = lost
			}
		case len(rs.Lines) > 0:
			l := rs.Lines[0]
			size -= wire.StringLen(l.From) + wire.StringLen(l.Text) + lineFrame
			rs.Lines = rs.Lines[1:]
		case len(seqs) > 0:
			// The sender goes whole: a joiner then takes their next
			// chunk for one after a gap, and marks it with a U+FFFD.
			from := seqs[0]
			seqs = seqs[1:]
			if text, ok := rs.Live[from]; ok {
				size -= liveSize(from, text)
				delete(rs.Live, from)
			}
			if _, ok := rs.Seqs[from]; ok {
				size -= seqSize(from)
				delete(rs.Seqs, from)
			}
			if rs.PendingCR[from] {
				size -= crSize(from)
				delete(rs.PendingCR, from)
			}
		case len(rs.PendingCR) > 0:
			for from := range rs.PendingCR {
				size -= crSize(from)
			}
			rs.PendingCR = nil
		default:
			longest := 0
			for _, text := range rs.Live {
				longest = max(longest, len(text))
			}
			if longest <= 16 {
				return nil, fmt.Errorf("room %s: %w: about %d bytes with %d users", r.name, ErrStateTooLarge, size, len(rs.Users))
			}
			// Every live line longer than half the longest keeps only
			// its last half-the-longest bytes: at most log2(4096/16)
			// rounds, however many lines are long.
			keep := longest / 2
			for from, text := range rs.Live {
				if len(text) <= keep {
					continue
				}
				size -= liveSize(from, text)
				rs.Live[from] = cutLive(text, keep)
				size += liveSize(from, rs.Live[from])
			}
		}
	}
}
