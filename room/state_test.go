package room_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/room"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// joiner loads a state line into a view, as a client does.
func joiner(t *testing.T, line []byte) (*rtt.Room, *wire.RoomState) {
	t.Helper()
	m, err := wire.Decode(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	if m.State == nil {
		t.Fatalf("no state in %s", line)
	}
	v, err := rtt.FromState(0, m.State.TextState())
	if err != nil {
		t.Fatal(err)
	}
	return v, m.State
}

// A sender's CR and LF in two chunks end one line, for a session that
// joins between them as for the room: the state says the CR is pending.
func TestStateCarriesPendingCR(t *testing.T) {
	for _, next := range []string{"\nworld", "world", "\n", "\r\nworld", "\b\nworld"} {
		t.Run(fmt.Sprintf("%q", next), func(t *testing.T) {
			r := newRoom(t, "r", nil)
			r.Apply(1, room.Record{Op: room.OpJoin, User: "ann", Key: "n2/1", Node: "n2", Inc: 1})
			r.Apply(2, room.Record{Op: room.OpText, User: "ann", Key: "n2/1", Seq: 1, T: "hello\r"})
			line, err := r.StateLine()
			if err != nil {
				t.Fatal(err)
			}
			v, st := joiner(t, line)
			if diff := cmp.Diff(st.PendingCR, map[string]bool{"ann": true}); diff != "" {
				t.Errorf("the state's pending CRs (-got +want):\n%s", diff)
			}
			r.Apply(3, room.Record{Op: room.OpText, User: "ann", Key: "n2/1", Seq: 2, T: next})
			v.Apply("ann", 2, next)
			if diff := cmp.Diff(v.State(), r.Text(), cmpEmpty); diff != "" {
				t.Errorf("the joiner's text (-got +want the room's):\n%s", diff)
			}
		})
	}
}

// When the state line must cut a departed sender's unfinished line, the
// joiner sees where the cut was: the line becomes a U+FFFD, or, once the
// sender goes whole, their next chunk counts as one after a gap. Either
// way the joiner completes the line as a room restored from a snapshot
// cut the same way does.
func TestStateMarksCutDepartedLine(t *testing.T) {
	for _, tt := range []struct {
		name     string
		departed int    // other senders who left mid-line after zed
		live     string // zed's line in the state
		seq      bool   // whether the state keeps zed's seq
	}{
		{"line cut", 0, "\uFFFD", true},
		{"sender cut whole", 500, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRoom(t, "r", nil)
			seq := uint64(0)
			apply := func(rec room.Record) {
				seq++
				r.Apply(seq, rec)
			}
			apply(room.Record{Op: room.OpJoin, User: "ann", Key: "n2/1", Node: "n2", Inc: 1})
			apply(room.Record{Op: room.OpJoin, User: "zed", Key: "n2/2", Node: "n2", Inc: 1})
			apply(room.Record{Op: room.OpText, User: "zed", Key: "n2/2", Seq: 1, T: "Hello wor"})
			apply(room.Record{Op: room.OpLeave, Keys: []string{"n2/2"}})
			for i := range tt.departed {
				apply(room.Record{Op: room.OpText, User: fmt.Sprintf("%s%04d", strings.Repeat("d", 60), i), Seq: 1, T: "typing"})
			}
			for i := range 100 { // more history than a line holds
				apply(room.Record{Op: room.OpText, User: "ann", Key: "n2/1", Seq: uint64(i + 1), T: strings.Repeat("x", 1000) + "\n"})
			}
			line, err := r.StateLine()
			if err != nil {
				t.Fatal(err)
			}
			v, st := joiner(t, line)
			if got := st.Live["zed"]; got != tt.live {
				t.Errorf("zed's line in the state is %q, want %q", got, tt.live)
			}
			if _, ok := st.Seqs["zed"]; ok != tt.seq {
				t.Errorf("the state keeps zed's seq: %v, want %v", ok, tt.seq)
			}

			// A room restored from a snapshot that cut zed's line.
			full, err := r.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			snap, err := r.SnapshotWithin(len(full) - 1)
			if err != nil {
				t.Fatal(err)
			}
			restored, err := room.Restore("r", snap, room.DefaultConfig("n3", 1))
			if err != nil {
				t.Fatal(err)
			}
			if got := restored.Text().Live["zed"]; got != "\uFFFD" {
				t.Fatalf("the restored room has zed's line as %q, want U+FFFD", got)
			}

			// zed comes back and finishes the line.
			back := []room.Record{
				{Op: room.OpJoin, User: "zed", Key: "n2/3", Node: "n2", Inc: 1},
				{Op: room.OpText, User: "zed", Key: "n2/3", Seq: 2, T: "ld\n"},
			}
			for _, rec := range back {
				apply(rec)
				restored.Apply(seq, rec)
			}
			res := v.Apply("zed", 2, "ld\n")
			want := restored.Text().Lines
			if len(res.Lines) != 1 || len(want) == 0 || res.Lines[0] != want[len(want)-1] || res.Lines[0].Text != "\uFFFDld" {
				t.Errorf("the joiner completed %q, the restored room %q; want both [{zed \uFFFDld}]", res.Lines, want[len(want)-1:])
			}
		})
	}
}

// A room whose members alone, each with a pending CR, outgrow one line
// still lets a session join: the pending CRs go, after the lines and the
// departed senders and before any live text, so the joiner at worst
// shows an extra empty line where a CR and its LF come apart.
func TestStateCutsPendingCRs(t *testing.T) {
	for _, tt := range []struct {
		users int
		crs   int // pending CRs kept
	}{{100, 100}, {140, 0}} {
		t.Run(fmt.Sprint(tt.users), func(t *testing.T) {
			cfg := room.DefaultConfig("n1", 1)
			cfg.MaxUsers = tt.users
			r, err := room.New("r", cfg)
			if err != nil {
				t.Fatal(err)
			}
			seq := uint64(0)
			for i := range tt.users {
				user, key := worstName(i), fmt.Sprintf("n2/%d", i)
				seq++
				r.Apply(seq, room.Record{Op: room.OpJoin, Key: key, User: user, Node: "n2", Inc: 1})
				seq++
				r.Apply(seq, room.Record{Op: room.OpText, Key: key, User: user, Seq: 1<<53 - 1, T: "typed\r"})
			}
			line, err := r.StateLine()
			if err != nil {
				t.Fatal(err)
			}
			if len(line)-1 > wire.MaxLine {
				t.Fatalf("state line of %d bytes, more than %d", len(line)-1, wire.MaxLine)
			}
			_, st := joiner(t, line)
			if len(st.Users) != tt.users || len(st.Seqs) != tt.users || len(st.PendingCR) != tt.crs {
				t.Errorf("the state has %d users, %d seqs and %d pending CRs; want %d, %d and %d",
					len(st.Users), len(st.Seqs), len(st.PendingCR), tt.users, tt.users, tt.crs)
			}
		})
	}
}
