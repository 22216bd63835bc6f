package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
)

// Two of three node processes killed (kill -9) at once: the rooms'
// storage has lost its quorum. The survivor steps aside (degraded), and
// the text its typist types meanwhile waits in the client; when the two
// come back on their data, the cluster elects again, the typist's
// session attaches again and its held text is stored, once, after what
// was acknowledged before the kills: a newcomer reads the room whole.
func TestTwoOfThreeKilledAndBack(t *testing.T) {
	// A bound for the whole test, not a wait: two restarts whose Raft
	// groups wait out nats-server's 4-9 s election timeout, on a loaded
	// machine.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, _ := startLoggedCluster(ctx, t, "killtwo.test")
	const room = "quorum"
	ann := typistIn(ctx, t, c, "ann", "n1", room, "before the kills; ")

	if err := c.KillAll([]int{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.SendText(room, "while two were gone; "); err != nil {
		t.Fatal(err)
	}
	err := localcluster.Await(ctx, time.Minute, func(ctx context.Context) error {
		st, err := c.Nodes[0].Status(ctx, "n1")
		if err == nil && st != directory.Degraded {
			err = fmt.Errorf("n1 says it is %s, want degraded", st)
		}
		return err
	})
	if err != nil {
		t.Fatalf("the survivor alone: %v", err)
	}
	// An acknowledgement says stored on a quorum: none without one.
	if n := ann.Unacked(room); n != 1 {
		t.Errorf("%d of ann's chunks unacknowledged with two of three nodes gone, want 1", n)
	}

	restarted := time.Now()
	for _, i := range []int{1, 2} {
		if err := c.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	// In order: once this is acknowledged, so was the text before it.
	if _, err := ann.SendTextWait(ctx, room, "after"); err != nil {
		t.Fatalf("text after the two came back: %v", err)
	}
	t.Logf("ann's held text stored %v after the restarts", time.Since(restarted).Round(time.Millisecond))
	bob, err := client.Dial(ctx, strings.Join(c.Addrs(), ","), client.WithUser("bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	st, err := bob.JoinWait(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Live["ann"], "before the kills; while two were gone; after"; got != want {
		t.Errorf("the room holds ann's %q, want %q: once each, in order", got, want)
	}
}

// typistIn dials cluster c as user, attached to node home while it is
// available, joins room and has text stored there (acknowledged). The
// session closes with the test.
func typistIn(ctx context.Context, t *testing.T, c *localcluster.Cluster, user, home, room, text string) *client.Session {
	t.Helper()
	s, err := client.Dial(ctx, strings.Join(c.Addrs(), ","), client.WithUser(user), client.WithPolicy(homeNode(home)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.JoinWait(ctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendTextWait(ctx, room, text); err != nil {
		t.Fatal(err)
	}
	return s
}
