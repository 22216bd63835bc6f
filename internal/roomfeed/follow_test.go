package roomfeed

import (
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// event is one step of a transcript: a chunk (From, Seq, T), a presence
// change (User, Joined or Left) or a state.
type event struct {
	from  string
	seq   uint64
	t     string
	user  string
	join  bool
	leave bool
	state *wire.RoomState
}

// state builds a room state from "from:text" lines, live lines and seqs.
func state(users []string, lines []string, live map[string]string, seqs map[string]uint64) *wire.RoomState {
	st := &wire.RoomState{Live: live, Seqs: seqs, Users: users}
	for _, l := range lines {
		from, text, _ := strings.Cut(l, ":")
		st.Lines = append(st.Lines, wire.Line{From: from, Text: text})
	}
	return st
}

// The caller ann is sent what the others typed, once each; a state after
// a failover sends what ann missed, so that her view of each sender
// (the first state, then every text sent, applied in order) is the
// room's.
func TestFollowSendsWhatAFailoverMissed(t *testing.T) {
	users := []string{"ann", "bob", "cal"}
	first := state(users, []string{"bob:hello", "cal:hi"}, map[string]string{"bob": "wor", "cal": ""}, map[string]uint64{"bob": 3, "cal": 1})
	tests := []struct {
		name   string
		events []event
		want   []Text // all sent, in order
		last   *wire.RoomState
	}{
		{"text typed while away, live line finished and a new one begun",
			[]event{
				{from: "bob", seq: 4, t: "ld"},
				{state: state(users, []string{"bob:hello", "cal:hi", "bob:world", "bob:how are"}, map[string]string{"bob": "you"}, map[string]uint64{"bob": 6, "cal": 1})},
			},
			[]Text{{From: "bob", Text: "ld"}, {From: "bob", Text: "\u2028how are\u2028you"}}, nil},
		{"the live line edited while away: erased back to where it differs",
			[]event{
				{from: "bob", seq: 4, t: "x"}, // "worx"
				{state: state(users, []string{"bob:hello", "cal:hi", "bob:work"}, map[string]string{"bob": ""}, map[string]uint64{"bob": 6, "cal": 1})},
			},
			[]Text{{From: "bob", Text: "x"}, {From: "bob", Text: "\bk\u2028"}}, nil},
		{"erased by grapheme cluster",
			[]event{
				{from: "bob", seq: 4, t: "e\u0301"}, // "wore" and an acute accent
				{state: state(users, []string{"bob:hello", "cal:hi"}, map[string]string{"bob": "wore!"}, map[string]uint64{"bob": 6, "cal": 1})},
			},
			[]Text{{From: "bob", Text: "e\u0301"}, {From: "bob", Text: "\be!"}}, nil},
		{"a leave while away, and a newcomer who typed",
			[]event{
				{state: state([]string{"ann", "bob", "dan"}, []string{"bob:hello", "cal:hi", "dan:yo"}, map[string]string{"bob": "wor", "dan": "there"}, map[string]uint64{"bob": 3, "dan": 2})},
			},
			[]Text{{From: "dan", Text: "yo\u2028there"}, {From: "cal", Leave: true}}, nil},
		{"a chunk received again after the state is not sent twice",
			[]event{
				{state: state(users, []string{"bob:hello", "cal:hi"}, map[string]string{"bob": "wordy"}, map[string]uint64{"bob": 5, "cal": 1})},
				{from: "bob", seq: 4, t: "d"},
				{from: "bob", seq: 5, t: "y"},
				{from: "bob", seq: 6, t: "s"},
			},
			[]Text{{From: "bob", Text: "dy"}, {From: "bob", Text: "s"}}, state(users, []string{"bob:hello", "cal:hi"}, map[string]string{"bob": "wordys"}, map[string]uint64{"bob": 6, "cal": 1})},
		{"a state no newer than what was sent sends nothing",
			[]event{
				{from: "bob", seq: 4, t: "ld"},
				{state: state(users, []string{"bob:hello", "cal:hi"}, map[string]string{"bob": "world"}, map[string]uint64{"bob": 4, "cal": 1})},
			},
			[]Text{{From: "bob", Text: "ld"}}, nil},
		{"a line typed twice running",
			[]event{
				{from: "bob", seq: 4, t: "\r\n"}, // "wor" ends
				{state: state(users, []string{"bob:hello", "cal:hi", "bob:wor", "bob:wor", "bob:ok"}, map[string]string{"bob": ""}, map[string]uint64{"bob": 7, "cal": 1})},
			},
			[]Text{{From: "bob", Text: "\r\n"}, {From: "bob", Text: "wor\u2028ok\u2028"}}, nil},
		{"the room moved on past what the caller had: marked",
			[]event{
				{state: state(users, []string{"bob:c", "bob:d"}, map[string]string{"bob": "e"}, map[string]uint64{"bob": 9, "cal": 1})},
			},
			[]Text{{From: "bob", Text: "\u2028\uFFFD\u2028c\u2028d\u2028e"}}, nil},
		{"a gap in seqs is marked as the room marks it",
			[]event{
				{from: "bob", seq: 5, t: "k"},
			},
			[]Text{{From: "bob", Text: "\uFFFDk"}}, state(users, []string{"bob:hello", "cal:hi"}, map[string]string{"bob": "wor\uFFFDk"}, map[string]uint64{"bob": 5, "cal": 1})},
		{"the caller's own text and joins are not sent; leaves are",
			[]event{
				{from: "ann", seq: 1, t: "me"},
				{user: "dan", join: true},
				{user: "dan", leave: true},
			},
			[]Text{{From: "dan", Leave: true}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFollow("ann")
			if got := f.state(first); len(got) != 0 {
				t.Fatalf("first state sent %#v, want nothing", got)
			}
			var sent []Text
			last := first
			for _, e := range tt.events {
				switch {
				case e.state != nil:
					sent = append(sent, f.state(e.state)...)
					last = e.state
				case e.user != "":
					if got, ok := f.presence(e.user, e.join); ok {
						sent = append(sent, got)
					}
				default:
					if got, ok := f.text(e.from, e.seq, e.t); ok {
						sent = append(sent, got)
					}
				}
			}
			if !slices.Equal(sent, tt.want) {
				t.Errorf("sent %#v\n want %#v", sent, tt.want)
			}
			if tt.last != nil {
				last = tt.last
			}
			// The caller's view of each sender is the room's.
			view, err := rtt.FromState(0, first.TextState())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sent {
				if !s.Leave {
					view.Apply(s.From, 0, s.Text)
				}
			}
			got := view.State()
			for from := range last.Seqs {
				if from == "ann" {
					continue
				}
				if got.Live[from] != last.Live[from] {
					t.Errorf("%s's line as the caller has it: %q, want %q", from, got.Live[from], last.Live[from])
				}
				have, want := linesOf(got.Lines, from), linesOf(last.TextState().Lines, from)
				if strings.Contains(strings.Join(have, "\n"), "\uFFFD") {
					continue // marked: what the room no longer holds is not compared
				}
				if !endsWith(have, want) {
					t.Errorf("%s's lines as the caller has them: %q, want them to end with %q", from, have, want)
				}
			}
		})
	}
}

func endsWith(have, want []string) bool {
	return len(have) >= len(want) && slices.Equal(have[len(have)-len(want):], want)
}
