package node

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// holder applies the directory lines a client reads, in order, as the
// protocol says: a whole directory replaces what it holds, a delta
// replaces or adds the nodes it lists and drops those gone.
func holder(t *testing.T, lines []byte) map[string]directory.Status {
	t.Helper()
	held := map[string]directory.Status{}
	for line := range bytes.Lines(lines) {
		m, err := wire.Decode(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		if m.Op != wire.OpDirectory {
			continue
		}
		if !m.Delta {
			clear(held)
		}
		for _, n := range m.Nodes {
			held[n.ID] = n.Status
		}
		for _, id := range m.Gone {
			delete(held, id)
		}
	}
	return held
}

// A hello's answer and a push that comes between the hello's read of
// the view and its answer: the push, from the newer view, is queued
// first, and the hello's older view after it. Before, the client then
// held the older view (n2 still up) while the node counted it as holding
// the push's; a client asking for deltas was sent only later changes on
// top of it, and one that was not stayed stale until the next change.
// Now the hello, seeing that a push went out meanwhile, answers again
// from the newer view, so the client holds what the node shows.
func TestHelloRacingAPush(t *testing.T) {
	node := func(id string, status directory.Status) directory.Node {
		return directory.Node{ID: id, Addr: id + ":7070", Status: status, Capacity: 10}
	}
	before := []directory.Node{node("n1", directory.Up), node("n2", directory.Up), node("n3", directory.Up)}
	after := []directory.Node{node("n1", directory.Up), node("n2", directory.Draining), node("n3", directory.Up)}
	want := map[string]directory.Status{"n1": directory.Up, "n2": directory.Draining, "n3": directory.Up}
	for _, deltas := range []bool{true, false} {
		n := &Node{
			cfg:      Config{Service: "chat.local", ID: "n1", MaxQueue: 1 << 20},
			log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
			sessions: map[*session]struct{}{},
			metrics: &metrics{
				pushes:      prometheus.NewCounter(prometheus.CounterOpts{Name: "pushes"}),
				deltaPushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "delta_pushes"}),
			},
		}
		taken := time.Now()
		n.view.Store(&view{nodes: before, taken: taken, parts: &n.parts})
		// An attached session whose writer is busy: what it is sent
		// queues up, in the order the client will read it.
		s := &session{n: n, writing: true}
		s.attached.Store(true)
		n.sessions[s] = struct{}{}
		n.pushDirectory(map[string]struct{}{}) // a push before: the session's generation is old

		pushed := false
		read := func() {
			if pushed {
				return
			}
			pushed = true
			// run stores the view showing n2 draining, and its push
			// goes out before the hello's answer is queued.
			n.view.Store(&view{nodes: after, taken: taken, parts: &n.parts})
			n.pushDirectory(map[string]struct{}{"n2": {}})
		}
		helloViewRead.Store(&read)
		s.sayDirectory(wire.Message{Op: wire.OpHello, V: wire.Version, Deltas: deltas})
		helloViewRead.Store(nil)
		if !pushed {
			t.Fatal("the hello never read the view")
		}
		s.mu.Lock()
		queued := bytes.Clone(s.queue)
		s.mu.Unlock()
		if got := holder(t, queued); !equalStatus(got, want) {
			t.Errorf("deltas=%v: after the hello and the push the client holds %v, the node shows %v; lines:\n%s", deltas, got, want, queued)
		}
		// The next push carries a later change only; the client must end
		// with what the node shows.
		later := []directory.Node{node("n1", directory.Up), node("n2", directory.Draining), node("n3", directory.Full)}
		n.view.Store(&view{nodes: later, taken: taken, parts: &n.parts})
		n.pushDirectory(map[string]struct{}{"n3": {}})
		want3 := map[string]directory.Status{"n1": directory.Up, "n2": directory.Draining, "n3": directory.Full}
		s.mu.Lock()
		queued = bytes.Clone(s.queue)
		s.mu.Unlock()
		if got := holder(t, queued); !equalStatus(got, want3) {
			t.Errorf("deltas=%v: after the next push the client holds %v, the node shows %v", deltas, got, want3)
		}
	}
}

func equalStatus(a, b map[string]directory.Status) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
