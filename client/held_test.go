package client_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// A session that drops reattaches from the directory it holds, straight
// to its pick, and asks the common address only when that directory's
// candidates fail. The common address ("gate") and the nodes are fakes,
// and every dial is recorded by node, so the order shows as a transcript.
func TestDropPicksFromHeldDirectory(t *testing.T) {
	tests := []struct {
		name string
		// n2Dead: n2, listed up in the held directory, refuses
		// connections too.
		n2Dead bool
		want   []string // dials, in order, until the reattach
		node   string   // where the session ends
	}{
		{
			name: "held candidate takes the session",
			want: []string{"gate", "n1", "n2"},
			node: "n2",
		},
		{
			name:   "held candidates fail: then the common address",
			n2Dead: true,
			want:   []string{"gate", "n1", "n2", "n2", "n2", "gate", "n3"},
			node:   "n3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate, n1, n2, n3 := newFakeNode(t, "gate"), newFakeNode(t, "n1"), newFakeNode(t, "n2"), newFakeNode(t, "n3")
			// n1 and n2 know each other (what n1 sends is what the
			// session holds); the common address knows only n1 at first.
			pair := func() []directory.Node { return []directory.Node{n1.entry(), n2.entry()} }
			n1.setDirectory(pair)
			n2.setDirectory(pair)
			gate.setDirectory(func() []directory.Node { return []directory.Node{n1.entry()} })
			fd := &faultDialer{ids: map[string]string{gate.Addr(): "gate", n1.Addr(): "n1", n2.Addr(): "n2", n3.Addr(): "n3"}, refuse: map[string]bool{}}
			// One hello at a time: the dials come in the order asserted
			// however slowly the machine makes a connection.
			s, err := client.Dial(dialCtx(t), gate.Addr(), client.WithUser("alice"), client.WithDialer(fd),
				client.WithPolicy(preferring("n1", "n2", "n3")), client.WithRetry(fastRetry()), client.WithHelloStagger(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if s.Node().ID != "n1" {
				t.Fatalf("attached to %s, want n1", s.Node().ID)
			}
			// Only n3 is left, and only the common address knows it.
			gate.setDirectory(func() []directory.Node { return []directory.Node{n3.entry()} })
			if tt.n2Dead {
				fd.mu.Lock()
				fd.refuse["n2"] = true
				fd.mu.Unlock()
			}
			n1.stop()
			back := awaitEvent(t, s, "reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
			if back.Node.ID != tt.node {
				t.Errorf("reattached to %s (%s), want %s", back.Node.ID, back.Reason, tt.node)
			}
			if diff := cmp.Diff(fd.log(), tt.want); diff != "" {
				t.Errorf("dials (-got +want):\n%s", diff)
			}
		})
	}
}

// A node counts a session attached a moment before it says so, and a
// directory it pushes in that moment comes before its attached answer.
// The session keeps it, whole or as changes to the hello's directory,
// whether it attached on the connection that said hello to the common
// address or on one of its own.
func TestDirectoryPushedBeforeAttachedIsKept(t *testing.T) {
	tests := []struct {
		name  string
		delta bool // the push carries only what changed
		gate  bool // the common address is another node, so the session dials n1
	}{
		{name: "changes, on the hello's connection", delta: true},
		{name: "whole, on a connection of its own", gate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n1, n2 := newFakeNode(t, "n1"), newFakeNode(t, "n2")
			common := n1
			if tt.gate {
				common = newFakeNode(t, "gate")
				common.setDirectory(func() []directory.Node { return []directory.Node{n1.entry()} })
			}
			push := &wire.Directory{Service: "fake.test", Self: "n1", Nodes: []directory.Node{n2.entry()}, Delta: true}
			if !tt.delta {
				push = &wire.Directory{Service: "fake.test", Self: "n1", Nodes: []directory.Node{n1.entry(), n2.entry()}}
			}
			n1.sendBeforeAttached(wire.DirectoryMessage(push))
			s, err := client.Dial(dialCtx(t), common.Addr(), client.WithUser("alice"),
				client.WithPolicy(preferring("n1")), client.WithRetry(fastRetry()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			var ids []string
			for _, n := range s.Directory().Nodes {
				ids = append(ids, n.ID)
			}
			slices.Sort(ids)
			if diff := cmp.Diff(ids, []string{"n1", "n2"}); diff != "" {
				t.Errorf("directory nodes after the attach (-got +want):\n%s", diff)
			}
		})
	}
}

// The node of a one-node service restarts: the session drops, and its
// node is in its cool-down. When the node answers the common address's
// hello again it is up again, and the session attaches on that very
// connection at once, instead of saying hello pass after pass until the
// cool-down ends.
func TestRestartedNodeIsTakenBackAtItsFirstHello(t *testing.T) {
	n := newFakeNode(t, "n1")
	s, err := client.Dial(dialCtx(t), n.Addr(), client.WithUser("alice"), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	before := n.helloCount()
	n.dropAll()
	awaitEvent(t, s, "drop", func(e client.Event) bool { return e.Kind == client.Disconnected }, nil)
	back := awaitEvent(t, s, "reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	if back.Node.ID != "n1" {
		t.Fatalf("reattached to %s, want n1", back.Node.ID)
	}
	if got := n.helloCount() - before; got != 1 {
		t.Errorf("the session said hello %d times before it reattached, want 1", got)
	}
}
