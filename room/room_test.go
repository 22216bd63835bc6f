package room_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/room"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

func newRoom(t *testing.T, name string, sink room.Sink) *room.Room {
	t.Helper()
	cfg := room.DefaultConfig("n1", 1)
	if sink != nil {
		cfg.Sink = sink
	}
	r, err := room.New(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  room.Config
		ok   bool
	}{
		{"defaults", room.DefaultConfig("n1", 1), true},
		{"zero values but self", room.Config{Self: "n1"}, true},
		{"no self", room.Config{}, false},
		{"negative users", room.Config{Self: "n1", MaxUsers: -1}, false},
		{"negative grace", room.Config{Self: "n1", Grace: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := room.New("r", tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, room.ErrConfig) {
				t.Errorf("New: %v, want ErrConfig", err)
			}
		})
	}
}

// v1 is a snapshot as nodes stored it before version 2: rtt.State in its
// Go field names, no "v".
const v1 = `{"seq":42,"state":{"Lines":[{"From":"ann","Text":"hello"},{"From":"bob","Text":"hi ann"}],` +
	`"Live":{"ann":"how a","bob":"","zed":"gone"},"Seqs":{"ann":7,"bob":3},"PendingCR":{"bob":true}},` +
	`"members":{"n1/4":{"user":"ann","node":"n1","inc":11},"n2/9":{"user":"bob","node":"n2","inc":22}}}`

// A version 1 snapshot loads: text, seqs, pending CRs, members and the
// sequence to resume after; written again it is version 2 and loads the
// same.
func TestRestoreVersion1(t *testing.T) {
	r, err := room.Restore("lobby", []byte(v1), room.DefaultConfig("n3", 1))
	if err != nil {
		t.Fatal(err)
	}
	if r.Applied() != 42 {
		t.Errorf("Applied = %d, want 42", r.Applied())
	}
	want := rtt.State{
		Lines:     []rtt.Line{{From: "ann", Text: "hello"}, {From: "bob", Text: "hi ann"}},
		Live:      map[string]string{"ann": "how a", "bob": "", "zed": "gone"},
		Seqs:      map[string]uint64{"ann": 7, "bob": 3},
		PendingCR: map[string]bool{"bob": true},
	}
	if diff := cmp.Diff(r.Text(), want); diff != "" {
		t.Errorf("text (-got +want):\n%s", diff)
	}
	wantMembers := map[string]room.Member{"n1/4": {User: "ann", Node: "n1", Inc: 11}, "n2/9": {User: "bob", Node: "n2", Inc: 22}}
	if diff := cmp.Diff(r.Members(), wantMembers); diff != "" {
		t.Errorf("members (-got +want):\n%s", diff)
	}
	// bob's CR was carried: his LF completes nothing; ann's seq 7 is a
	// duplicate.
	if res := r.Apply(43, room.Record{Op: room.OpText, User: "bob", Key: "n2/9", Seq: 4, T: "\nok"}); res.Duplicates != 0 || res.Skipped {
		t.Errorf("bob's chunk: %+v", res)
	}
	if res := r.Apply(44, room.Record{Op: room.OpText, User: "ann", Key: "n1/4", Seq: 7, T: "x"}); res.Duplicates != 1 {
		t.Errorf("ann's resend: %+v, want a duplicate", res)
	}
	if got := len(r.Text().Lines); got != 2 {
		t.Errorf("%d lines after bob's LF, want 2", got)
	}

	data, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), `{"v":2,"seq":44,`) {
		t.Errorf("snapshot %s, want version 2 at seq 44", data)
	}
	again, err := room.Restore("lobby", data, room.DefaultConfig("n3", 1))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(again.Text(), r.Text()); diff != "" {
		t.Errorf("text after a version 2 round trip (-got +want):\n%s", diff)
	}
	if seq, err := room.SnapshotSeq([]byte(v1)); err != nil || seq != 42 {
		t.Errorf("SnapshotSeq(v1) = %d, %v; want 42", seq, err)
	}
	if seq, err := room.SnapshotSeq(data); err != nil || seq != 44 {
		t.Errorf("SnapshotSeq(v2) = %d, %v; want 44", seq, err)
	}
}

// A snapshot that cannot be used is an error wrapping ErrSnapshot, which
// tells the caller to rebuild the room from its stream.
func TestRestoreRejects(t *testing.T) {
	tests := []struct{ name, data string }{
		{"not JSON", `{"seq":`},
		{"not an object", `[1,2]`},
		{"newer version", `{"v":3,"seq":5}`},
		{"version 0", `{"v":0,"seq":5}`},
		{"v1 state of the wrong type", `{"seq":5,"state":[]}`},
		{"v2 lines of the wrong type", `{"v":2,"seq":5,"lines":{}}`},
		{"invalid UTF-8 in a line", "{\"v\":2,\"seq\":5,\"lines\":[{\"from\":\"a\",\"text\":\"\\u0007\"}]}"},
		{"member without user", `{"v":2,"seq":5,"members":{"n1/1":{"node":"n1"}}}`},
		{"member with an empty key", `{"seq":5,"state":{},"members":{"":{"user":"a","node":"n1"}}}`},
		{"null", `null`},
		{"v1 with its seq alone", `{"seq":500}`},
		{"v2 with its seq alone", `{"v":2,"seq":500}`},
		{"v2 without members", `{"v":2,"seq":5,"lines":[],"senders":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := room.Restore("r", []byte(tt.data), room.DefaultConfig("n1", 1))
			if !errors.Is(err, room.ErrSnapshot) {
				t.Errorf("Restore(%s) = %v, want ErrSnapshot", tt.data, err)
			}
		})
	}
	if seq, err := room.SnapshotSeq([]byte(`{"v":3,"seq":5,"future":true}`)); err != nil || seq != 5 {
		t.Errorf("SnapshotSeq of version 3 = %d, %v; want 5: every version keeps seq", seq, err)
	}
	if _, err := room.SnapshotSeq([]byte(`{"seq":"5"}`)); !errors.Is(err, room.ErrSnapshot) {
		t.Errorf("SnapshotSeq of a damaged snapshot: %v, want ErrSnapshot", err)
	}
}

// A state too large for one protocol line loses old lines first, then the
// beginning of the longest live line, and always fits.
func TestStateLineFits(t *testing.T) {
	r := newRoom(t, "big", nil)
	long := strings.Repeat("é", 2000) // 4000 bytes
	for i := range 100 {
		r.Apply(uint64(i+1), room.Record{Op: room.OpText, User: "ann", Seq: uint64(i + 1), T: long + "\n"})
	}
	users := []string{"ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lee", "max", "ned", "oli", "pat", "quy", "ros", "sam", "tom"}
	seq := uint64(1000)
	for i, u := range users {
		seq++
		r.Apply(seq, room.Record{Op: room.OpJoin, User: u, Key: "n2/" + u, Node: "n2", Inc: 1})
		seq++
		r.Apply(seq, room.Record{Op: room.OpText, User: u, Seq: uint64(1000 + i), T: long})
	}
	line, err := r.StateLine()
	if err != nil {
		t.Fatal(err)
	}
	if len(line)-1 > wire.MaxLine {
		t.Fatalf("state line of %d bytes, more than %d", len(line)-1, wire.MaxLine)
	}
	m, err := wire.Decode(line[:len(line)-1])
	if err != nil {
		t.Fatal(err)
	}
	if len(m.State.Users) != len(users) || len(m.State.Live) != len(users) {
		t.Errorf("state lists %d users and %d live lines, want %d", len(m.State.Users), len(m.State.Live), len(users))
	}
	for u, text := range m.State.Live {
		if !strings.HasSuffix(long, strings.TrimPrefix(text, "\ufffd")) {
			t.Errorf("live line of %s is not a tail of what was typed", u)
		}
	}

	// A small room is sent whole: every user, and every sender typing.
	small := newRoom(t, "small", nil)
	small.Apply(1, room.Record{Op: room.OpJoin, User: "ann", Key: "n1/1", Node: "n1", Inc: 1})
	small.Apply(2, room.Record{Op: room.OpText, User: "ann", Key: "n1/1", Seq: 1, T: "hi\nthere"})
	small.Apply(3, room.Record{Op: room.OpText, User: "zed", Key: "n2/1", Seq: 1, T: "gone but typing"})
	small.Apply(4, room.Record{Op: room.OpText, User: "yan", Key: "n2/2", Seq: 1, T: "gone, said all\n"})
	line, err = small.StateLine()
	if err != nil {
		t.Fatal(err)
	}
	var got wire.Message
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	want := &wire.RoomState{
		Lines: []wire.Line{{From: "ann", Text: "hi"}, {From: "yan", Text: "gone, said all"}},
		Live:  map[string]string{"ann": "there", "zed": "gone but typing"},
		Seqs:  map[string]uint64{"ann": 1, "yan": 1, "zed": 1},
		Users: []string{"ann"},
	}
	if diff := cmp.Diff(got.State, want); diff != "" {
		t.Errorf("state (-got +want):\n%s", diff)
	}
}

// Deliveries are encoded once and handed to every active local session
// but the typist, in key order.
func TestDeliveriesShareOneLine(t *testing.T) {
	var keys []string
	var lines [][]byte
	r := newRoom(t, "r", room.SinkFunc(func(key string, line []byte) {
		keys = append(keys, key)
		lines = append(lines, line)
	}))
	for i, key := range []string{"n1/3", "n1/1", "n1/2"} {
		r.Register(key, "u"+key[3:])
		r.Apply(uint64(i+1), room.Record{Op: room.OpJoin, User: "u" + key[3:], Key: key, Node: "n1", Inc: 1})
		if _, err := r.Activate(key); err != nil {
			t.Fatal(err)
		}
	}
	keys, lines = nil, nil
	r.Apply(10, room.Record{Op: room.OpText, User: "u2", Key: "n1/2", Seq: 1, T: "x"})
	if diff := cmp.Diff(keys, []string{"n1/1", "n1/3"}); diff != "" {
		t.Errorf("delivered to (-got +want):\n%s", diff)
	}
	if len(lines) != 2 || &lines[0][0] != &lines[1][0] {
		t.Errorf("the text was not encoded once for all")
	}
}

// NewView counts listed and live nodes once each; Peer knows unlisted
// nodes by their incarnation only.
func TestView(t *testing.T) {
	v := room.NewView([]directory.Node{
		{ID: "a", Status: directory.Up},
		{ID: "b", Status: directory.Down},
		{ID: "a", Status: directory.Down},
	}, map[string]uint64{"a": 3, "c": 9})
	tests := []struct {
		id   string
		want room.Peer
	}{
		{"a", room.Peer{Listed: true, Status: directory.Up, Newest: 3}},
		{"b", room.Peer{Listed: true, Status: directory.Down}},
		{"c", room.Peer{Newest: 9}},
		{"d", room.Peer{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(v.Peer(tt.id), tt.want); diff != "" {
			t.Errorf("Peer(%s) (-got +want):\n%s", tt.id, diff)
		}
	}
	var none *room.View
	if got := none.Peer("a"); got != (room.Peer{}) {
		t.Errorf("nil view: %+v", got)
	}
}

// worstName is a user name of the longest kind whose encoding is the
// longest: MaxUserName bytes, each a quote that JSON escapes to two.
func worstName(i int) string {
	id := fmt.Sprintf("%04d", i)
	return strings.Repeat(`"`, 64-len(id)) + id
}

// A room at its limits, filled with the text that encodes longest, still
// gives a joining session a state that fits one protocol line and that
// a client can decode: MaxUsers users with the longest names, each in
// the middle of the longest line or just after a CR (whose LF may still
// come: a pending CR each), a full history, and MaxSenders senders who
// left in the middle of a line of their own.
func TestStateFitsOneLine(t *testing.T) {
	for _, tt := range []struct{ name, end string }{{"mid-line", ""}, {"after a CR", "\r"}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := room.DefaultConfig("n1", 1)
			r, err := room.New("r", cfg)
			if err != nil {
				t.Fatal(err)
			}
			seq := uint64(0)
			apply := func(rec room.Record) {
				seq++
				r.Apply(seq, rec)
			}
			longLine := strings.Repeat(`\`, rtt.MaxLineBytes-1)
			for i := range cfg.MaxSenders {
				user, key := worstName(cfg.MaxUsers+i), fmt.Sprintf("n2/%d", cfg.MaxUsers+i)
				apply(room.Record{Op: room.OpJoin, Key: key, User: user, Node: "n2", Inc: 1})
				apply(room.Record{Op: room.OpText, Key: key, User: user, Seq: 1, T: longLine + "\n" + longLine})
				apply(room.Record{Op: room.OpLeave, Keys: []string{key}})
			}
			for i := range cfg.MaxUsers {
				user, key := worstName(i), fmt.Sprintf("n2/%d", i)
				apply(room.Record{Op: room.OpJoin, Key: key, User: user, Node: "n2", Inc: 1})
				apply(room.Record{Op: room.OpText, Key: key, User: user, Seq: 1<<53 - 1, T: longLine + tt.end})
			}
			r.Register("n1/1", worstName(0))
			apply(room.Record{Op: room.OpJoin, Key: "n1/1", User: worstName(0), Node: "n1", Inc: 1})
			start := time.Now()
			line, err := r.Activate("n1/1")
			if err != nil {
				t.Fatalf("Activate: %v", err)
			}
			t.Logf("Activate took %v", time.Since(start))
			if len(line)-1 > wire.MaxLine {
				t.Fatalf("state line of %d bytes, want at most %d", len(line)-1, wire.MaxLine)
			}
			m, err := wire.Decode(line[:len(line)-1])
			if err != nil {
				t.Fatalf("decoding the state: %v", err)
			}
			if got := len(m.State.Users); got != cfg.MaxUsers {
				t.Errorf("state lists %d users, want %d", got, cfg.MaxUsers)
			}
			if got := m.State.Seqs[worstName(0)]; got != 1<<53-1 {
				t.Errorf("the joining user's seq is %d in the state, want %d", got, uint64(1<<53-1))
			}
			t.Logf("state line: %d bytes, %d pending CRs", len(line)-1, len(m.State.PendingCR))
		})
	}
}

// A room configured for more users than one line can list refuses to
// activate a session rather than send a state no client can read; the
// session gets nothing until a state fits.
func TestStateTooLarge(t *testing.T) {
	var got []string
	cfg := room.DefaultConfig("n1", 1)
	cfg.MaxUsers = 400
	cfg.Sink = room.SinkFunc(func(key string, line []byte) { got = append(got, key) })
	r, err := room.New("r", cfg)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	for i := range cfg.MaxUsers {
		seq++
		r.Apply(seq, room.Record{Op: room.OpJoin, Key: fmt.Sprintf("n2/%d", i), User: worstName(i), Node: "n2", Inc: 1})
	}
	r.Register("n1/1", worstName(0))
	seq++
	r.Apply(seq, room.Record{Op: room.OpJoin, Key: "n1/1", User: worstName(0), Node: "n1", Inc: 1})
	if _, err := r.Activate("n1/1"); !errors.Is(err, room.ErrStateTooLarge) {
		t.Fatalf("Activate: %v, want ErrStateTooLarge", err)
	}
	seq++
	r.Apply(seq, room.Record{Op: room.OpText, Key: "n2/1", User: worstName(1), Seq: 1, T: "x"})
	if len(got) != 0 {
		t.Errorf("a session without its state got %d deliveries", len(got))
	}
}

// Joins and re-joins between two records share one encoding of the
// state; the next record makes a new one.
func TestStateLineShared(t *testing.T) {
	r := newRoom(t, "r", nil)
	r.Apply(1, room.Record{Op: room.OpJoin, Key: "n2/1", User: "ann", Node: "n2", Inc: 1})
	a, err := r.StateLine()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.StateLine()
	if &a[0] != &b[0] {
		t.Error("two state lines with no record between were encoded twice")
	}
	r.Apply(2, room.Record{Op: room.OpText, Key: "n2/1", User: "ann", Seq: 1, T: "hi"})
	c, _ := r.StateLine()
	if !strings.Contains(string(c), `"ann":"hi"`) || strings.Contains(string(a), `"ann":"hi"`) {
		t.Errorf("state before the text %s, after %s", a, c)
	}
}

// A room with more users who typed than MaxSenders allows still forgets
// departed senders in rounds of a quarter: MaxSenders is at least twice
// MaxUsers. Below that, each passing sender was forgotten alone, with a
// scan of every sender and the room's state to every session each time.
func TestForgetInRounds(t *testing.T) {
	states := 0
	cfg := room.DefaultConfig("n1", 1)
	cfg.MaxUsers, cfg.MaxSenders = 40, 8
	cfg.Sink = room.SinkFunc(func(_ string, line []byte) {
		if strings.HasPrefix(string(line), `{"op":"room"`) {
			states++
		}
	})
	r, err := room.New("r", cfg)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	apply := func(rec room.Record) {
		seq++
		r.Apply(seq, rec)
	}
	r.Register("n1/1", "zed")
	apply(room.Record{Op: room.OpJoin, User: "zed", Key: "n1/1", Node: "n1", Inc: 1})
	if _, err := r.Activate("n1/1"); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		u := fmt.Sprintf("in%d", i)
		apply(room.Record{Op: room.OpJoin, User: u, Key: "n2/" + u, Node: "n2", Inc: 1})
		apply(room.Record{Op: room.OpText, User: u, Key: "n2/" + u, Seq: 1, T: "x"})
	}
	const passing = 200
	for i := range passing {
		u := fmt.Sprintf("out%d", i)
		apply(room.Record{Op: room.OpText, User: u, Key: "n3/" + u, Seq: 1, T: "y"})
	}
	// MaxSenders 80: a round every 20 passing senders once 80 are known.
	if states > passing/20 {
		t.Errorf("%d states for %d passing senders, want at most %d", states, passing, passing/20)
	}
}

// TestStateLineCuts checks the cuts of large states against the order
// docs/protocol.md gives, on random rooms: the live lines of the senders
// not in the room first, each to a U+FFFD, the one whose text came
// longest ago first, then the oldest completed lines, then those senders
// whole (line, seq and pending CR), then every pending CR, then the start
// of long live lines; users and their live entries are always there.
func TestStateLineCuts(t *testing.T) {
	for seed := range uint64(60) {
		prng := rand.New(rand.NewPCG(seed, 1))
		r := newRoom(t, "r", nil)
		seq := uint64(0)
		last := map[string]uint64{} // sender -> the seq of their last text
		apply := func(rec room.Record) {
			seq++
			r.Apply(seq, rec)
			if rec.Op == room.OpText {
				last[rec.User] = seq
			}
		}
		text := func() string {
			pieces := []string{"a", "é", "\"", "<", "\u2603", "\U0001F600", "\\"}
			var b strings.Builder
			for range prng.IntN(2000) {
				b.WriteString(pieces[prng.IntN(len(pieces))])
			}
			if prng.IntN(4) == 0 {
				b.WriteString("\r") // a CR whose LF may come in the next chunk
			}
			return b.String()
		}
		for i := range prng.IntN(120) {
			apply(room.Record{Op: room.OpText, User: fmt.Sprintf("l%d", i%7), Seq: uint64(i + 1), T: text() + "\n"})
		}
		for i := range prng.IntN(40) {
			apply(room.Record{Op: room.OpText, User: fmt.Sprintf("gone%02d", i), Seq: 1, T: text()})
		}
		for i := range prng.IntN(60) {
			u := fmt.Sprintf("u%02d", i)
			apply(room.Record{Op: room.OpJoin, User: u, Key: "n2/" + u, Node: "n2", Inc: 1})
			if prng.IntN(2) == 0 {
				apply(room.Record{Op: room.OpText, User: u, Seq: 1, T: text()})
			}
		}
		line, err := r.StateLine()
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(line)-1 > wire.MaxLine {
			t.Fatalf("seed %d: %d bytes, more than %d", seed, len(line)-1, wire.MaxLine)
		}
		m, err := wire.Decode(line[:len(line)-1])
		if err != nil {
			t.Fatal(err)
		}
		st, full := m.State, r.Text()
		if diff := cmp.Diff(st.Users, r.Users(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("seed %d: users (-got +want):\n%s", seed, diff)
		}
		kept := len(st.Lines)
		for i, l := range st.Lines {
			if w := full.Lines[len(full.Lines)-kept+i]; l.From != w.From || l.Text != w.Text {
				t.Fatalf("seed %d: line %d is not of the newest %d", seed, i, kept)
			}
		}
		inRoom := map[string]bool{}
		for _, u := range st.Users {
			inRoom[u] = true
			if _, ok := st.Live[u]; !ok {
				t.Fatalf("seed %d: user %s has no live entry", seed, u)
			}
		}
		var departed []string
		for from, l := range full.Live {
			if !inRoom[from] && (l != "" || full.Seqs[from] != 0) {
				departed = append(departed, from)
			}
		}
		slices.SortFunc(departed, func(a, b string) int {
			switch {
			case last[a] < last[b]:
				return -1
			case last[a] > last[b]:
				return 1
			}
			return strings.Compare(a, b)
		})
		// Departed senders' live lines become U+FFFD in that order (those
		// no longer than it stay), then, once every line is cut, the
		// senders go whole in that order.
		const lost = "\ufffd"
		linesCut := kept < len(full.Lines)
		livesCut, withLive, gone := 0, 0, 0
		for _, from := range departed {
			if len(full.Live[from]) <= len(lost) {
				continue
			}
			if l, ok := st.Live[from]; !ok || l == lost {
				if livesCut != withLive {
					t.Fatalf("seed %d: departed %s's line cut after one kept before it", seed, from)
				}
				livesCut++
			} else if l != full.Live[from] {
				t.Fatalf("seed %d: departed %s's line is %q, neither whole nor U+FFFD", seed, from, l)
			}
			withLive++
		}
		if linesCut && livesCut < withLive {
			t.Fatalf("seed %d: %d lines cut while %d departed senders keep their lines", seed, len(full.Lines)-kept, withLive-livesCut)
		}
		for i, from := range departed {
			_, hasSeq := st.Seqs[from]
			_, hasLive := st.Live[from]
			switch {
			case !hasSeq && !hasLive && !st.PendingCR[from]:
				if gone != i {
					t.Fatalf("seed %d: departed %s gone after one kept before it", seed, from)
				}
				gone++
			case !hasSeq || !hasLive && full.Live[from] != "":
				t.Fatalf("seed %d: departed %s lost part of their entry (seq %v, live %v)", seed, from, hasSeq, hasLive)
			}
		}
		if gone > 0 && kept > 0 {
			t.Fatalf("seed %d: %d departed senders gone while %d lines stay", seed, gone, kept)
		}
		// Pending CRs are kept or go all at once, after the departed.
		crsCut := false
		for from := range full.PendingCR {
			if !st.PendingCR[from] && (inRoom[from] || slices.Contains(departed[gone:], from)) {
				crsCut = true
			}
		}
		for from := range st.PendingCR {
			if !full.PendingCR[from] {
				t.Fatalf("seed %d: the state has a pending CR of %s, the room has none", seed, from)
			}
			if crsCut {
				t.Fatalf("seed %d: %s's pending CR kept while another's went", seed, from)
			}
		}
		if crsCut && (gone < len(departed) || kept > 0) {
			t.Fatalf("seed %d: pending CRs cut before the lines and departed senders", seed)
		}
		for from, l := range st.Live {
			if l == full.Live[from] || !inRoom[from] {
				continue
			}
			if gone < len(departed) || kept > 0 || len(st.PendingCR) > 0 {
				t.Fatalf("seed %d: live line of %s cut before the lines, departed senders and pending CRs", seed, from)
			}
			tail, ok := strings.CutPrefix(l, lost)
			if !ok || !strings.HasSuffix(full.Live[from], tail) || !utf8.ValidString(tail) {
				t.Fatalf("seed %d: live line of %s cut to %q, not U+FFFD and a tail", seed, from, l)
			}
		}
	}
}

// At most MaxLive chunks of one sender wait; the rest come through the
// stream. A reader gets every chunk once and in order either way.
func TestLiveCap(t *testing.T) {
	var got []uint64
	r := newRoom(t, "r", room.SinkFunc(func(_ string, line []byte) {
		m, err := wire.Decode(line[:len(line)-1])
		if err != nil {
			t.Fatal(err)
		}
		if m.Op == wire.OpText {
			got = append(got, m.Seq)
		}
	}))
	r.Register("n1/1", "bob")
	r.Apply(1, room.Record{Op: room.OpJoin, User: "bob", Key: "n1/1", Node: "n1", Inc: 1})
	if _, err := r.Activate("n1/1"); err != nil {
		t.Fatal(err)
	}
	const n = room.MaxLive + 44
	chunk := func(i int) room.Record {
		return room.Record{Op: room.OpText, User: "ann", Key: "n2/1", Seq: uint64(i), T: "x"}
	}
	shown := 0
	for i := 1; i <= n; i++ {
		shown += r.ApplyLive(chunk(i))
	}
	if shown != room.MaxLive || r.Waiting() != room.MaxLive {
		t.Fatalf("shown %d, waiting %d; want %d", shown, r.Waiting(), room.MaxLive)
	}
	for i := 1; i <= n; i++ {
		r.Apply(uint64(i+1), chunk(i))
		r.ApplyLive(chunk(i)) // late copies change nothing
	}
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("seqs delivered (-got +want):\n%s", diff)
	}
	if r.Waiting() != 0 {
		t.Errorf("%d chunks still wait", r.Waiting())
	}
}

// TestUserSessionsBounded: a room admits MaxUserSessions sessions of one
// user; the next join of that user is refused (ErrUserSessions, on the
// node of the session and as a non-member everywhere), another user
// still joins, and a place freed by a leave is taken again.
func TestUserSessionsBounded(t *testing.T) {
	r, err := room.New("r", room.Config{Self: "n1", Incarnation: 1, MaxUserSessions: 2})
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	join := func(key, user string) error {
		t.Helper()
		r.Register(key, user)
		seq++
		r.Apply(seq, room.Record{Op: room.OpJoin, Key: key, User: user, Node: "n1", Inc: 1})
		_, err := r.Activate(key)
		return err
	}
	for _, key := range []string{"n1/1", "n1/2"} {
		if err := join(key, "ann"); err != nil {
			t.Fatalf("ann's join from %s: %v", key, err)
		}
	}
	if err := join("n1/3", "ann"); !errors.Is(err, room.ErrUserSessions) {
		t.Fatalf("ann's third join: %v, want ErrUserSessions", err)
	}
	r.Detach("n1/3")
	if _, ok := r.Members()["n1/3"]; ok || len(r.Members()) != 2 {
		t.Errorf("members after the refused join: %v, want n1/1 and n1/2", r.Members())
	}
	if err := join("n1/4", "bob"); err != nil {
		t.Errorf("bob's join: %v", err)
	}
	r.MarkLeaving("n1/1")
	seq++
	r.Apply(seq, room.Record{Op: room.OpLeave, Keys: []string{"n1/1"}})
	r.Detach("n1/1")
	if err := join("n1/5", "ann"); err != nil {
		t.Errorf("ann's join after one of hers left: %v", err)
	}
}

// stateCounter counts what the local session n1/1 gets: states, and
// other deliveries.
type stateCounter struct {
	states, others int
	last           []byte // the last state
}

func (c *stateCounter) Deliver(key string, line []byte) {
	if key != "n1/1" {
		return
	}
	if m, err := wire.Decode(line[:len(line)-1]); err == nil && m.Op == wire.OpRoom {
		c.states++
		c.last = line
		return
	}
	c.others++
}

// crossingRoom is a room with bob's active local session n1/1 and the
// given users each in it from two sessions of node n2; reconcile calls
// Reconcile with both nodes up, and cross has user's two devices send
// their next seq, the phone's shown live, the laptop's stored first, so
// that the phone's is moved.
func crossingRoom(t *testing.T, users ...string) (r *room.Room, c *stateCounter, reconcile func(), cross func(user string)) {
	t.Helper()
	c = &stateCounter{}
	r = newRoom(t, "r", c)
	seq := uint64(0)
	apply := func(rec room.Record) room.Result {
		seq++
		return r.Apply(seq, rec)
	}
	r.Register("n1/1", "bob")
	apply(room.Record{Op: room.OpJoin, Key: "n1/1", User: "bob", Node: "n1", Inc: 1})
	if _, err := r.Activate("n1/1"); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		apply(room.Record{Op: room.OpJoin, Key: "n2/" + u + "1", User: u, Node: "n2", Inc: 1})
		apply(room.Record{Op: room.OpJoin, Key: "n2/" + u + "2", User: u, Node: "n2", Inc: 1})
	}
	now := time.Unix(1000, 0)
	view := room.NewView([]directory.Node{{ID: "n1", Status: directory.Up}, {ID: "n2", Status: directory.Up}},
		map[string]uint64{"n1": 1, "n2": 1})
	reconcile = func() {
		now = now.Add(400 * time.Millisecond)
		r.Reconcile(now, view)
	}
	cross = func(user string) {
		s := r.Seq(user) + 1
		phone := room.Record{Op: room.OpText, Key: "n2/" + user + "1", User: user, Seq: s, T: "p", Dev: "phone"}
		r.ApplyLive(phone)
		apply(room.Record{Op: room.OpText, Key: "n2/" + user + "2", User: user, Seq: s, T: "l", Dev: "laptop"})
		if res := apply(phone); res.Moved != 1 {
			t.Fatalf("%s's phone chunk moved %d times, want once", user, res.Moved)
		}
	}
	return r, c, reconcile, cross
}

// A user whose two sessions keep sending the same seqs, so that the
// room moves one chunk of each pair after it was shown live, costs the
// other members a state for the first and then for few more: the user's
// live text is held back after each (LiveHold chunks, doubling). Without
// the hold, a member got a state for every pair, one a reconcile.
func TestCrossingChunksCostFewStates(t *testing.T) {
	r, c, reconcile, cross := crossingRoom(t, "mal")
	const rounds = 200
	for range rounds {
		cross("mal")
		reconcile()
	}
	if c.states > 8 {
		t.Errorf("%d states to bob for %d pairs of crossing chunks; want at most 8", c.states, rounds)
	}
	if c.others < rounds {
		t.Errorf("bob got %d deliveries of %d pairs: the stream must bring the chunks held back", c.others, rounds)
	}
	m, err := wire.Decode(c.last[:len(c.last)-1])
	if err != nil {
		t.Fatal(err)
	}
	if m.State.Seqs["mal"] > r.Seq("mal") {
		t.Errorf("bob's last state has mal at seq %d, above the room's %d", m.State.Seqs["mal"], r.Seq("mal"))
	}
}

// Text shown live and never stored from several senders at once costs
// each member at most one state between two calls of Reconcile: a member
// sent one is owed the next and gets no text meanwhile; Reconcile sends
// it, and the member's view then holds the room's text.
func TestUnstoredStatesBounded(t *testing.T) {
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"}
	r, c, reconcile, cross := crossingRoom(t, users...)
	cross(users[0]) // bob gets a state
	cross(users[1]) // and is owed the next
	if c.states != 1 {
		t.Fatalf("%d states after two chunks shown and moved, want 1", c.states)
	}
	owedFrom := c.others
	for _, u := range users[2:] {
		cross(u)
	}
	if c.states != 1 || c.others != owedFrom {
		t.Errorf("while owed a state bob got %d more states and %d deliveries; want none", c.states-1, c.others-owedFrom)
	}
	reconcile()
	if c.states != 2 {
		t.Fatalf("%d states after Reconcile, want 2", c.states)
	}
	m, err := wire.Decode(c.last[:len(c.last)-1])
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if got, want := m.State.Live[u], r.Text().Live[u]; got != want || m.State.Seqs[u] != 2 {
			t.Errorf("the owed state shows %s's line %q at seq %d; the room has %q at 2", u, got, m.State.Seqs[u], want)
		}
	}
}
