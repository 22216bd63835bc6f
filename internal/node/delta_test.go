package node_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// helloDeltas says hello on c asking for pushes of changes, without
// attaching, and reads the directory it answers with.
func helloDeltas(t *testing.T, c *client.Conn) {
	t.Helper()
	send(t, c, wire.Message{Op: wire.OpHello, V: wire.Version, Client: "test/1", Deltas: true})
	if m := recv(t, c); m.Op != wire.OpDirectory || m.Delta {
		t.Fatalf("hello answered %+v, want a whole directory", m)
	}
}

// attachAfterHello attaches on c, which said hello already.
func attachAfterHello(t *testing.T, c *client.Conn, user string) {
	t.Helper()
	send(t, c, wire.Message{Op: wire.OpAttach, User: user})
	if m := recvReply(t, c); m.Op != wire.OpAttached {
		t.Fatalf("attach: got %+v", m)
	}
}

// pushShowing reads c's pushes until one lists id with status, and
// returns it; it fails after settle.
func pushShowing(t *testing.T, c *client.Conn, id string, status directory.Status) wire.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for a push showing %s %s: %v", id, status, err)
		}
		if m.Op != wire.OpDirectory {
			continue
		}
		for _, n := range m.Nodes {
			if n.ID == id && n.Status == status {
				return m
			}
		}
	}
}

// A session whose hello asked for deltas is pushed only the node that
// changed, with the size of the whole directory; one that did not ask
// gets the whole view as before; and one that missed a push (it said
// hello, then attached after a change was pushed) gets a whole view
// next, never changes on top of a directory it does not have.
func TestDirectoryDeltas(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	n1 := c.Nodes[0]
	deltas, whole, late := dial(t, n1.Addr()), dial(t, n1.Addr()), dial(t, n1.Addr())
	helloDeltas(t, deltas)
	attachAfterHello(t, deltas, "alice")
	attach(t, whole, "bob")
	helloDeltas(t, late)

	c.Nodes[1].SetDraining(true)
	pushShowing(t, deltas, "n2", directory.Draining)
	pushShowing(t, whole, "n2", directory.Draining)
	attachAfterHello(t, late, "carol")

	c.Nodes[2].SetDraining(true)
	got := pushShowing(t, deltas, "n3", directory.Draining)
	if !got.Delta || got.Total != 3 || len(got.Nodes) >= 3 {
		t.Errorf("the session that asked for deltas was pushed %+v, want a delta with n3 alone and total 3", got)
	}
	for name, conn := range map[string]*client.Conn{"without deltas": whole, "that missed a push": late} {
		got := pushShowing(t, conn, "n3", directory.Draining)
		if got.Delta || len(got.Nodes) != 3 {
			t.Errorf("the session %s was pushed %+v, want the whole directory of 3", name, got)
		}
	}
}

// A Go client session applies the pushed changes to the directory it
// holds: after a peer drains, its event is that change and Directory
// lists every node, that one draining; a directory handed out is not
// changed by later pushes.
func TestSessionAppliesDeltas(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	s, err := client.Dial(ctx, c.Nodes[0].Addr(), client.WithUser("alice"), client.WithPolicy(preferNode("n1")))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	statuses := func(d *wire.Directory) map[string]directory.Status {
		status := map[string]directory.Status{}
		for _, n := range d.Nodes {
			status[n.ID] = n.Status
		}
		return status
	}
	// Two changes, the first applied to a copy of the directory handed
	// out here, the second to the session's own copy in place.
	before := s.Directory()
	beforeStatus := statuses(before)
	for i, id := range []string{"n2", "n3"} {
		c.Nodes[i+1].SetDraining(true)
		for {
			var e client.Event
			select {
			case e = <-s.Events():
			case <-ctx.Done():
				t.Fatalf("no push showed %s draining: %v", id, ctx.Err())
			}
			if e.Kind != client.DirectoryPushed || statuses(e.Message.Directory())[id] != directory.Draining {
				continue
			}
			// The first may be a whole view, if a push went out between
			// the session's hello and its attach; the second may not.
			if i == 1 && (!e.Message.Delta || len(e.Message.Nodes) >= 3) {
				t.Fatalf("the push about %s was %+v, want a delta with fewer than 3 nodes", id, e.Message)
			}
			break
		}
	}
	want := map[string]directory.Status{"n1": directory.Up, "n2": directory.Draining, "n3": directory.Draining}
	if diff := cmp.Diff(want, statuses(s.Directory())); diff != "" {
		t.Fatalf("after n2 and n3 drained the session holds (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(beforeStatus, statuses(before)); diff != "" {
		t.Fatalf("the directory handed out before changed (-before +after):\n%s", diff)
	}
}
