package node

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
)

func TestMinority(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := func(statuses ...string) []directory.Node {
		var nodes []directory.Node
		for i, st := range statuses {
			nodes = append(nodes, directory.Node{ID: "n" + string(rune('1'+i)), Status: directory.Status(st)})
		}
		return nodes
	}
	// ghosts adds to nodes three peers n4, n5 and n6, up and last heard
	// from age[i] milliseconds ago, or down for an age of -1.
	ghosts := func(nodes []directory.Node, age ...int64) []directory.Node {
		for i, a := range age {
			n := directory.Node{ID: "n" + string(rune('4'+i)), Status: directory.Up, AgeMS: a}
			if a < 0 {
				n.Status, n.AgeMS = directory.Down, 0
			}
			nodes = append(nodes, n)
		}
		return nodes
	}
	type step struct {
		at          time.Duration
		nodes       []directory.Node
		unreachable bool
		left        string // a peer announcing it leaves, before observing
		want        bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"alone from the start is never degraded", []step{
			{0, dir("up"), false, "", false},
			{time.Hour, dir("up"), false, "", false},
		}},
		{"one of three down keeps the majority", []step{
			{0, dir("up", "up", "up"), false, "", false},
			{time.Minute, dir("up", "up", "down"), false, "", false},
		}},
		{"cut off from two of three: degraded after the grace, whatever the directory forgets", []step{
			{0, dir("up", "up", "up"), false, "", false},
			{time.Second, dir("up", "down", "down"), false, "", false},
			{2*time.Second + time.Millisecond, dir("up", "down", "down"), false, "", false},
			{3 * time.Second, dir("up", "down", "down"), false, "", true},
			{5 * time.Minute, dir("up"), false, "", true},                   // the directory removed them
			{6 * time.Minute, dir("up", "up", "starting"), false, "", true}, // back: up once held for the grace
			{6*time.Minute + time.Second, dir("up", "up", "up"), false, "", true},
			{6*time.Minute + 2*time.Second, dir("up", "up", "up"), false, "", false},
		}},
		{"a blip shorter than the grace changes nothing", []step{
			{0, dir("up", "up", "up"), false, "", false},
			{time.Second, dir("up", "down", "down"), false, "", false},
			{2 * time.Second, dir("up", "up", "up"), false, "", false},
			{3500 * time.Millisecond, dir("up", "down", "down"), false, "", false},
		}},
		{"peers that left gracefully shrink the cluster", []step{
			{0, dir("up", "up", "up"), false, "", false},
			{time.Second, dir("up", "down", "up"), false, "n2", false},
			{2 * time.Second, dir("up", "down", "down"), false, "n3", false},
			{time.Minute, dir("up"), false, "", false},
		}},
		{"cut off for longer than forget: still degraded, not a cluster of one", []step{
			{0, dir("up", "up", "up"), false, "", false},
			{time.Second, dir("up", "down", "down"), false, "", false},
			{5 * time.Second, dir("up", "down", "down"), false, "", true},
			{11*time.Minute + time.Second, dir("up"), false, "", true},
			{time.Hour, dir("up"), false, "", true},
			{time.Hour + time.Second, dir("up", "up", "up"), false, "", true},
			{time.Hour + 3*time.Second, dir("up", "up", "up"), false, "", false},
		}},
		{"peers unseen past forget while the majority holds no longer count", []step{
			{0, dir("up", "up", "up", "up", "up"), false, "", false},
			{time.Second, dir("up", "up", "up", "down", "down"), false, "", false},
			{5 * time.Minute, dir("up", "up", "up", "down", "down"), false, "", false},
			{11 * time.Minute, dir("up", "up", "up"), false, "", false},
			{11*time.Minute + time.Second, dir("up", "up", "down"), false, "", false},
			{12 * time.Minute, dir("up", "up", "down"), false, "", false}, // 2 of 3
		}},
		{"a majority seen now and then while degraded does not make it flap", []step{
			{0, dir("up", "up", "up"), false, "", false},
			{time.Second, dir("up", "down", "down"), false, "", false},
			{3 * time.Second, dir("up", "down", "down"), false, "", true},
			{4 * time.Second, dir("up", "up", "down"), false, "", true},
			{5 * time.Second, dir("up", "down", "down"), false, "", true},
			{6 * time.Second, dir("up", "up", "down"), false, "", true},
			{7 * time.Second, dir("up", "down", "down"), false, "", true},
			{8 * time.Second, dir("up", "up", "up"), false, "", true},
			{9 * time.Second, dir("up", "up", "up"), false, "", true},
			{10 * time.Second, dir("up", "up", "up"), false, "", false},
		}},
		{"entries heard once never count: forged under made-up IDs, they cannot degrade the node", []step{
			{0, dir("up", "up", "up"), false, "", false},
			{time.Second, ghosts(dir("up", "up", "up"), 0, 0, 0), false, "", false},
			// Ages in whole milliseconds: the time rebuilt from them
			// wobbles, up to a millisecond later than it was.
			{1500 * time.Millisecond, ghosts(dir("up", "up", "up"), 499, 499, 500), false, "", false},
			{2 * time.Second, ghosts(dir("up", "up", "up"), 999, 1000, 999), false, "", false},
			{3 * time.Second, ghosts(dir("up", "up", "up"), -1, -1, -1), false, "", false},
			{24 * time.Hour, dir("up", "up", "up"), false, "", false},
			// Heard again, a new peer counts: n5 now.
			{24*time.Hour + time.Second, ghosts(dir("up", "up", "up"), -1, 0, -1), false, "", false},
			{24*time.Hour + 2*time.Second, ghosts(dir("up", "up", "up"), -1, 0, -1), false, "", false},
			{24*time.Hour + 3*time.Second, dir("up", "up", "up"), false, "", false},      // 3 of 4: held
			{24*time.Hour + 4*time.Second, dir("up", "up", "down"), false, "", false},    // 2 of 4: lost
			{24*time.Hour + 6*time.Second + 1, dir("up", "up", "down"), false, "", true}, // for the grace
		}},
		{"an unreachable bus degrades even a node alone", []step{
			{0, dir("up"), true, "", false},
			{3 * time.Second, dir("up"), true, "", true},
			{4 * time.Second, dir("up"), false, "", true},
			{6 * time.Second, dir("up"), false, "", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMinority("n1", 10*time.Minute, 2*time.Second)
			// A peer counts once heard from twice: the node heard the
			// first step's peers a moment before it.
			m.observe(tt.steps[0].nodes, t0.Add(-100*time.Millisecond), false, time.Time{}, t0.Add(-100*time.Millisecond))
			for i, s := range tt.steps {
				if s.left != "" {
					m.goodbye(directory.Change{ID: s.left, Kind: directory.StatusChanged, From: directory.Up, To: directory.Down})
				}
				if got := m.observe(s.nodes, t0.Add(s.at), s.unreachable, time.Time{}, t0.Add(s.at)); got != s.want {
					t.Fatalf("step %d (at %v): degraded = %v, want %v", i, s.at, got, s.want)
				}
			}
		})
	}
}

// A peer's goodbye shrinks the cluster only when the directory table
// took it: a stale one (a previous run's, delayed) or a refused one
// leaves the peer counted. Four nodes, n2 says goodbye, then n1 sees n3
// alone: with n2 still counted that is 2 of 4, no majority; with n2
// forgotten 2 of 3.
func TestMinorityGoodbyeOnlyAsTheTableTookIt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	all := []directory.Node{{ID: "n1", Status: directory.Up}, {ID: "n2", Status: directory.Up}, {ID: "n3", Status: directory.Up}, {ID: "n4", Status: directory.Up}}
	after := []directory.Node{{ID: "n1", Status: directory.Up}, {ID: "n2", Status: directory.Down}, {ID: "n3", Status: directory.Up}, {ID: "n4", Status: directory.Down}}
	for _, tt := range []struct {
		name     string
		c        directory.Change
		degraded bool
	}{
		{"taken: status changed to down", directory.Change{ID: "n2", Kind: directory.StatusChanged, From: directory.Up, To: directory.Down}, false},
		{"taken: first heard of as down", directory.Change{ID: "n2", Kind: directory.Added, To: directory.Down}, false},
		{"stale goodbye", directory.Change{ID: "n2", Kind: directory.Stale}, true},
		{"stale goodbye naming its status", directory.Change{ID: "n2", Kind: directory.Stale, From: directory.Up, To: directory.Down}, true},
		{"refused goodbye", directory.Change{ID: "n2", Kind: directory.Refused, To: directory.Down, Err: directory.ErrTooMany}, true},
		{"a refresh that stays up", directory.Change{ID: "n2", Kind: directory.Refreshed, From: directory.Up, To: directory.Up}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMinority("n1", 10*time.Minute, 2*time.Second)
			m.observe(all, t0.Add(-100*time.Millisecond), false, time.Time{}, t0.Add(-100*time.Millisecond))
			m.observe(all, t0, false, time.Time{}, t0)
			m.goodbye(tt.c)
			m.observe(after, t0.Add(time.Second), false, time.Time{}, t0.Add(time.Second))
			if got := m.observe(after, t0.Add(4*time.Second), false, time.Time{}, t0.Add(4*time.Second)); got != tt.degraded {
				t.Errorf("after %+v: degraded = %v, want %v", tt.c, got, tt.degraded)
			}
		})
	}
}

// The sessions are told to move once the node has been degraded for
// moveAfter past the grace: not while it sees the majority again and
// waits out the grace to be up, and a majority seen for a moment does
// not start that count again.
func TestMinorityDegradedFor(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	all := []directory.Node{{ID: "n1", Status: directory.Up}, {ID: "n2", Status: directory.Up}, {ID: "n3", Status: directory.Up}}
	alone := []directory.Node{{ID: "n1", Status: directory.Up}, {ID: "n2", Status: directory.Down}, {ID: "n3", Status: directory.Down}}
	m := newMinority("n1", 10*time.Minute, 2*time.Second)
	m.observe(all, t0.Add(-100*time.Millisecond), false, time.Time{}, t0.Add(-100*time.Millisecond)) // heard twice by the first step
	steps := []struct {
		at    time.Duration
		nodes []directory.Node
		want  time.Duration
	}{
		{0, all, 0},
		{time.Second, alone, 0},
		{5 * time.Second, alone, 2 * time.Second},
		{6 * time.Second, all, 0}, // waiting out the grace to be up
		{7 * time.Second, alone, 4 * time.Second},
		{20 * time.Second, alone, 17 * time.Second},
	}
	for i, s := range steps {
		m.observe(s.nodes, t0.Add(s.at), false, time.Time{}, t0.Add(s.at))
		if got := m.degradedFor(t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d (at %v): degradedFor = %v, want %v", i, s.at, got, s.want)
		}
		// recovering (the reason /readyz gives) only while a degraded
		// node waits out the grace with a majority in sight.
		if got, want := m.recovering(), i == 3; got != want {
			t.Errorf("step %d (at %v): recovering = %v, want %v", i, s.at, got, want)
		}
	}
}

// On an external bus the bus vouches for a node its JetStream answers:
// such a node stays up whatever it sees of its peers (they are not on the
// bus), as long as the answer is recent and to a question asked since the
// node lost sight of its majority. An answer from before (a node cut off
// from its bus still holds one for a while) vouches for nothing, and an
// unreachable bus wins over a vouch.
func TestMinorityVouchedByTheBus(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	two := []directory.Node{{ID: "n1", Status: directory.Up}, {ID: "n2", Status: directory.Up}}
	alone := []directory.Node{{ID: "n1", Status: directory.Up}, {ID: "n2", Status: directory.Down}}
	const none = -1
	type step struct {
		at          time.Duration
		nodes       []directory.Node
		unreachable bool
		answered    time.Duration // when the latest answered question was asked; none
		want, byBus bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a peer's death leaves up the node its bus answers since", []step{
			{0, two, false, 0, false, false},
			{time.Second, alone, false, 500 * time.Millisecond, false, false}, // asked before: nothing yet
			{2 * time.Second, alone, false, 1500 * time.Millisecond, false, true},
			{time.Minute, alone, false, time.Minute - time.Second, false, true},
		}},
		{"an answer from before the peers vanished vouches for nothing", []step{
			{0, two, false, 0, false, false},
			{time.Second, alone, false, 0, false, false},
			{3 * time.Second, alone, false, 0, true, false},
		}},
		{"the answers stop: degraded once the last is too old and the grace has run", []step{
			{0, two, false, 0, false, false},
			{time.Second, alone, false, time.Second, false, true},
			{9 * time.Second, alone, false, time.Second, false, true},
			{9500 * time.Millisecond, alone, false, time.Second, false, false},
			{11500 * time.Millisecond, alone, false, time.Second, true, false},
			{12 * time.Second, alone, false, 12 * time.Second, true, true}, // answered again: up once held for the grace
			{14 * time.Second, alone, false, 14 * time.Second, false, true},
		}},
		{"an unreachable bus degrades a node its last answer still vouches for", []step{
			{0, two, false, 0, false, false},
			{time.Second, alone, true, time.Second, false, false},
			{3 * time.Second, alone, true, 3 * time.Second, true, false},
		}},
		{"without a bus nothing vouches", []step{
			{0, two, false, none, false, false},
			{time.Second, alone, false, none, false, false},
			{3 * time.Second, alone, false, none, true, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMinority("n1", 10*time.Minute, 2*time.Second)
			m.vouchFor = 8 * time.Second
			m.observe(two, t0.Add(-100*time.Millisecond), false, time.Time{}, t0.Add(-100*time.Millisecond))
			for i, s := range tt.steps {
				var answered time.Time
				if s.answered != none {
					answered = t0.Add(s.answered)
				}
				if got := m.observe(s.nodes, t0.Add(s.at), s.unreachable, answered, t0.Add(s.at)); got != s.want {
					t.Fatalf("step %d (at %v): degraded = %v, want %v", i, s.at, got, s.want)
				}
				if m.byBus != s.byBus {
					t.Errorf("step %d (at %v): byBus = %v, want %v", i, s.at, m.byBus, s.byBus)
				}
			}
		})
	}
}
