package node

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

func TestValidRoomName(t *testing.T) {
	tests := []struct {
		name, room string
		ok         bool
	}{
		{"simple", "lobby", true},
		{"all classes", "Ab-9_x.y", true},
		{"64 bytes", strings.Repeat("r", 64), true},
		{"empty", "", false},
		{"65 bytes", strings.Repeat("r", 65), false},
		{"space", "a b", false},
		{"star", "*", false},
		{"gt", ">", false},
		{"slash", "a/b", false},
		{"equals", "a=b", false},
		{"non-ascii", "café", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validRoomName(tt.room) == ""; got != tt.ok {
				t.Errorf("validRoomName(%q) ok = %v, want %v (%s)", tt.room, got, tt.ok, validRoomName(tt.room))
			}
		})
	}
}

// Distinct room names map to distinct subject tokens and message IDs.
func TestRoomTokensAreDistinct(t *testing.T) {
	rooms := []string{"a.b", "a_b", "a-b", "ab", "a..b", "a.b.", ".a"}
	seen := map[string]string{}
	for _, r := range rooms {
		tok := roomToken(r)
		if strings.ContainsAny(tok, ".*> ") {
			t.Errorf("token %q of %q is not one subject token", tok, r)
		}
		if other, ok := seen[tok]; ok {
			t.Errorf("rooms %q and %q share token %q", r, other, tok)
		}
		seen[tok] = r
	}
	if textID("r", "a/b", 1) == textID("r", "a", 1) {
		t.Error("text IDs collide")
	}
}

func TestTextLimiter(t *testing.T) {
	cfg := DefaultConfig()
	t0 := time.Unix(1000, 0)
	type step struct {
		at    time.Duration
		bytes int
		want  bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name:  "a paste of 4 KiB passes, and another, then bytes run out",
			steps: []step{{0, 4096, true}, {0, 4096, true}, {0, 64<<10 - 8192, true}, {0, 1, false}, {time.Second, 4096, true}, {time.Second, 4096, true}, {time.Second, 1, false}},
		},
		{
			name: "typing at 20 chunks a second goes on for ever",
			steps: func() []step {
				var s []step
				for i := range 1000 {
					s = append(s, step{time.Duration(i) * 50 * time.Millisecond, 1, true})
				}
				return s
			}(),
		},
		{
			name: "a flood spends the burst of 200 chunks",
			steps: func() []step {
				var s []step
				for range 200 {
					s = append(s, step{0, 1, true})
				}
				return append(s, step{0, 1, false}, step{30 * time.Millisecond, 1, true}, step{30 * time.Millisecond, 1, false})
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTextLimiter(cfg)
			for i, s := range tt.steps {
				if got := l.allow(t0.Add(s.at), s.bytes); got != s.want {
					t.Fatalf("step %d (%v, %d bytes): allow = %v, want %v", i, s.at, s.bytes, got, s.want)
				}
			}
		})
	}
}

// A state too large for one protocol line loses old lines first, then the
// beginning of the longest live line, and always fits.
func TestStateLineFits(t *testing.T) {
	n := &Node{cfg: DefaultConfig()}
	n.log = n.cfg.Logger
	if err := n.cfg.validate(); err != nil {
		t.Fatal(err)
	}
	f := &feed{e: &roomEngine{n: n, log: n.cfg.Logger}, room: "big", users: map[string]int{}}
	f.text = rtt.NewRoom(0)
	long := strings.Repeat("é", 2000) // 4000 bytes
	for i := range 100 {
		f.text.Apply("ann", uint64(i+1), long+"\n")
	}
	users := []string{"ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lee", "max", "ned", "oli", "pat", "quy", "ros", "sam", "tom"}
	for _, u := range users {
		f.users[u] = 1
		f.text.Apply(u, 1000, long)
	}
	line := f.stateLine()
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

	// A small room is sent whole.
	small := &feed{e: f.e, room: "small", users: map[string]int{"ann": 1}, text: rtt.NewRoom(0)}
	small.text.Apply("ann", 1, "hi\nthere")
	small.text.Apply("zed", 1, "gone but typing")
	var got wire.Message
	if err := json.Unmarshal(small.stateLine(), &got); err != nil {
		t.Fatal(err)
	}
	want := &wire.RoomState{
		Lines: []wire.Line{{From: "ann", Text: "hi"}},
		Live:  map[string]string{"ann": "there", "zed": "gone but typing"},
		Seqs:  map[string]uint64{"ann": 1, "zed": 1},
		Users: []string{"ann"},
	}
	if diff := cmp.Diff(got.State, want); diff != "" {
		t.Errorf("state (-got +want):\n%s", diff)
	}
}
