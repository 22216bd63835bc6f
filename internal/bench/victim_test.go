package bench

import "testing"

func TestPickVictim(t *testing.T) {
	counts := map[string]int{"n1": 10, "n2": 30, "n3": 30}
	ids := []string{"n1", "n2", "n3"}
	tests := []struct {
		how  string
		draw int
		want string
	}{
		{"busiest", 0, "n2"}, // the first of the equals
		{"dns", 2, "n1"},     // the node whose responder is asked first
		{"random", 2, "n3"},
		{"random", 0, "n1"},
	}
	for _, tt := range tests {
		got := pickVictim(tt.how, counts, ids, func(n int) int {
			if n != len(ids) {
				t.Errorf("%s: drew among %d, want %d", tt.how, n, len(ids))
			}
			return tt.draw
		})
		if got != tt.want {
			t.Errorf("pickVictim(%s) with draw %d = %s, want %s", tt.how, tt.draw, got, tt.want)
		}
	}
	if got := pickVictim("busiest", counts, nil, nil); got != "" {
		t.Errorf("no nodes: %q, want none", got)
	}
}
