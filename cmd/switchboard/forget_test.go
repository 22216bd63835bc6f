package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
)

// A node killed for good (kill -9) and forgotten with `switchboard
// forget`: a newcomer takes its copies of the rooms, and the cluster then
// survives losing a second of its first three nodes, with the room's text
// whole. Without forget the storage would count four nodes, two of them
// gone, and store nothing; the newcomer would hold no copy. forget
// refuses a node that is up and the node it asks.
func TestForgetADepartedNode(t *testing.T) {
	// A bound for the whole test, not a wait: elections after each kill
	// wait out nats-server's 4-9 s timeout, on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, _ := startLoggedCluster(ctx, t, "forget.test")
	n1 := c.Nodes[0]
	const room = "kept"
	ann := typistIn(ctx, t, c, "ann", "n1", room, "before; ")

	for _, tc := range []struct{ id, want string }{
		{"n2", "n2 is up in this node's directory"},
		{"n1", "cannot forget itself"},
	} {
		if code, _, stderr := runArgs(t, "forget", n1.HTTP, tc.id); code != exitFailure || !strings.Contains(stderr, tc.want) {
			t.Errorf("forget %s: exit %d, stderr %q; want %d and %q", tc.id, code, stderr, exitFailure, tc.want)
		}
	}

	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	err := localcluster.Await(ctx, time.Minute, func(ctx context.Context) error {
		st, err := n1.Status(ctx, "n3")
		if err == nil && st != directory.Down {
			err = fmt.Errorf("n1 lists n3 %s", st)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// n3 may have led the storage's metadata group: its successor
	// answers once elected. A removal whose answer came too late may
	// have been committed all the same: then asking again finds n3 gone.
	failed := false
	err = localcluster.Await(ctx, time.Minute, func(context.Context) error {
		code, stdout, stderr := runArgs(t, "forget", n1.HTTP, "n3")
		if failed && code == exitFailure && strings.Contains(stderr, "404") {
			return nil
		}
		if code != exitOK || !strings.Contains(stdout, "forgot n3") {
			failed = true
			return fmt.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("forget n3: %v", err)
	}
	if code, _, stderr := runArgs(t, "forget", n1.HTTP, "n3"); code != exitFailure || !strings.Contains(stderr, "404") {
		t.Errorf("forget n3 again: exit %d, stderr %q; want %d and a 404", code, stderr, exitFailure)
	}

	if _, err := c.Add(ctx); err != nil {
		t.Fatal(err)
	}
	err = localcluster.Await(ctx, time.Minute, func(ctx context.Context) error {
		copies, err := n1.StreamCopies(ctx)
		if err != nil {
			return err
		}
		if len(copies) == 0 {
			return errors.New("no stream")
		}
		for stream, held := range copies {
			if !slices.Contains(held, "n4") {
				return fmt.Errorf("stream %s: current copies on %v", stream, held)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("n4 taking n3's copies: %v", err)
	}

	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.SendTextWait(ctx, room, "after"); err != nil {
		t.Fatalf("text with n2 and n3 gone: %v", err)
	}
	bob, err := client.Dial(ctx, strings.Join(c.Addrs(), ","), client.WithUser("bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	st, err := bob.JoinWait(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Live["ann"], "before; after"; got != want {
		t.Errorf("the room holds ann's %q, want %q", got, want)
	}
}
