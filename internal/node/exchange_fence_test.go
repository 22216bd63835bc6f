package node_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// droppedNotTaken waits until n has logged a line containing logged, or
// lists id at addr (the forged entry was taken), and fails the test in
// the second case.
func droppedNotTaken(t *testing.T, n *node.Node, logs *logLines, logged, id, addr string) {
	t.Helper()
	nodetest.Eventually(t, settle, func() error {
		if e, ok := nodetest.Lookup(n, id); ok && e.Addr == addr {
			return nil
		}
		return logs.saw(logged)
	})
	if e, ok := nodetest.Lookup(n, id); ok && e.Addr == addr {
		t.Fatalf("%s took the forged entry: it lists %s at %s", n.ID(), id, e.Addr)
	}
}

// A message on a node's entry subject that the NATS server itself sent,
// past the publish fence, carries headers: here a stream's RePublish of a
// forged entry for n2. A node publishes its entries without headers, so
// n1 drops it and keeps n2 as n2 says it is.
func TestEntryWithHeadersIsDropped(t *testing.T) {
	logs := &logLines{}
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 0 {
			cfg.Logger = slog.New(logs)
		}
	}})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	c.WaitAllUp(settle)
	js, err := n1.GeneralConn().JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}, Storage: nats.MemoryStorage,
		RePublish: &nats.RePublish{Source: "evil.n2", Destination: n1.EntrySubject("n2")}}); err != nil {
		t.Fatal(err)
	}
	const addr = "203.0.113.9:7070"
	data, err := json.Marshal(forged("n2", addr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish("evil.n2", data); err != nil {
		t.Fatal(err)
	}
	droppedNotTaken(t, n1, logs, "with headers", "n2", addr)
	if e, ok := nodetest.Lookup(n1, "n2"); !ok || e.Addr != n2.Addr() {
		t.Errorf("n1 lists n2 as %+v, want at %s", e, n2.Addr())
	}
}

// An incarnation is its node's start time in nanoseconds, and the table
// takes a node's entries only from its newest: an entry whose incarnation
// is days ahead would make every real heartbeat of its node stale until
// then. A peer drops it; an hour ahead (a fast clock) it still takes.
func TestEntryIncarnationFarAheadIsDropped(t *testing.T) {
	logs := &logLines{}
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 1 {
			cfg.Logger = slog.New(logs)
		}
	}})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	c.WaitAllUp(settle)
	publish := func(addr string, ahead time.Duration) {
		t.Helper()
		e := forged("n1", addr)
		e.Incarnation = uint64(time.Now().Add(ahead).UnixNano())
		if err := n1.PublishEntry(true, n1.EntrySubject("n1"), e); err != nil {
			t.Fatal(err)
		}
	}
	const days, hour = "203.0.113.9:7070", "203.0.113.10:7070"
	publish(days, 48*time.Hour)
	droppedNotTaken(t, n2, logs, "incarnation is more than a day ahead", "n1", days)
	if e, ok := nodetest.Lookup(n2, "n1"); !ok || e.Addr != n1.Addr() {
		t.Errorf("n2 lists n1 as %+v, want at %s", e, n1.Addr())
	}
	publish(hour, time.Hour)
	nodetest.Eventually(t, settle, func() error {
		if e, ok := nodetest.Lookup(n2, "n1"); !ok || e.Addr != hour {
			return fmt.Errorf("n2 lists n1 as %+v, want the entry an hour ahead, at %s", e, hour)
		}
		return nil
	})
}

// What waits for a node's run is bounded in bytes, not only in messages:
// a message larger than an entry can be never takes a place in the queue
// (nats.go bounds a channel subscription by its messages alone), and the
// subscriptions hold at most the queue's worth of bytes.
func TestEntryQueueHoldsNoOversizedMessage(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	c.WaitAllUp(settle)
	queue, subs, err := n2.ListenEntries()
	t.Cleanup(func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range subs {
		msgs, bytes, err := sub.PendingLimits()
		if err != nil || msgs != node.EntryQueue || bytes != node.EntryQueue*node.MaxEntrySize {
			t.Errorf("%s: pending limits %d messages, %d bytes (%v), want %d and %d", sub.Subject, msgs, bytes, err, node.EntryQueue, node.EntryQueue*node.MaxEntrySize)
		}
	}
	// Large messages on n1's own subject, which its directory connection
	// may publish on, then a marker: once the marker is queued at n2,
	// every message before it has been queued or dropped (one
	// subscription delivers in order).
	dir := n1.DirConn()
	big := []byte(strings.Repeat("x", 1<<20))
	for range 4 {
		if err := dir.Publish(n1.EntrySubject("n1"), big); err != nil {
			t.Fatal(err)
		}
	}
	marker := []byte("marker")
	if err := dir.Publish(n1.EntrySubject("n1"), marker); err != nil {
		t.Fatal(err)
	}
	if err := dir.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(settle)
	for {
		select {
		case m := <-queue:
			if len(m.Data) > node.MaxEntrySize {
				t.Fatalf("a message of %d bytes was queued for run, the most an entry may be is %d", len(m.Data), node.MaxEntrySize)
			}
			if string(m.Data) == string(marker) {
				return
			}
		case <-deadline:
			t.Fatal("the marker never reached the queue")
		}
	}
}
