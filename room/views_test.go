package room_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/room"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// The views simulation checks the promises a room makes to its members,
// whatever the order of stored records, live text, joins and leaves:
//
//   - a member's view, the room's state it got plus the deliveries after
//     it applied with the rtt model, ends equal to the room's own text and
//     users, sender by sender (two senders' lines may interleave
//     differently, docs/rooms.md), whenever it joined;
//   - no delivery repeats a chunk the member's view already holds;
//   - a room restored from a snapshot at any point, fed the records after
//     it, ends with the same text and members as the room that never
//     stopped.
//
// One room on node n1 holds local reader sessions ("n1/..."); the senders
// are sessions of node n2, whose chunks reach n1 both through the stream
// and live, in any interleaving the bus allows: live records keep their
// order but may be dropped, come before or after the stored copy; a
// sender's node may die after showing a chunk live and before storing it.

// viewLines is the longest history the simulation lets a room and the
// views keep: long enough that no line is cut off, so two views that
// interleave senders differently still hold the same lines of each.
const viewLines = 1000

// member is one local session's view of the room, as a client keeps it.
type member struct {
	key, user string
	active    bool
	text      *rtt.Room
	users     map[string]bool
	leaving   bool
}

type viewSim struct {
	t     testing.TB
	r     *room.Room
	cfg   room.Config
	prng  *rand.Rand
	users []string // the senders' users

	members map[string]*member
	stream  []room.Record // records stored, not applied yet, in stream order
	now     time.Time     // the time of the last Reconcile
	applied uint64        // the stream sequence of the last record applied
	live    []room.Record // live records published, not received yet
	typed   map[string]uint64
	stored  map[string][]room.Record // user -> their chunks stored, to resend
	joined  map[string]bool          // the senders' users with a join stored
	next    int                      // for local session keys

	shadow     *room.Room // restored from a snapshot, fed the records after it
	shadowFrom uint64
	log        []string
}

// newViewSim starts a simulation. With few set the room has six senders
// at most; without, 24 with room for 9 users and 18 senders, so it
// refuses joins and forgets senders.
func newViewSim(t testing.TB, seed uint64, few bool) *viewSim {
	s := &viewSim{
		t:       t,
		prng:    rand.New(rand.NewPCG(seed, seed^0x5eed)),
		members: map[string]*member{},
		typed:   map[string]uint64{},
		stored:  map[string][]room.Record{},
		joined:  map[string]bool{},
	}
	s.cfg = room.DefaultConfig("n1", 1)
	s.cfg.MaxLines = viewLines
	senders := 6
	if !few {
		s.cfg.MaxUsers, s.cfg.MaxSenders, senders = 9, 1, 24
	}
	s.cfg.Sink = room.SinkFunc(s.deliver)
	r, err := room.New("r", s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.r = r
	for i := range senders {
		s.users = append(s.users, string(rune('a'+i)))
	}
	return s
}

func (s *viewSim) logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

func (s *viewSim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s (MaxUsers %d)\nsteps:\n  %s", fmt.Sprintf(format, args...), s.cfg.MaxUsers, strings.Join(s.log, "\n  "))
}

// deliver is the room's Sink: it applies a line to the member's view.
func (s *viewSim) deliver(key string, line []byte) {
	m := s.members[key]
	if m == nil || !m.active {
		s.fatalf("delivery to %s, not an active member: %s", key, line)
	}
	s.logf("  %s <- %s", key, bytes.TrimSuffix(line, []byte("\n")))
	s.take(m, line)
}

// take applies one line the room sent to m's view.
func (s *viewSim) take(m *member, line []byte) {
	msg, err := wire.Decode(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		s.fatalf("%s got an undecodable line %q: %v", m.key, line, err)
	}
	switch msg.Op {
	case wire.OpRoom:
		if m.text, err = rtt.FromState(viewLines, msg.State.TextState()); err != nil {
			s.fatalf("%s got a state it cannot load: %v", m.key, err)
		}
		m.users = map[string]bool{}
		for _, u := range msg.State.Users {
			m.users[u] = true
		}
	case wire.OpText:
		if m.text == nil {
			s.fatalf("%s got text before its state: %s", m.key, line)
		}
		if res := m.text.Apply(msg.From, msg.Seq, msg.T); res.Duplicate {
			s.fatalf("%s got %s's chunk %d again (its view is at %d): %s", m.key, msg.From, msg.Seq, m.text.Seq(msg.From), line)
		}
	case wire.OpPresence:
		switch msg.Event {
		case "join":
			if m.users[msg.User] {
				s.fatalf("%s got a join of %s, already in the room", m.key, msg.User)
			}
			m.users[msg.User] = true
		case "leave":
			if !m.users[msg.User] {
				s.fatalf("%s got a leave of %s, not in the room", m.key, msg.User)
			}
			delete(m.users, msg.User)
		}
	default:
		s.fatalf("%s got %s", m.key, line)
	}
}

// pieces are the texts chunks are made of: letters, erasures, line ends
// (a CR at a chunk's end among them, whose LF may start the next chunk),
// combining marks and a ZWJ sequence, invalid UTF-8 and controls.
var pieces = []string{"x", "yz", "\b", "\n", "\u00e9", "e\u0301", "", "\U0001F469\u200D\U0001F467", "\b\b\b", "\xff", "\x1b[1m", "q\r\n", "q\r"}

func (s *viewSim) chunkText() string {
	var b strings.Builder
	for range s.prng.IntN(3) + 1 {
		b.WriteString(pieces[s.prng.IntN(len(pieces))])
	}
	return b.String()
}

// store appends a record to the stream.
func (s *viewSim) store(rec room.Record) {
	s.stream = append(s.stream, rec)
}

// step does one random thing.
func (s *viewSim) step() {
	u := s.users[s.prng.IntN(len(s.users))]
	key := "n2/" + u
	switch op := s.prng.IntN(100); {
	case op < 30: // u types a chunk: stored, and published live unless lost
		s.typed[u]++
		rec := room.Record{Op: room.OpText, User: u, Key: key, Seq: s.typed[u], T: s.chunkText()}
		s.logf("type %s %d %q", u, rec.Seq, rec.T)
		s.store(rec)
		s.stored[u] = append(s.stored[u], rec)
		if s.prng.IntN(8) != 0 {
			s.live = append(s.live, rec)
		}
	case op < 33: // u's node shows a chunk live and dies before storing it
		rec := room.Record{Op: room.OpText, User: u, Key: key, Seq: s.typed[u] + 1, T: "lost" + s.chunkText()}
		s.logf("phantom %s %d %q", u, rec.Seq, rec.T)
		s.live = append(s.live, rec)
		if s.prng.IntN(2) == 0 {
			s.typed[u]++ // the sender goes on past it
		}
	case op < 36: // a resend of a stored chunk, as it was or changed
		if old := s.stored[u]; len(old) > 0 {
			rec := old[s.prng.IntN(len(old))]
			if s.prng.IntN(2) == 0 {
				rec.T += "!"
			}
			s.logf("resend %s %d %q", u, rec.Seq, rec.T)
			s.store(rec)
		}
	case op < 55: // the stream brings records
		for range s.prng.IntN(3) + 1 {
			s.applyNext()
		}
	case op < 75: // the bus brings or loses live records
		for range s.prng.IntN(3) + 1 {
			s.liveNext()
		}
	case op < 80: // u joins or leaves
		if s.joined[u] {
			s.logf("leave %s", key)
			s.store(room.Record{Op: room.OpLeave, Keys: []string{key}})
		} else {
			s.logf("join %s", key)
			s.store(room.Record{Op: room.OpJoin, User: u, Key: key, Node: "n2", Inc: 1})
		}
		s.joined[u] = !s.joined[u]
	case op < 86: // a local session joins
		s.next++
		lk := fmt.Sprintf("n1/%d", s.next)
		user := fmt.Sprintf("r%d", s.next%3) // some share a user
		s.members[lk] = &member{key: lk, user: user}
		s.r.Register(lk, user)
		s.logf("local %s %s", lk, user)
		s.store(room.Record{Op: room.OpJoin, User: user, Key: lk, Node: "n1", Inc: 1})
	case op < 90: // a local session resynchronises
		if m := s.pick(); m != nil && m.active {
			line, err := s.r.Resync(m.key)
			if err != nil {
				s.fatalf("resync %s: %v", m.key, err)
			}
			s.logf("resync %s", m.key)
			s.take(m, line)
		}
	case op < 93: // a local session leaves
		if m := s.pick(); m != nil && m.active && !m.leaving {
			s.logf("leaving %s", m.key)
			m.leaving = true
			s.r.MarkLeaving(m.key)
			s.store(room.Record{Op: room.OpLeave, Keys: []string{m.key}})
		}
	case op < 96: // a snapshot, restored on the side
		data, err := s.r.Snapshot()
		if err != nil {
			s.fatalf("snapshot: %v", err)
		}
		if s.shadow, err = room.Restore("r", data, s.shadowConfig()); err != nil {
			s.fatalf("restore: %v\n%s", err, data)
		}
		s.shadowFrom = s.applied
		s.logf("snapshot at %d", s.applied)
	case op < 98: // time passes and the node calls Reconcile
		s.reconcile()
	default: // the stream delivers a record again (a consumer restart)
		if s.applied > 0 {
			rec := room.Record{Op: room.OpText, User: u, Key: key, Seq: 1, T: "again"}
			if res := s.r.Apply(s.applied-uint64(s.prng.IntN(int(s.applied))), rec); !res.Skipped {
				s.fatalf("a record at or below Applied was not skipped")
			}
		}
	}
}

// reconcile calls the room's Reconcile, as its node does every few
// heartbeats, with both nodes up. The records it asks for are dropped
// (their loss is harmless); the states it owes members go out.
func (s *viewSim) reconcile() {
	s.now = s.now.Add(100 * time.Millisecond)
	v := room.NewView([]directory.Node{{ID: "n1", Status: directory.Up}, {ID: "n2", Status: directory.Up}},
		map[string]uint64{"n1": 1, "n2": 1})
	s.logf("reconcile")
	s.r.Reconcile(s.now, v)
}

func (s *viewSim) shadowConfig() room.Config {
	c := s.cfg
	c.Sink = nil
	return c
}

// pick returns a random local session, or nil.
func (s *viewSim) pick() *member {
	if len(s.members) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(s.members))
	return s.members[keys[s.prng.IntN(len(keys))]]
}

// applyNext applies the next stored record, several text records as one
// batch at times, then activates the local sessions whose join it
// applied and detaches those whose leave it applied.
func (s *viewSim) applyNext() {
	if len(s.stream) == 0 {
		return
	}
	rec := s.stream[0]
	n := 1
	if rec.Op == room.OpText && s.prng.IntN(3) == 0 {
		for n < len(s.stream) && n < 4 && s.stream[n].Op == room.OpText {
			n++
		}
		if n > 1 {
			rec = room.Record{Op: room.OpBatch, Recs: slices.Clone(s.stream[:n])}
		}
	}
	s.stream = s.stream[n:]
	s.applied++
	s.logf("apply %d %s", s.applied, recString(rec))
	s.r.Apply(s.applied, rec)
	if s.shadow != nil {
		s.shadow.Apply(s.applied, rec)
	}
	switch rec.Op {
	case room.OpJoin:
		if m := s.members[rec.Key]; m != nil && !m.active {
			line, err := s.r.Activate(m.key)
			if errors.Is(err, room.ErrFull) || errors.Is(err, room.ErrUserSessions) {
				s.logf("  %s: refused: %v", m.key, err)
				s.r.Detach(m.key)
				delete(s.members, m.key)
				break
			}
			if err != nil {
				s.fatalf("activate %s: %v", m.key, err)
			}
			m.active = true
			s.take(m, line)
		}
	case room.OpLeave:
		for _, k := range rec.Keys {
			if m := s.members[k]; m != nil && m.leaving {
				s.r.Detach(k)
				delete(s.members, k)
			}
		}
	}
}

func recString(rec room.Record) string {
	switch rec.Op {
	case room.OpText:
		return fmt.Sprintf("text %s %d %q", rec.User, rec.Seq, rec.T)
	case room.OpBatch:
		var parts []string
		for _, c := range rec.Recs {
			parts = append(parts, recString(c))
		}
		return "batch [" + strings.Join(parts, ", ") + "]"
	case room.OpJoin:
		return "join " + rec.Key
	case room.OpLeave:
		return "leave " + strings.Join(rec.Keys, ",")
	}
	return rec.Op
}

// liveNext hands the next live record to the room, or loses it.
func (s *viewSim) liveNext() {
	if len(s.live) == 0 {
		return
	}
	rec := s.live[0]
	s.live = s.live[1:]
	if s.prng.IntN(10) == 0 {
		s.logf("live lost %s", recString(rec))
		return
	}
	s.logf("live %s", recString(rec))
	s.r.ApplyLive(rec)
}

// settle lets the bus and the stream bring everything, then checks every
// member's view and the shadow against the room.
//
// Text shown live and never stored stays on screen until its sender
// stores more (docs/rooms.md): so every sender first types one more chunk.
func (s *viewSim) settle() {
	for _, u := range s.users {
		s.typed[u]++
		rec := room.Record{Op: room.OpText, User: u, Key: "n2/" + u, Seq: s.typed[u], T: "."}
		s.logf("type %s %d %q", u, rec.Seq, rec.T)
		s.store(rec)
		s.live = append(s.live, rec)
	}
	for len(s.live) > 0 || len(s.stream) > 0 {
		s.liveNext()
		s.applyNext()
	}
	if n := s.r.Waiting(); n != 0 {
		s.fatalf("%d chunks still wait with nothing on the way", n)
	}
	s.reconcile() // states owed go out at the next call
	want := s.r.Text()
	for _, key := range slices.Sorted(maps.Keys(s.members)) {
		m := s.members[key]
		if !m.active {
			continue
		}
		got := m.text.State()
		for _, from := range senderNames(want, got) {
			if g, w := got.Live[from], want.Live[from]; g != w {
				s.fatalf("%s shows %s's line as %q, the room has %q", key, from, g, w)
			}
			if g, w := got.Seqs[from], want.Seqs[from]; g != w {
				s.fatalf("%s has %s at seq %d, the room at %d", key, from, g, w)
			}
			if g, w := linesOf(got, from), linesOf(want, from); !slices.Equal(g, w) {
				s.fatalf("%s shows %s's lines as %q, the room has %q", key, from, g, w)
			}
		}
		if diff := cmp.Diff(slices.Sorted(maps.Keys(m.users)), s.r.Users(), cmpEmpty); diff != "" {
			s.fatalf("%s: users (-got +want):\n%s", key, diff)
		}
	}
	if s.shadow != nil {
		if diff := cmp.Diff(s.shadow.Text(), want, cmpEmpty); diff != "" {
			s.fatalf("room restored from the snapshot at %d: text (-got +want):\n%s", s.shadowFrom, diff)
		}
		if diff := cmp.Diff(s.shadow.Members(), s.r.Members(), cmpEmpty); diff != "" {
			s.fatalf("room restored from the snapshot at %d: members (-got +want):\n%s", s.shadowFrom, diff)
		}
	}
}

// cmpEmpty makes nil and empty slices and maps equal.
var cmpEmpty = cmp.FilterValues(func(a, b any) bool {
	return isEmpty(a) && isEmpty(b)
}, cmp.Comparer(func(_, _ any) bool { return true }))

func isEmpty(v any) bool {
	switch v := v.(type) {
	case []string:
		return len(v) == 0
	case []rtt.Line:
		return len(v) == 0
	case map[string]string:
		return len(v) == 0
	case map[string]uint64:
		return len(v) == 0
	case map[string]bool:
		return len(v) == 0
	case map[string]room.Member:
		return len(v) == 0
	}
	return false
}

func senderNames(states ...rtt.State) []string {
	names := map[string]bool{}
	for _, st := range states {
		for from := range st.Live {
			names[from] = true
		}
		for from := range st.Seqs {
			names[from] = true
		}
		for _, l := range st.Lines {
			names[l.From] = true
		}
	}
	return slices.Sorted(maps.Keys(names))
}

func linesOf(st rtt.State, from string) []string {
	var out []string
	for _, l := range st.Lines {
		if l.From == from {
			out = append(out, l.Text)
		}
	}
	return out
}

// TestViews runs the views simulation from many seeds.
func TestViews(t *testing.T) {
	for seed := range uint64(120) {
		for _, few := range []bool{true, false} {
			s := newViewSim(t, seed, few)
			for range 200 {
				s.step()
			}
			s.settle()
		}
	}
}

// FuzzViews runs the views simulation from a fuzzed seed and length.
func FuzzViews(f *testing.F) {
	f.Add(uint64(1), uint16(100), false)
	f.Add(uint64(7), uint16(400), true)
	f.Fuzz(func(t *testing.T, seed uint64, steps uint16, few bool) {
		s := newViewSim(t, seed, few)
		for range int(steps % 1000) {
			s.step()
		}
		s.settle()
	})
}
