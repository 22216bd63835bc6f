package failover

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/switchboard/switchboard/directory"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// top is a Rand that always draws the largest value, so every jittered
// wait is its upper bound and transcripts are exact.
type top struct{}

func (top) IntN(n int) int { return n - 1 }

// step is one line of a transcript: at ms after t0, report out; the
// machine must answer want, and then exclude exactly excluded (among
// n1..n3), when excluded is not nil.
type step struct {
	ms       int
	out      Outcome
	want     string
	excluded []string
}

func begin(deadlineMS int) Outcome {
	o := Outcome{Kind: Begin}
	if deadlineMS > 0 {
		o.Deadline = t0.Add(time.Duration(deadlineMS) * time.Millisecond)
	}
	return o
}

var (
	fetched = Outcome{Kind: Fetched}
	noCand  = Outcome{Kind: NoCandidate}
	refused = errors.New("connection refused")
)

func picked(id string) Outcome   { return Outcome{Kind: Picked, Node: id} }
func attached(id string) Outcome { return Outcome{Kind: Attached, Node: id} }
func dialFailed(id string) Outcome {
	return Outcome{Kind: DialFailed, Node: id, Err: refused}
}
func timeout(id string) Outcome {
	return Outcome{Kind: Timeout, Node: id, Err: errors.New("i/o timeout")}
}
func full(id string) Outcome     { return Outcome{Kind: Refused, Node: id, Status: directory.Full} }
func draining(id string) Outcome { return Outcome{Kind: Refused, Node: id, Status: directory.Draining} }
func dropped(id string) Outcome  { return Outcome{Kind: Dropped, Node: id, Err: errors.New("EOF")} }

// droppedHeld is a drop of a session that holds the directory its node
// sent.
func droppedHeld(id string) Outcome {
	return Outcome{Kind: Dropped, Node: id, Err: errors.New("EOF"), Held: true}
}
func dirFailed(msg string) Outcome {
	return Outcome{Kind: DirectoryFailed, Err: errors.New(msg)}
}

func TestTranscripts(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "retry the same node twice, then refresh, then another node",
			steps: []step{
				{0, begin(0), "refresh", []string{}},
				{5, fetched, "pick", nil},
				{5, picked("n1"), "dial n1", nil},
				{10, dialFailed("n1"), "retry n1 after 20ms", []string{}},
				{30, dialFailed("n1"), "retry n1 after 40ms", []string{}},
				{70, timeout("n1"), "refresh", []string{"n1"}},
				{75, fetched, "pick", nil},
				{75, picked("n2"), "dial n2", nil},
				{80, attached("n2"), "done", []string{"n1"}},
			},
		},
		{
			name: "more retries double the wait up to the cap",
			cfg:  Config{Retries: 5, RetryBase: 30 * time.Millisecond, RetryMax: 100 * time.Millisecond},
			steps: []step{
				{0, picked("n1"), "dial n1", nil},
				{0, dialFailed("n1"), "retry n1 after 30ms", nil},
				{0, dialFailed("n1"), "retry n1 after 60ms", nil},
				{0, dialFailed("n1"), "retry n1 after 100ms", nil},
				{0, dialFailed("n1"), "retry n1 after 100ms", nil},
				{0, dialFailed("n1"), "retry n1 after 100ms", []string{}},
				{0, dialFailed("n1"), "refresh", []string{"n1"}},
			},
		},
		{
			name: "a node that timed out is not dialled again: another is picked",
			steps: []step{
				{0, begin(0), "refresh", []string{}},
				{5, fetched, "pick", nil},
				{5, picked("n1"), "dial n1", nil},
				{2005, timeout("n1"), "refresh", []string{"n1"}},
				{2010, fetched, "pick", nil},
				{2010, picked("n2"), "dial n2", nil},
				{2015, attached("n2"), "done", []string{"n1"}},
			},
		},
		{
			name: "timeouts retried when configured, never more than Retries",
			cfg:  Config{Retries: 1, TimeoutRetries: 3},
			steps: []step{
				{0, picked("n1"), "dial n1", nil},
				{2000, timeout("n1"), "retry n1 after 20ms", nil},
				{4020, timeout("n1"), "refresh", []string{"n1"}},
			},
		},
		{
			name: "no retries",
			cfg:  Config{Retries: -1},
			steps: []step{
				{0, picked("n1"), "dial n1", nil},
				{0, timeout("n1"), "refresh", []string{"n1"}},
			},
		},
		{
			name: "a failure of another node starts its own count",
			steps: []step{
				{0, picked("n1"), "dial n1", nil},
				{0, dialFailed("n1"), "retry n1 after 20ms", nil},
				{0, picked("n2"), "dial n2", nil},
				{0, dialFailed("n2"), "retry n2 after 20ms", []string{}},
			},
		},
		{
			name: "full or draining: pick again at once, excluding the node",
			steps: []step{
				{0, begin(0), "refresh", nil},
				{0, fetched, "pick", nil},
				{0, picked("n1"), "dial n1", nil},
				{1, full("n1"), "pick", []string{"n1"}},
				{1, picked("n2"), "dial n2", nil},
				{2, draining("n2"), "pick", []string{"n1", "n2"}},
				{2, picked("n3"), "dial n3", nil},
				{3, full("n3"), "pick", []string{"n1", "n2", "n3"}},
				{3, noCand, "refresh after 100ms", nil},
			},
		},
		{
			name: "the cool-down ends: the node may be picked again",
			steps: []step{
				{0, picked("n1"), "dial n1", nil},
				{0, full("n1"), "pick", []string{"n1"}},
				{4999, noCand, "refresh after 100ms", []string{"n1"}},
				{5000, fetched, "pick", []string{}},
				{5000, picked("n1"), "dial n1", nil},
			},
		},
		{
			// Three nodes that each time out (2 s to connect and say
			// hello, 2 s to attach): n1's cool-down ends at 9 s, before
			// n3 has been tried, but it stays out until the flow finds
			// nothing to pick.
			name: "a node that failed stays out past its cool-down until every other was tried",
			steps: []step{
				{0, begin(0), "refresh", nil},
				{0, fetched, "pick", nil},
				{0, picked("n1"), "dial n1", nil},
				{4000, timeout("n1"), "refresh", []string{"n1"}},
				{4000, fetched, "pick", nil},
				{4000, picked("n2"), "dial n2", nil},
				{8000, timeout("n2"), "refresh", []string{"n1", "n2"}},
				{8000, fetched, "pick", nil},
				{8000, picked("n3"), "dial n3", nil},
				{12_000, timeout("n3"), "refresh", []string{"n1", "n2", "n3"}},
				{12_000, fetched, "pick", []string{"n1", "n2", "n3"}},
				// Nothing left: a failed pass, and n1, out of its
				// cool-down, may be picked again.
				{12_000, noCand, "refresh after 100ms", []string{"n2", "n3"}},
				{12_100, fetched, "pick", []string{"n2", "n3"}},
				{12_100, picked("n1"), "dial n1", nil},
				{12_200, attached("n1"), "done", []string{"n2", "n3"}},
				// A new flow starts a new round: only cool-downs count.
				{12_300, dropped("n1"), "refresh after 250ms", []string{"n1", "n2", "n3"}},
				{15_100, fetched, "pick", []string{"n1", "n3"}},
			},
		},
		{
			name: "held directory: the lost node stays out of the flow past its cool-down",
			steps: []step{
				{0, attached("n1"), "done", nil},
				{60_000, droppedHeld("n1"), "pick after 250ms", []string{"n1"}},
				{60_250, picked("n2"), "dial n2", nil},
				{64_250, timeout("n2"), "pick", []string{"n1", "n2"}},
				{64_250, picked("n3"), "dial n3", nil},
				{68_250, timeout("n3"), "pick", []string{"n1", "n2", "n3"}},
				{68_250, noCand, "refresh", []string{"n2", "n3"}},
			},
		},
		{
			name: "a node that fails again has its cool-down extended",
			steps: []step{
				{0, picked("n1"), "dial n1", nil},
				{0, full("n1"), "pick", []string{"n1"}},
				{3000, picked("n1"), "dial n1", nil}, // the caller ignored Exclude
				{3000, full("n1"), "pick", []string{"n1"}},
				{7999, noCand, "refresh after 100ms", []string{"n1"}},
				{8000, fetched, "pick", []string{}},
			},
		},
		{
			name: "common address unreachable: backoff doubles to 2s, resets on attach",
			steps: []step{
				{0, begin(0), "refresh", nil},
				{0, dirFailed("no route"), "refresh after 100ms", nil},
				{0, dirFailed("no route"), "refresh after 200ms", nil},
				{0, dirFailed("no route"), "refresh after 400ms", nil},
				{0, dirFailed("no route"), "refresh after 800ms", nil},
				{0, dirFailed("no route"), "refresh after 1.6s", nil},
				{0, dirFailed("no route"), "refresh after 2s", nil},
				{0, fetched, "pick", nil},
				{0, noCand, "refresh after 2s", nil},
				{0, fetched, "pick", nil},
				{0, picked("n1"), "dial n1", nil},
				{0, attached("n1"), "done", nil},
				{0, dropped("n1"), "refresh after 250ms", nil},
				{0, dirFailed("no route"), "refresh after 100ms", nil},
			},
		},
		{
			name: "dropped: exclude the node, short jittered wait, longer if it keeps dropping",
			steps: []step{
				{0, attached("n1"), "done", []string{}},
				{60_000, dropped("n1"), "refresh after 250ms", []string{"n1"}},
				{60_250, fetched, "pick", nil},
				{60_250, picked("n2"), "dial n2", nil},
				{60_300, attached("n2"), "done", nil},
				{61_000, dropped("n2"), "refresh after 500ms", []string{"n1", "n2"}},
				{61_500, fetched, "pick", nil},
				{61_500, picked("n3"), "dial n3", nil},
				{61_600, attached("n3"), "done", nil},
				{62_000, dropped("n3"), "refresh after 1s", []string{"n1", "n2", "n3"}},
				{63_000, fetched, "pick", nil},
				{63_000, noCand, "refresh after 100ms", []string{"n1", "n2", "n3"}},
				{66_000, fetched, "pick", []string{"n3"}},
				{66_000, picked("n1"), "dial n1", nil},
				{66_000, attached("n1"), "done", []string{"n3"}},
				// A session that lived past Stable counts as a first drop.
				{80_000, dropped("n1"), "refresh after 250ms", []string{"n1"}},
			},
		},
		{
			name: "dropped holding a directory: pick from it at once, no common address",
			steps: []step{
				{0, attached("n1"), "done", []string{}},
				{60_000, droppedHeld("n1"), "pick after 250ms", []string{"n1"}},
				{60_250, picked("n2"), "dial n2", nil},
				{60_260, attached("n2"), "done", []string{"n1"}},
			},
		},
		{
			name: "held directory: a failed candidate makes way for the next, then the common address",
			steps: []step{
				{0, attached("n1"), "done", nil},
				{60_000, droppedHeld("n1"), "pick after 250ms", []string{"n1"}},
				{60_250, picked("n2"), "dial n2", nil},
				{60_260, dialFailed("n2"), "retry n2 after 20ms", nil},
				{60_280, dialFailed("n2"), "retry n2 after 40ms", nil},
				{60_320, timeout("n2"), "pick", []string{"n1", "n2"}},
				{60_320, picked("n3"), "dial n3", nil},
				{60_330, full("n3"), "pick", []string{"n1", "n2", "n3"}},
				{60_330, noCand, "refresh", nil},
				// From the fresh directory on, the usual order.
				{60_340, fetched, "pick", nil},
				{60_340, picked("n2"), "dial n2", nil},
				{60_350, dialFailed("n2"), "retry n2 after 20ms", nil},
				{60_370, dialFailed("n2"), "retry n2 after 40ms", nil},
				{60_410, dialFailed("n2"), "refresh", nil},
				{60_420, fetched, "pick", nil},
				{60_420, noCand, "refresh after 100ms", nil},
			},
		},
		{
			name: "held directory with nothing to pick: the common address at once",
			steps: []step{
				{0, attached("n1"), "done", nil},
				{60_000, droppedHeld("n1"), "pick after 250ms", nil},
				{60_250, noCand, "refresh", nil},
				{60_260, dirFailed("no route"), "refresh after 100ms", nil},
			},
		},
		{
			name: "held directory: a deadline still ends the flow, saying what was tried",
			steps: []step{
				{0, attached("n1"), "done", nil},
				{20_000, Outcome{Kind: Dropped, Node: "n1", Held: true, Deadline: t0.Add(21_000 * time.Millisecond)}, "pick after 250ms", nil},
				{20_250, noCand, "refresh", nil},
				{20_990, dirFailed("no route"), "fail: failover: deadline reached (10ms left, too little for the next try) after 990ms and 1 failed pass: " +
					"n1: session dropped; common address: 1 fetch failed; no node to pick 1 time; last error: no route", nil},
			},
		},
		{
			name: "deadline: give up saying what was tried",
			steps: []step{
				{0, begin(1000), "refresh", nil},
				{0, dirFailed("dns: no answer"), "refresh after 100ms", nil},
				{100, fetched, "pick", nil},
				{100, picked("n1"), "dial n1", nil},
				{200, dialFailed("n1"), "retry n1 after 20ms", nil},
				{220, dialFailed("n1"), "retry n1 after 40ms", nil},
				{260, timeout("n1"), "refresh", nil},
				{270, fetched, "pick", nil},
				{270, picked("n2"), "dial n2", nil},
				{280, draining("n2"), "pick", nil},
				{280, noCand, "refresh after 200ms", nil},
				{480, dirFailed("dns: no answer"), "refresh after 400ms", nil},
				{880, dirFailed("dns: no answer"), "fail: failover: deadline reached (120ms left, too little for the next try) after 880ms and 4 failed passes: " +
					"n1: 3 dials failed (last: i/o timeout); n2: 1 refusal (last: node is draining); " +
					"common address: 3 fetches failed; no node to pick 1 time; last error: dns: no answer", nil},
				// The machine stays failed until a new flow starts.
				{900, fetched, "fail: failover: deadline reached (120ms left, too little for the next try) after 880ms and 4 failed passes: " +
					"n1: 3 dials failed (last: i/o timeout); n2: 1 refusal (last: node is draining); " +
					"common address: 3 fetches failed; no node to pick 1 time; last error: dns: no answer", nil},
				{900, begin(0), "refresh", nil},
				{900, fetched, "pick", nil},
			},
		},
		{
			name: "deadline: a retry that would start at the deadline fails now",
			steps: []step{
				{0, begin(100), "refresh", nil},
				{0, fetched, "pick", nil},
				{0, picked("n1"), "dial n1", nil},
				{80, dialFailed("n1"), "fail: failover: deadline reached (20ms left, too little for the next try) after 80ms and 0 failed passes: " +
					"n1: 1 dial failed (last: connection refused); last error: connection refused", nil},
			},
		},
		{
			name: "deadline: attaching at the deadline still succeeds",
			steps: []step{
				{0, begin(100), "refresh", nil},
				{0, fetched, "pick", nil},
				{0, picked("n1"), "dial n1", nil},
				{150, attached("n1"), "done", nil},
			},
		},
		{
			name: "deadline with nothing tried",
			steps: []step{
				{0, begin(50), "refresh", nil},
				{60, fetched, "fail: failover: deadline reached after 60ms and 0 failed passes: nothing tried", nil},
			},
		},
		{
			name: "dropped with a deadline",
			steps: []step{
				{0, attached("n1"), "done", nil},
				{20_000, Outcome{Kind: Dropped, Node: "n1", Deadline: t0.Add(20_100 * time.Millisecond)}, "fail: failover: deadline reached (100ms left, too little for the next try) after 0s and 0 failed passes: n1: session dropped", nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runTranscript(t, tt.cfg, tt.steps) })
	}
}

// fetchedFrom is a directory fetched from the hello of node id.
func fetchedFrom(id string) Outcome { return Outcome{Kind: Fetched, Node: id} }

// A node that dropped the session (it restarted, say) and then answers
// the common address's hello is up again: its cool-down ends then, so
// that the session of a one-node service comes back as soon as the node
// does. A node that failed a dial or refused keeps its cool-down.
func TestDroppedNodeThatAnswersIsPickedAgain(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "dropped, then answers the hello",
			steps: []step{
				{0, attached("n1"), "done", nil},
				{10, droppedHeld("n1"), "pick after 250ms", []string{"n1"}},
				{260, noCand, "refresh", []string{"n1"}},
				{300, dirFailed("connection refused"), "refresh after 100ms", []string{"n1"}},
				{400, fetchedFrom("n2"), "pick", []string{"n1"}},
				{400, noCand, "refresh after 200ms", []string{"n1"}},
				{600, fetchedFrom("n1"), "pick", []string{}},
				{600, picked("n1"), "dial n1", nil},
				{610, attached("n1"), "done", []string{}},
			},
		},
		{
			name: "dropped, answers, then fails its dials",
			steps: []step{
				{0, attached("n1"), "done", nil},
				{10, dropped("n1"), "refresh after 250ms", []string{"n1"}},
				{260, fetchedFrom("n1"), "pick", []string{}},
				{260, picked("n1"), "dial n1", nil},
				{270, dialFailed("n1"), "retry n1 after 20ms", nil},
				{290, dialFailed("n1"), "retry n1 after 40ms", nil},
				{330, dialFailed("n1"), "refresh", []string{"n1"}},
				{340, fetchedFrom("n1"), "pick", []string{"n1"}},
			},
		},
		{
			name: "failed its dials, then answers the hello",
			steps: []step{
				{0, begin(0), "refresh", nil},
				{0, fetched, "pick", nil},
				{0, picked("n1"), "dial n1", nil},
				{10, dialFailed("n1"), "retry n1 after 20ms", nil},
				{30, dialFailed("n1"), "retry n1 after 40ms", nil},
				{70, dialFailed("n1"), "refresh", []string{"n1"}},
				{80, fetchedFrom("n1"), "pick", []string{"n1"}},
			},
		},
		{
			name: "dropped, refused full, then answers the hello",
			steps: []step{
				{0, attached("n1"), "done", nil},
				{10, dropped("n1"), "refresh after 250ms", []string{"n1"}},
				{260, fetchedFrom("n2"), "pick", []string{"n1"}},
				{260, picked("n2"), "dial n2", nil},
				{270, full("n2"), "pick", []string{"n1", "n2"}},
				{270, noCand, "refresh after 100ms", nil},
				{370, fetchedFrom("n2"), "pick", []string{"n1", "n2"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runTranscript(t, Config{}, tt.steps) })
	}
}

func TestFailWraps(t *testing.T) {
	m, _ := New(Config{}, top{})
	m.Next(begin(10), t0)
	cause := errors.New("no route to host")
	a := m.Next(Outcome{Kind: DirectoryFailed, Err: cause}, t0)
	if a.Step != Fail {
		t.Fatalf("got %v, want fail", a)
	}
	if !errors.Is(a.Err, ErrDeadline) || !errors.Is(a.Err, cause) {
		t.Errorf("error %v does not wrap both ErrDeadline and the cause", a.Err)
	}
	if a := m.Next(Outcome{Kind: 99}, t0); a.Step != Fail {
		t.Errorf("unknown outcome: %v", a)
	}
	m.Next(begin(0), t0)
	if a := m.Next(Outcome{Kind: 99}, t0); a.Step != Fail || !strings.Contains(a.Err.Error(), "failover: unknown outcome kind(99)") {
		t.Errorf("unknown outcome: %v", a)
	}
}

// waits runs n fresh machines that share r through the given outcomes and
// returns the After of each machine's last action.
func waits(t *testing.T, r Rand, n int, outs ...Outcome) []time.Duration {
	t.Helper()
	var out []time.Duration
	for range n {
		m, err := New(Config{}, r)
		if err != nil {
			t.Fatal(err)
		}
		var a Action
		now := t0
		for _, o := range outs {
			a = m.Next(o, now)
			now = now.Add(time.Second)
		}
		out = append(out, a.After)
	}
	return out
}

// TestJitter checks that each jittered wait stays in its bounds and uses
// them: over 2000 draws, the smallest and the largest fall within 2% of
// the ends, and no 1/10 of the range holds more than 13% of the draws.
func TestJitter(t *testing.T) {
	r := newRand(1)
	var passes []Outcome
	tests := []struct {
		name     string
		outs     []Outcome
		low, top time.Duration
	}{
		{"first retry", []Outcome{picked("n1"), dialFailed("n1")}, 10 * time.Millisecond, 20 * time.Millisecond},
		{"second retry", []Outcome{picked("n1"), dialFailed("n1"), dialFailed("n1")}, 20 * time.Millisecond, 40 * time.Millisecond},
		{"drop", []Outcome{attached("n1"), dropped("n1")}, 0, 250 * time.Millisecond},
		{"drop holding a directory", []Outcome{attached("n1"), droppedHeld("n1")}, 0, 250 * time.Millisecond},
		{"second quick drop", []Outcome{attached("n1"), dropped("n1"), attached("n2"), dropped("n2")}, 0, 500 * time.Millisecond},
	}
	for k, w := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000} {
		w *= time.Millisecond
		passes = append(passes, noCand)
		tests = append(tests, struct {
			name     string
			outs     []Outcome
			low, top time.Duration
		}{fmt.Sprintf("pass %d", k+1), append([]Outcome{begin(0)}, passes...), w / 2, w})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 2000
			got := waits(t, r, n, tt.outs...)
			lo, hi := got[0], got[0]
			buckets := make([]int, 10)
			span := tt.top - tt.low
			for _, d := range got {
				if d < tt.low || d > tt.top {
					t.Fatalf("wait %v outside [%v, %v]", d, tt.low, tt.top)
				}
				lo, hi = min(lo, d), max(hi, d)
				buckets[min(int((d-tt.low)*10/span), 9)]++
			}
			if lo > tt.low+span/50 || hi < tt.top-span/50 {
				t.Errorf("waits span [%v, %v], want close to [%v, %v]", lo, hi, tt.low, tt.top)
			}
			for i, c := range buckets {
				if c > n*13/100 {
					t.Errorf("bucket %d holds %d of %d waits: %v", i, c, n, buckets)
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	m, err := New(Config{}, top{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.Config(), DefaultConfig()); diff != "" {
		t.Errorf("zero Config (-got +want):\n%s", diff)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"default", DefaultConfig(), ""},
		{"zero", Config{}, ""},
		{"negative cooldown", Config{Cooldown: -time.Second}, "failover: Cooldown is negative (-1s)"},
		{"base above cap", Config{RetryBase: time.Second}, "failover: RetryBase 1s is above RetryMax 200ms"},
		{"pass base above cap", Config{PassBase: 3 * time.Second}, "failover: PassBase 3s is above PassMax 2s"},
		{"drop base above cap", Config{DropBase: 3 * time.Second}, "failover: DropBase 3s is above PassMax 2s"},
		{"a cap alone below the default bases", Config{PassMax: 100 * time.Millisecond, RetryMax: 10 * time.Millisecond}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
			if _, err := New(tt.cfg, top{}); (err != nil) != (tt.want != "") {
				t.Errorf("New error = %v", err)
			}
		})
	}
	if _, err := New(Config{}, nil); err == nil || err.Error() != "failover: nil Rand" {
		t.Errorf("New with nil Rand: %v", err)
	}
}

func TestStrings(t *testing.T) {
	if got := (Outcome{Kind: Refused, Node: "n1", Status: directory.Full}).String(); got != "refused n1 (full)" {
		t.Errorf("Outcome.String() = %q", got)
	}
	if got := droppedHeld("n1").String(); got != "dropped n1, directory held" {
		t.Errorf("Outcome.String() = %q", got)
	}
	if got := Kind(42).String(); got != "kind(42)" {
		t.Errorf("Kind(42).String() = %q", got)
	}
	if got := Step(42).String(); got != "step(42)" {
		t.Errorf("Step(42).String() = %q", got)
	}
	if got := (Action{Step: Retry, Node: "n1", After: 20 * time.Millisecond}).String(); got != "retry n1 after 20ms" {
		t.Errorf("Action.String() = %q", got)
	}
}

// Tried says what the flow tried so far, as the Fail error does, for a
// caller that stops the flow itself.
func TestTriedSaysWhatWasTried(t *testing.T) {
	m, err := New(DefaultConfig(), top{})
	if err != nil {
		t.Fatal(err)
	}
	start := t0
	m.Next(Outcome{Kind: Begin}, start)
	m.Next(Outcome{Kind: Fetched}, start)
	m.Next(Outcome{Kind: Picked, Node: "n2"}, start)
	m.Next(Outcome{Kind: DialFailed, Node: "n2", Err: errors.New("refused")}, start)
	got := m.Tried(start.Add(time.Second))
	if want := "after 1s and 0 failed passes: n2: 1 dial failed (last: refused)"; got != want {
		t.Errorf("Tried = %q, want %q", got, want)
	}
}

// A flow that meets ever new nodes keeps a bounded record: the first
// maxTried by name, the rest together.
func TestTriedIsBounded(t *testing.T) {
	m, err := New(DefaultConfig(), top{})
	if err != nil {
		t.Fatal(err)
	}
	m.Next(Outcome{Kind: Begin}, t0)
	for i := range 1000 {
		id := fmt.Sprintf("n%d", i)
		m.Next(Outcome{Kind: Picked, Node: id}, t0)
		m.Next(Outcome{Kind: DialFailed, Node: id, Err: refused}, t0)
	}
	if len(m.tried) != maxTried {
		t.Errorf("%d nodes recorded one by one, want %d", len(m.tried), maxTried)
	}
	got := m.Tried(t0)
	if want := fmt.Sprintf("other nodes: %d dials failed", 1000-maxTried); !strings.Contains(got, want) {
		t.Errorf("Tried = %q, want it to say %q", got, want)
	}
	// Nor do the nodes it keeps out until it runs out of candidates.
	for i := range 2 * maxRound {
		m.Next(Outcome{Kind: Refused, Node: fmt.Sprintf("r%d", i), Status: directory.Full}, t0)
	}
	if len(m.round) > maxRound {
		t.Errorf("%d nodes kept out of the flow, want at most %d", len(m.round), maxRound)
	}
}

// runTranscript drives a Machine of cfg through steps and compares each
// action it answers, and the nodes excluded where a step lists them, with
// the step's.
func runTranscript(t *testing.T, cfg Config, steps []step) {
	t.Helper()
	m, err := New(cfg, top{})
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, s := range steps {
		now := t0.Add(time.Duration(s.ms) * time.Millisecond)
		line := fmt.Sprintf("%6d %-18s -> ", s.ms, s.out)
		got = append(got, line+m.Next(s.out, now).String())
		want = append(want, line+s.want)
		if s.excluded != nil {
			var ex []string
			for _, id := range []string{"n1", "n2", "n3"} {
				if m.Excluded(id, now) {
					ex = append(ex, id)
				}
			}
			got = append(got, fmt.Sprintf("       excluded %v", ex))
			want = append(want, fmt.Sprintf("       excluded %v", s.excluded))
		}
	}
	if diff := cmp.Diff(strings.Join(got, "\n"), strings.Join(want, "\n")); diff != "" {
		t.Errorf("transcript (-got +want):\n%s", diff)
	}
}

// A node that dropped the session and stayed away past its cool-down
// (a restart of more than 5 s) is back at once when it answers a hello,
// as before the round: the end of its cool-down must not forget that it
// only dropped the session while the round still keeps it out. Before,
// the pick found it excluded, and the client waited a whole pass for a
// second hello.
func TestDroppedNodeBackAfterItsCooldown(t *testing.T) {
	m, err := New(DefaultConfig(), newRand(1))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.Next(Outcome{Kind: Attached, Node: "n1"}, t0)
	now := t0.Add(time.Minute)
	a := m.Next(Outcome{Kind: Dropped, Node: "n1"}, now)
	for now.Sub(t0) < time.Minute+6*time.Second {
		now = now.Add(a.After + 50*time.Millisecond)
		a = m.Next(Outcome{Kind: DirectoryFailed, Err: errors.New("connection refused")}, now)
	}
	now = now.Add(a.After)
	if a = m.Next(Outcome{Kind: Fetched, Node: "n1"}, now); a.Step != Pick {
		t.Fatalf("n1 answered the hello: %v, want a pick", a)
	}
	if m.Excluded("n1", now) {
		t.Errorf("n1, back after %v, is still left out", now.Sub(t0.Add(time.Minute)))
	}
}
