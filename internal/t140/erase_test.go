package t140

import (
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/rtt"
)

// TestMixerLongErase: one chunk of 3,000 BACKSPACEs from the sender shown
// reaches the caller as 3,000 BACKSPACEs, and the caller's screen holds
// what the room holds. Before, the erasure alone counted more than
// MaxQueued (eight bytes a cluster): the caller got Missing and a new
// line instead, and the erased text stayed on their screen.
func TestMixerLongErase(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   int // BACKSPACEs sent
	}{
		{"ASCII", []string{strings.Repeat("a", 1000), strings.Repeat("a", 1000), strings.Repeat("a", 1000), strings.Repeat("\b", 3000)}, 3000},
		{"more than the line", []string{strings.Repeat("a", 4000), "xy" + strings.Repeat("\b", 4100)}, 4000},
		{"flags", []string{strings.Repeat("\U0001F1E6\U0001F1E8", rtt.MaxLineBytes/8), strings.Repeat("\b", 500)}, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkAgainstRoom(t, tt.chunks)
			if n := strings.Count(got, "\b"); n != tt.want || strings.Contains(got, Missing) {
				t.Errorf("sent %d BACKSPACEs (Missing: %t), want %d and no Missing", n, strings.Contains(got, Missing), tt.want)
			}
		})
	}
}

// BenchmarkMixerLongErase: 512 BACKSPACEs in one chunk after a full line
// of flags (regional indicators), the line rtt.Backspace reads from its
// start for every cluster; and, for comparison, one BACKSPACE at the end
// of a full ASCII line.
func BenchmarkMixerLongErase(b *testing.B) {
	b.Run("flags", func(b *testing.B) {
		full := strings.Repeat("\U0001F1E6\U0001F1E8", rtt.MaxLineBytes/8)
		erase := strings.Repeat("\b", 512)
		m := NewMixer(0)
		for b.Loop() {
			b.StopTimer()
			m.Write("mallory", full, testTime)
			m.Take(testTime)
			b.StartTimer()
			m.Write("mallory", erase, testTime)
			m.Take(testTime)
		}
	})
	b.Run("ascii-one", func(b *testing.B) {
		m := NewMixer(0)
		m.Write("ann", strings.Repeat("a", rtt.MaxLineBytes-1), testTime)
		m.Take(testTime)
		for b.Loop() {
			m.Write("ann", "\b", testTime)
			m.Write("ann", "a", testTime)
			m.Take(testTime)
		}
	})
}

// TestChangeErasesAsBackspaceDoes: the clusters change finds to erase,
// by rtt.Backspace and then by segmenting the line once, are those
// rtt.Backspace erases one by one, for every length erased back to.
func TestChangeErasesAsBackspaceDoes(t *testing.T) {
	lines := []string{
		strings.Repeat("\U0001F1E6", 9) + "x" + strings.Repeat("\U0001F1E8", 7),
		"e\u0301\U0001F468\u200D\U0001F469\u200D\U0001F467\u1100\u1161\u11A8ab\U0001F1EB\U0001F1F7\u0915\u094D\u0937\u2764\uFE0Fz",
		strings.Repeat("a\u0301", 20),
	}
	for _, line := range lines {
		for n := range len(line) {
			var want []uint16
			a := line
			for len(a) > n {
				want = append(want, uint16(len(a)))
				a = rtt.Backspace(a)
			}
			edits := change(nil, line, line[:n])
			if len(edits) == 0 || edits[0].kind != editErase || edits[0].at != len(a) || !slices.Equal(edits[0].ends, want) {
				t.Fatalf("change(%+q, %d bytes) = %+v, want an erasure to %d of %v", line, n, edits, len(a), want)
			}
		}
	}
}
