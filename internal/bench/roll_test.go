package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// The small, decisive version of `switchboard bench roll`: 9 typists in
// 3 rooms of 3 over 3 child processes, every node in turn drained within
// 15 s (the node spreads its asks over three quarters of the window,
// drain.Tail, so each drain takes about 10 s however few its sessions;
// the last quarter, left for the last moves, is what a loaded CI machine
// needs, so the window stays), stopped and restarted. Nothing acked may
// be missing, nothing shown twice, no user may see another leave, no
// session may drop, and every node must end its drain empty (its
// sessions moved) rather than at the deadline. Nothing is timed: the
// keystroke figures are the benchmark's.
func TestRoll(t *testing.T) {
	// A second of typing before the first drain and after the last
	// restart, not the benchmark's three: the checks are about what
	// happens during the roll, whose drains (paced over Within, not
	// shortened here) still fall on typing under way, and a second at
	// 5 chars/s still puts 45 chunks through the restarted nodes.
	saved := rollLead
	rollLead = time.Second
	t.Cleanup(func() { rollLead = saved })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// FromBinary takes the upgrade's path (each node restarted by
	// RestartWith); CI has no earlier release at hand, so the upgrade is
	// from this binary to itself. docs/benchmarks.md, roll, has one from
	// the previous release.
	r, err := RunScenario(ctx, "roll", Config{Binary: binary, FromBinary: binary, Nodes: 3, Rooms: 3, RoomSize: 3, Rate: 5, Within: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rep := r.(*RollReport)
	var out bytes.Buffer
	rep.WriteTable(&out)
	t.Logf("\n%s", out.String())
	res := rep.Result
	if res.MissingAcked != 0 || res.Duplicates != 0 || res.TextWrong != 0 || res.Unsettled != 0 || len(res.HistoryErrors) != 0 {
		t.Errorf("text checks failed (seed %d): %+v", rep.Seed, res)
	}
	if res.Leaves != 0 || res.Joins != 0 {
		t.Errorf("members saw %d leaves and %d joins of users who only moved: %v", res.Leaves, res.Joins, res.Detail)
	}
	if len(res.Errors) != 0 || rep.Drops != 0 {
		t.Errorf("errors %v and %d drops; want none", res.Errors, rep.Drops)
	}
	if len(rep.Steps) != 3 {
		t.Fatalf("%d nodes rolled, want 3", len(rep.Steps))
	}
	if rep.From != binary {
		t.Errorf("the report says the nodes started on %q, want %q", rep.From, binary)
	}
	asked := 0
	for _, s := range rep.Steps {
		if s.Reason != "empty" || s.Closed != 0 {
			t.Errorf("%s's drain ended %q with %d closed; want empty, none closed", s.Node, s.Reason, s.Closed)
		}
		asked += s.Asked
	}
	if rep.Moves != asked || rep.Moves < 9 {
		t.Errorf("%d moves, %d asked; want every session asked at least once and every ask a move", rep.Moves, asked)
	}
	if res.Typed == 0 || rep.Samples == 0 {
		t.Errorf("typed %d, %d deliveries timed during the roll; want some", res.Typed, rep.Samples)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("marshal: %v", err)
	}
}
