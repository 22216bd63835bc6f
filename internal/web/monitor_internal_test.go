package web

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// notifyingSource is a Source and Notifier whose directory the test sets;
// every read of it is reported on reads.
type notifyingSource struct {
	mu      sync.Mutex
	nodes   []directory.Node
	reads   chan struct{}
	changes chan struct{}
}

func (s *notifyingSource) Directory() *wire.Directory {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.reads <- struct{}{}:
	default:
	}
	return &wire.Directory{Service: "s", Self: "n1", Nodes: append([]directory.Node(nil), s.nodes...)}
}
func (s *notifyingSource) Status() directory.Status          { return directory.Up }
func (s *notifyingSource) SetDraining(bool)                  {}
func (s *notifyingSource) DirectoryChanges() <-chan struct{} { return s.changes }

func (s *notifyingSource) set(nodes ...directory.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes = nodes
}

func awaitRead(t *testing.T, src *notifyingSource, what string) {
	t.Helper()
	select {
	case <-src.reads:
	case <-time.After(30 * time.Second):
		t.Fatalf("the monitor never read the directory: %s", what)
	}
}

// TestMonitorReadsOnChange: with a Notifier and nobody watching, the
// monitor reads the directory when told of a change (its chart's next
// sample is an hour away), and polls once a dashboard subscribes.
func TestMonitorReadsOnChange(t *testing.T) {
	src := &notifyingSource{reads: make(chan struct{}, 1000), changes: make(chan struct{}, 1)}
	src.set(directory.Node{ID: "n1", Status: directory.Up}, directory.Node{ID: "n2", Status: directory.Up})
	mon := NewMonitor(src)
	mon.hist = NewHistory(0, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mon.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	awaitRead(t, src, "the first reading")
	src.set(directory.Node{ID: "n1", Status: directory.Up}, directory.Node{ID: "n2", Status: directory.Down})
	src.changes <- struct{}{}
	awaitRead(t, src, "after a change was notified")
	// Run reads again only once it has observed the last reading, so a
	// second notice, read, says the first change was observed.
	src.changes <- struct{}{}
	awaitRead(t, src, "after a second notice")
	mon.mu.Lock()
	evs := mon.hist.Events()
	mon.mu.Unlock()
	if len(evs) != 1 || evs[0].Node != "n2" || evs[0].What != "down" {
		t.Fatalf("events %+v, want n2 down", evs)
	}

	// A dashboard: the monitor polls without being told.
	_, ch, err := mon.subscribe("")
	if err != nil {
		t.Fatal(err)
	}
	defer mon.unsubscribe(ch)
	for i := range 3 {
		awaitRead(t, src, "polling for a dashboard, read "+string(rune('1'+i)))
	}
}

func TestMonitorUntilNext(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	tests := []struct {
		name     string
		notified bool
		watched  bool
		observed bool // a directory was observed at now
		want     time.Duration
	}{
		{"no notifier: poll", false, false, true, pollEvery},
		{"notifier, nothing observed yet: poll", true, false, false, pollEvery},
		{"notifier, nobody watching: until the next sample", true, false, true, DefaultSampleEvery},
		{"notifier, a dashboard watching: poll", true, true, true, pollEvery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMonitor(&notifyingSource{})
			if tt.observed {
				m.hist.Observe(nil, now)
			}
			if tt.watched {
				m.subs[make(chan Update, 1)] = &stream{}
			}
			if got := m.untilNext(tt.notified, now); got != tt.want {
				t.Errorf("untilNext = %v, want %v", got, tt.want)
			}
		})
	}
}

// A dashboard that reads too slowly misses updates (its buffer holds 8),
// but no events or samples: the dashboard adds each update's to what it
// shows, so the next update it gets carries all those since the last it
// got.
func TestMonitorSlowStreamMissesNoEvents(t *testing.T) {
	src := &notifyingSource{reads: make(chan struct{}, 1), changes: make(chan struct{}, 1)}
	src.set(directory.Node{ID: "n1", Status: directory.Up}, directory.Node{ID: "n2", Status: directory.Up})
	mon := NewMonitor(src)
	mon.poll = time.Hour // read on changes only
	mon.hist = NewHistory(0, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mon.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	awaitRead(t, src, "the first reading")
	first, ch, err := mon.subscribe("")
	if err != nil {
		t.Fatal(err)
	}
	defer mon.unsubscribe(ch)
	awaitRead(t, src, "the subscription's reading")

	// change sets n2's status and waits until the monitor read it.
	statuses := []directory.Status{directory.Down, directory.Up}
	changes := 0
	change := func() {
		t.Helper()
		src.set(directory.Node{ID: "n1", Status: directory.Up}, directory.Node{ID: "n2", Status: statuses[changes%2]})
		changes++
		src.changes <- struct{}{}
		awaitRead(t, src, "after a change")
	}
	// drain reads the updates waiting; all of them have gone out once the
	// monitor has read the directory again after the last change (it
	// reads again only once it has pushed the last reading's update).
	var got []Update
	drain := func() {
		t.Helper()
		src.changes <- struct{}{}
		awaitRead(t, src, "after the changes")
		for {
			select {
			case u := <-ch:
				got = append(got, u)
			default:
				return
			}
		}
	}
	for range cap(ch) + 4 { // 4 updates past what the stream holds: dropped
		change()
	}
	drain()
	change() // the next update, once the stream has room
	drain()

	var evs []Event
	samples := len(first.Samples)
	for _, u := range got {
		evs = append(evs, u.Events...)
		samples += len(u.Samples)
	}
	mon.mu.Lock()
	want, wantSamples := mon.hist.Events(), len(mon.hist.Samples())
	mon.mu.Unlock()
	if len(want) != changes {
		t.Fatalf("the history holds %d events, want %d", len(want), changes)
	}
	if len(evs) != len(want) {
		t.Fatalf("the stream got %d events in %d updates, want all %d", len(evs), len(got), len(want))
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d: got %+v, want %+v", i, evs[i], want[i])
		}
	}
	if samples != wantSamples {
		t.Errorf("the stream got %d samples, want all %d", samples, wantSamples)
	}
}
