package room_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/room"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// Limits of the bus a node stores snapshots on, less the 4 KiB the node
// leaves for the message's headers: the embedded server's 8 MiB and
// nats-server's default 1 MiB.
const (
	embeddedLimit = 8<<20 - 4096
	externalLimit = 1<<20 - 4096
)

// quotes is a line of rtt.MaxLineBytes characters that JSON escapes each
// into two bytes: the largest unfinished line a sender can leave.
var quotes = strings.Repeat(`"`, rtt.MaxLineBytes)

// crowdedRoom returns a room whose state outgrows any bus: 100 completed
// lines and, from stream sequence 1 on, departed senders d0000, d0001,
// ... (each of whom typed once, in that order) each leaving an unfinished
// line of quotes, then present users u00..u09 with unfinished lines of
// their own. Departed senders are named against their order, so that an
// order by name would cut others than an order by age.
func crowdedRoom(t testing.TB, departed int) *room.Room {
	t.Helper()
	cfg := room.DefaultConfig("n1", 1)
	r, err := room.New("crowd", cfg)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	apply := func(rec room.Record) {
		seq++
		if res := r.Apply(seq, rec); res.Skipped || res.Duplicates > 0 {
			t.Fatalf("record %d %+v: %+v", seq, rec, res)
		}
	}
	for i := range departed {
		from := departedName(departed, i)
		apply(room.Record{Op: room.OpText, User: from, Key: "n2/" + from, Seq: 1, T: quotes})
	}
	for i := range 100 {
		apply(room.Record{Op: room.OpText, User: "scribe", Key: "n2/scribe", Seq: uint64(i + 1), T: quotes + "\n"})
	}
	for i := range 10 {
		u := fmt.Sprintf("u%02d", i)
		apply(room.Record{Op: room.OpJoin, User: u, Key: "n3/" + u, Node: "n3", Inc: 1})
		apply(room.Record{Op: room.OpText, User: u, Key: "n3/" + u, Seq: 1, T: fmt.Sprintf("%s is typing %s", u, strings.Repeat("é", 1000))})
	}
	return r
}

// departedName is the name of the i-th of n departed senders: the later
// they typed, the earlier their name sorts.
func departedName(n, i int) string { return fmt.Sprintf("d%04d", n-1-i) }

// A room whose 985 departed senders each left an unfinished line of
// 4 KiB (with the room's 11 others, about as many as it remembers) has a full snapshot larger than the bus carries. Within a limit
// it cuts the departed senders' unfinished lines to a U+FFFD, the oldest first, and
// then the oldest completed lines, keeping every seq, every member and
// the members' unfinished lines; it restores, and the restored room gives
// the same snapshot again, byte for byte.
func TestSnapshotWithinDepartedSenders(t *testing.T) {
	const departed = 985
	r := crowdedRoom(t, departed)
	full, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(full) <= embeddedLimit {
		t.Fatalf("the full snapshot is %d bytes, within %d: the room does not test what it should", len(full), embeddedLimit)
	}
	want := r.Text()
	const smallLimit = 512 << 10
	for _, limit := range []int{embeddedLimit, externalLimit, smallLimit} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			data, err := r.SnapshotWithin(limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) > limit {
				t.Fatalf("snapshot of %d bytes, limit %d", len(data), limit)
			}
			got, err := room.Restore("crowd", data, room.DefaultConfig("n2", 1))
			if err != nil {
				t.Fatal(err)
			}
			st := got.Text()
			if diff := cmp.Diff(st.Seqs, want.Seqs); diff != "" {
				t.Errorf("seqs (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(got.Members(), r.Members()); diff != "" {
				t.Errorf("members (-got +want):\n%s", diff)
			}
			for _, u := range r.Users() {
				if st.Live[u] != want.Live[u] {
					t.Errorf("member %s types %.20q..., want %.20q...", u, st.Live[u], want.Live[u])
				}
			}
			// The departed senders who keep their line are the last to
			// have typed: a suffix of the order they typed in.
			kept := 0
			for i := range departed {
				from := departedName(departed, i)
				switch line := st.Live[from]; {
				case line == quotes:
					kept++
				case line != "\uFFFD":
					t.Fatalf("departed %s keeps %q of their line, want it whole or a U+FFFD", from, line)
				case kept > 0:
					t.Fatalf("departed %s lost their line, and %s who typed before kept theirs", from, departedName(departed, i-kept))
				}
			}
			if kept == departed {
				t.Errorf("every departed sender keeps their line")
			}
			if len(st.Lines) < len(want.Lines) && kept > 0 {
				t.Errorf("%d completed lines cut while %d departed senders keep their lines", len(want.Lines)-len(st.Lines), kept)
			}
			if limit == embeddedLimit && (kept == 0 || len(st.Lines) != len(want.Lines)) {
				t.Errorf("%d departed senders keep their lines and %d of %d completed lines are kept: within 8 MiB some of the former and all of the latter fit",
					kept, len(st.Lines), len(want.Lines))
			}
			if limit == smallLimit && len(st.Lines) == len(want.Lines) {
				t.Errorf("all %d completed lines are kept within %d bytes: they take more", len(want.Lines), limit)
			}
			if !slices.Equal(st.Lines, want.Lines[len(want.Lines)-len(st.Lines):]) {
				t.Errorf("the completed lines kept are not the newest")
			}
			again, err := got.SnapshotWithin(limit)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(data) {
				t.Errorf("the restored room's snapshot differs from the one it was restored from")
			}
		})
	}
}

// A joiner gets the same state from a room restored from a cut snapshot
// as from the room that applied every record: the snapshot cuts in the
// state line's order, and only what the state line cuts too.
func TestStateLineAgreesWithSnapshot(t *testing.T) {
	r := crowdedRoom(t, 985)
	want, err := r.StateLine()
	if err != nil {
		t.Fatal(err)
	}
	if len(want)-1 > wire.MaxLine {
		t.Fatalf("state line of %d bytes, more than %d", len(want)-1, wire.MaxLine)
	}
	for _, limit := range []int{embeddedLimit, externalLimit, 512 << 10} {
		data, err := r.SnapshotWithin(limit)
		if err != nil {
			t.Fatal(err)
		}
		restored, err := room.Restore("crowd", data, room.DefaultConfig("n2", 1))
		if err != nil {
			t.Fatal(err)
		}
		got, err := restored.StateLine()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("limit %d: the state line of the restored room differs from the room's:\n%.300s...\n%.300s...", limit, got, want)
		}
	}
}

// Members alone larger than the limit: nothing the snapshot may cut is
// enough, and the error says so.
func TestSnapshotWithinTooLarge(t *testing.T) {
	r := newRoom(t, "big", nil)
	for i := range 100 {
		u := fmt.Sprintf("user%03d", i)
		r.Apply(uint64(i+1), room.Record{Op: room.OpJoin, User: u, Key: "n2/" + u, Node: "n2", Inc: 1})
	}
	data, err := r.SnapshotWithin(1000)
	if !errors.Is(err, room.ErrSnapshotTooLarge) {
		t.Fatalf("SnapshotWithin(1000) = %d bytes, %v; want ErrSnapshotTooLarge", len(data), err)
	}
	if data, err := r.SnapshotWithin(0); err != nil || len(data) <= 1000 {
		t.Errorf("SnapshotWithin(0) = %d bytes, %v; want the whole snapshot", len(data), err)
	}
}

// With nothing else left to cut, the members' own unfinished lines lose
// their start, marked by a U+FFFD, and the snapshot restores.
func TestSnapshotWithinCutsMembersLines(t *testing.T) {
	r := newRoom(t, "long", nil)
	seq := uint64(0)
	for i := range 20 {
		u := fmt.Sprintf("u%02d", i)
		seq++
		r.Apply(seq, room.Record{Op: room.OpJoin, User: u, Key: "n2/" + u, Node: "n2", Inc: 1})
		seq++
		r.Apply(seq, room.Record{Op: room.OpText, User: u, Key: "n2/" + u, Seq: 1, T: strings.Repeat("ü", 2000) + "end"})
	}
	const limit = 20 << 10
	data, err := r.SnapshotWithin(limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > limit {
		t.Fatalf("snapshot of %d bytes, limit %d", len(data), limit)
	}
	got, err := room.Restore("long", data, room.DefaultConfig("n1", 1))
	if err != nil {
		t.Fatal(err)
	}
	for u, line := range got.Text().Live {
		if !strings.HasPrefix(line, "\ufffd") || !strings.HasSuffix(line, "üend") || len(line) > 1024 {
			t.Errorf("%s's line is %d bytes, %.10q...%q; want its end after a U+FFFD", u, len(line), line, line[max(len(line)-10, 0):])
		}
	}
	if got.Seq("u07") != 1 || len(got.Users()) != 20 {
		t.Errorf("restored room: u07 at seq %d, users %q", got.Seq("u07"), got.Users())
	}
}

// A version 2 snapshot written before senders carried "at" loads; cut, its
// departed senders go in name order, the same on every node.
func TestSnapshotWithoutAt(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"v":2,"seq":9,"lines":[],"senders":{`)
	for i := range 5 {
		fmt.Fprintf(&b, `"d%d":{"live":"%s","seq":1},`, i, strings.Repeat("x", 1000))
	}
	b.WriteString(`"ann":{"live":"hi","seq":3}},"members":{"n1/1":{"user":"ann","node":"n1","inc":1}}}`)
	r, err := room.Restore("old", []byte(b.String()), room.DefaultConfig("n1", 1))
	if err != nil {
		t.Fatal(err)
	}
	data, err := r.SnapshotWithin(3000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := room.Restore("old", data, room.DefaultConfig("n1", 1))
	if err != nil {
		t.Fatal(err)
	}
	live := got.Text().Live
	var kept []string
	for from, line := range live {
		if line != "\uFFFD" && from != "ann" {
			kept = append(kept, from)
		}
	}
	slices.Sort(kept)
	if want := []string{"d3", "d4"}; !slices.Equal(kept, want) || live["ann"] != "hi" {
		t.Errorf("kept the lines of %q and ann's %q; want %q and %q", kept, live["ann"], want, "hi")
	}
}

// TestSizeAtBounds: the size of a room at its bounds grows with each
// bound and with the names' length, and holds at least every member's
// escaped name.
func TestSizeAtBounds(t *testing.T) {
	cfg := room.Config{Self: "n1", MaxUsers: 10, MaxUserSessions: 2, MaxSenders: 30}
	base, err := room.SizeAtBounds(cfg, 64, 24)
	if err != nil {
		t.Fatal(err)
	}
	more := cfg
	more.MaxUserSessions = 4
	if s, _ := room.SizeAtBounds(more, 64, 24); s <= base {
		t.Errorf("4 sessions a user: %d bytes, want more than %d with 2", s, base)
	}
	more = cfg
	more.MaxSenders = 60
	if s, _ := room.SizeAtBounds(more, 64, 24); s <= base {
		t.Errorf("60 senders: %d bytes, want more than %d with 30", s, base)
	}
	if s, _ := room.SizeAtBounds(cfg, 8, 24); s >= base {
		t.Errorf("8-byte names: %d bytes, want fewer than %d with 64", s, base)
	}
	// Every member's name alone, escaped, is in it.
	if min := cfg.MaxUsers * cfg.MaxUserSessions * 2 * 62; base < min {
		t.Errorf("%d bytes, want at least %d for the members' names", base, min)
	}
	// The figure docs/rooms.md gives, with -v.
	if s, err := room.SizeAtBounds(room.DefaultConfig("n1", 1), 64, 24); err == nil {
		t.Logf("at the defaults' bounds: %d bytes", s)
	}
}

// TestRestoreChecksRecentChunks: a snapshot's recent chunks of a user
// (the first version of devices.go, before the devices themselves) load
// only if a room could have kept them; otherwise the snapshot is unusable
// and the room is rebuilt from its stream.
func TestRestoreChecksRecentChunks(t *testing.T) {
	snap := func(recent string) string {
		return `{"v":2,"seq":9,"lines":[],"senders":{"ann":{"live":"x","seq":4,"recent":` + recent +
			`}},"members":{"n1/1":{"user":"ann","node":"n1","inc":1}}}`
	}
	checkRestores(t, []restoreCase{
		{"kept", snap(`[{"seq":1,"sent":1,"dev":7},{"seq":3,"sent":2,"dev":8},{"seq":4,"sent":4,"dev":7}]`), true},
		{"not rising", snap(`[{"seq":3,"sent":3,"dev":7},{"seq":3,"sent":2,"dev":8}]`), false},
		{"sent above stored", snap(`[{"seq":2,"sent":3,"dev":7}]`), false},
		{"above the user's seq", snap(`[{"seq":5,"sent":5,"dev":7}]`), false},
		{"seq 0", snap(`[{"seq":0,"sent":0,"dev":7}]`), false},
		{"too many", snap(`[` + strings.Repeat(`{"seq":1,"sent":1,"dev":7},`, 16) + `{"seq":2,"sent":2,"dev":7}]`), false},
		{"user not in the room", strings.Replace(snap(`[{"seq":1,"sent":1,"dev":7}]`), `"user":"ann"`, `"user":"bob"`, 1), false},
	})
}

// TestRestoreChecksDevices: a snapshot's devices of a user (devices.go)
// load only if a room could have kept them; otherwise the snapshot is
// unusable and the room is rebuilt from its stream.
func TestRestoreChecksDevices(t *testing.T) {
	snap := func(devices string) string {
		return `{"v":2,"seq":9,"lines":[],"senders":{"ann":{"live":"x","seq":4,` + devices +
			`}},"members":{"n1/1":{"user":"ann","node":"n1","inc":1}}}`
	}
	// left makes ann a user who left the room (bob is in it instead).
	left := func(data string) string {
		return strings.Replace(data, `"user":"ann"`, `"user":"bob"`, 1)
	}
	checkRestores(t, []restoreCase{
		{"kept", snap(`"devices":[{"dev":7,"sent":2},{"dev":8,"sent":4}],"floor":1`), true},
		{"no floor", snap(`"devices":[{"dev":7,"sent":4}]`), true},
		{"floor above the user's seq", snap(`"devices":[{"dev":7,"sent":4}],"floor":5`), false},
		{"sent above the user's seq", snap(`"devices":[{"dev":7,"sent":5}]`), false},
		{"sent 0", snap(`"devices":[{"dev":7,"sent":0}]`), false},
		{"no name", snap(`"devices":[{"dev":0,"sent":1}]`), false},
		{"twice", snap(`"devices":[{"dev":7,"sent":1},{"dev":7,"sent":2}]`), false},
		{"too many", snap(`"devices":[` + strings.TrimSuffix(strings.Repeat(`{"dev":7,"sent":1},`, room.RecentDevices+1), ",") + `]`), false},
		{"user not in the room", left(snap(`"devices":[{"dev":7,"sent":1}]`)), false},
		{"left", left(snap(`"left":[{"dev":7,"sent":2},{"dev":8,"sent":4}],"floor":1`)), true},
		{"left, of a user in the room", snap(`"left":[{"dev":7,"sent":4}]`), false},
		{"left and in the room", snap(`"devices":[{"dev":7,"sent":4}],"left":[{"dev":8,"sent":4}]`), false},
		{"left, too many", left(snap(`"left":[` + strings.TrimSuffix(strings.Repeat(`{"dev":7,"sent":1},`, room.LeftDevices+1), ",") + `]`)), false},
		{"left, floor above the user's seq", left(snap(`"left":[{"dev":7,"sent":4}],"floor":5`)), false},
	})
}

// restoreCase is a snapshot, and whether a room restores from it.
type restoreCase struct {
	name, data string
	ok         bool
}

// checkRestores restores each case's snapshot: the ok ones must load,
// the others must fail with ErrSnapshot.
func checkRestores(t *testing.T, cases []restoreCase) {
	t.Helper()
	cfg := room.DefaultConfig("n1", 1)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := room.Restore("r", []byte(tc.data), cfg)
			if tc.ok && err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if !tc.ok && !errors.Is(err, room.ErrSnapshot) {
				t.Fatalf("Restore: %v, want ErrSnapshot", err)
			}
		})
	}
}

// TestRestoreFirstVersionDevices: a snapshot of the first version of
// devices (the last chunks from devices, "recent") restores as the
// devices it implies: each device's highest sent seq, and the seq before
// the oldest chunk for the floor. Chunks after it are judged by them.
func TestRestoreFirstVersionDevices(t *testing.T) {
	hash := func(dev string) uint64 {
		h := fnv.New64a()
		h.Write([]byte(dev))
		return h.Sum64()
	}
	data := fmt.Sprintf(`{"v":2,"seq":9,"lines":[],"senders":{"ann":{"live":"abcd","seq":4,"recent":[`+
		`{"seq":3,"sent":3,"dev":%d},{"seq":4,"sent":3,"dev":%d}]}},"members":{"n1/1":{"user":"ann","node":"n1","inc":1}}}`,
		hash("phone"), hash("laptop"))
	r, err := room.Restore("r", []byte(data), room.DefaultConfig("n1", 1))
	if err != nil {
		t.Fatal(err)
	}
	seq := r.Applied()
	for _, tc := range []struct {
		dev       string
		sent      uint64
		want      string // "resend", "moved" or "new"
		wantStore uint64 // ann's seq after it
	}{
		{"phone", 3, "resend", 4},  // the phone stored up to 3
		{"laptop", 3, "resend", 4}, // so did the laptop (moved to 4)
		{"tablet", 2, "resend", 4}, // not known, at or below the floor (2)
		{"tablet", 3, "moved", 5},  // not known, above the floor
		{"laptop", 4, "moved", 6},  // above the laptop's highest
		{"phone", 7, "new", 7},     // above ann's last
	} {
		seq++
		res := r.Apply(seq, room.Record{Op: room.OpText, User: "ann", Key: "n1/1", Seq: tc.sent, T: "x", Dev: tc.dev})
		got := "new"
		switch {
		case res.Duplicates == 1:
			got = "resend"
		case res.Moved == 1:
			got = "moved"
		}
		if got != tc.want || r.Seq("ann") != tc.wantStore {
			t.Errorf("%s's seq %d: %s, ann at %d; want %s, ann at %d", tc.dev, tc.sent, got, r.Seq("ann"), tc.want, tc.wantStore)
		}
	}
}

// A room restored from a cut snapshot forgets the same senders as the
// room that applied the records: a departed sender whose unfinished line
// was cut still has an unfinished line (a U+FFFD), not an empty one,
// which would put them among the senders forgotten first.
func TestCutSnapshotForgetsTheSameSenders(t *testing.T) {
	cfg := room.Config{Self: "n1", MaxUsers: 2, MaxSenders: 4}
	r, err := room.New("r", cfg)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	apply := func(rooms []*room.Room, rec room.Record) {
		seq++
		for _, r := range rooms {
			r.Apply(seq, rec)
		}
	}
	// a leaves in the middle of a long line; b, c and z after a
	// completed one. The room remembers 4 senders.
	for _, u := range []struct{ user, text string }{{"a", strings.Repeat("x", 1000)}, {"b", "hi\n"}, {"c", "hi\n"}, {"z", "hi\n"}} {
		key := "n2/" + u.user
		apply([]*room.Room{r}, room.Record{Op: room.OpJoin, Key: key, User: u.user, Node: "n2", Inc: 1})
		apply([]*room.Room{r}, room.Record{Op: room.OpText, Key: key, User: u.user, Seq: 1, T: u.text})
		apply([]*room.Room{r}, room.Record{Op: room.OpLeave, Keys: []string{key}})
	}
	full, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := r.SnapshotWithin(len(full) - 500) // a's line cut
	if err != nil {
		t.Fatal(err)
	}
	cut, err := room.Restore("r", data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A fifth sender: the room forgets one of the departed.
	apply([]*room.Room{r, cut}, room.Record{Op: room.OpText, Key: "n2/e", User: "e", Seq: 1, T: "hello"})
	for _, u := range []string{"a", "b", "c", "z"} {
		if got, want := cut.Seq(u), r.Seq(u); got != want {
			t.Errorf("%s: seq %d in the room restored from the cut snapshot, %d in the room that applied the records", u, got, want)
		}
	}
}

// A sender the room forgets (Config.MaxSenders) takes their devices
// with them: a room restored from a snapshot written after that, which
// holds nothing of the sender, judges the sender's chunks when they come
// back as the room that applied the records does.
func TestForgottenSenderLeavesNoDevices(t *testing.T) {
	cfg := room.Config{Self: "n1", MaxUsers: 2, MaxSenders: 4}
	r, err := room.New("r", cfg)
	if err != nil {
		t.Fatal(err)
	}
	rooms := []*room.Room{r}
	seq := uint64(0)
	apply := func(rec room.Record) room.Result {
		seq++
		var res room.Result
		for _, r := range rooms {
			res = r.Apply(seq, rec)
		}
		return res
	}
	// ann types from her phone and leaves: the room keeps the phone.
	apply(room.Record{Op: room.OpJoin, Key: "n2/1", User: "ann", Node: "n2", Inc: 1})
	apply(room.Record{Op: room.OpText, Key: "n2/1", User: "ann", Seq: 1, T: "a", Dev: "phone"})
	apply(room.Record{Op: room.OpText, Key: "n2/1", User: "ann", Seq: 2, T: "b\n", Dev: "phone"})
	apply(room.Record{Op: room.OpLeave, Keys: []string{"n2/1"}})
	// Four more senders: the room forgets ann, whose line is complete.
	for _, u := range []string{"b", "c", "d", "e"} {
		apply(room.Record{Op: room.OpText, Key: "n3/" + u, User: u, Seq: 1, T: "x\n"})
	}
	if s := r.Seq("ann"); s != 0 {
		t.Fatalf("ann at seq %d, want forgotten", s)
	}
	_, restored := snapshotAndRestore(t, r, cfg)
	rooms = append(rooms, restored)
	// ann comes back and counts from 1 on her laptop; then her phone
	// sends 1, which it never sent since she came back: moved on both.
	apply(room.Record{Op: room.OpJoin, Key: "n2/2", User: "ann", Node: "n2", Inc: 1})
	apply(room.Record{Op: room.OpText, Key: "n2/2", User: "ann", Seq: 1, T: "c", Dev: "laptop"})
	apply(room.Record{Op: room.OpText, Key: "n2/2", User: "ann", Seq: 2, T: "d", Dev: "laptop"})
	apply(room.Record{Op: room.OpText, Key: "n2/3", User: "ann", Seq: 1, T: "e", Dev: "phone"})
	for i, r := range rooms {
		if got := r.Seq("ann"); got != 3 {
			t.Errorf("room %d (1: restored): ann at seq %d, want 3 (the phone's chunk moved)", i, got)
		}
	}
}

// The room keeps devices for at most MaxUsers users who left, those
// whose text came last: a room with few participants and many departed
// senders keeps a small snapshot. A restore keeps the same ones.
func TestLeftDevicesBounded(t *testing.T) {
	cfg := room.Config{Self: "n1", MaxUsers: 2}
	r, err := room.New("r", cfg)
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	for _, u := range []string{"ann", "bob", "cal"} {
		for _, rec := range []room.Record{
			{Op: room.OpJoin, Key: "n2/" + u, User: u, Node: "n2", Inc: 1},
			{Op: room.OpText, Key: "n2/" + u, User: u, Seq: 1, T: "x", Dev: "phone"},
			{Op: room.OpLeave, Keys: []string{"n2/" + u}},
		} {
			seq++
			r.Apply(seq, rec)
		}
	}
	data, restored := snapshotAndRestore(t, r, cfg)
	again, err := restored.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Senders map[string]struct {
			Left []json.RawMessage `json:"left"`
		} `json:"senders"`
	}
	if err := json.Unmarshal(data, &snap); err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]int{"ann": 0, "bob": 1, "cal": 1} {
		if got := len(snap.Senders[u].Left); got != want {
			t.Errorf("%s: %d devices kept after leaving, want %d (ann typed first)", u, got, want)
		}
	}
	if !bytes.Equal(data, again) {
		t.Errorf("restored room's snapshot differs:\n%s\n%s", data, again)
	}
}

// snapshotAndRestore returns r's snapshot and the room restored from it
// with cfg.
func snapshotAndRestore(t *testing.T, r *room.Room, cfg room.Config) ([]byte, *room.Room) {
	t.Helper()
	data, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := room.Restore(r.Name(), data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data, restored
}
