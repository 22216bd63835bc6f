package node

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

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
	ids := map[string]string{}
	for _, c := range []struct {
		user, dev string
		seq       uint64
	}{
		{"a/b", "", 1}, {"a", "", 1}, {"a", "5", 1}, {"a/1", "", 5}, {"a", "", 15},
		{"a", "b", 1}, {"ab", "", 1}, {"a", "/1", 1}, {"a/1", "", 1}, {"ab", "c", 1}, {"a", "bc", 1},
	} {
		id := textID("r", c.user, c.dev, c.seq)
		what := fmt.Sprintf("user %q device %q seq %d", c.user, c.dev, c.seq)
		if other, ok := ids[id]; ok {
			t.Errorf("text IDs of %s and %s collide: %q", what, other, id)
		}
		ids[id] = what
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
