//go:build linux

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A WebRTC peer whose node's disk fills: n1 keeps its data on a small
// file system that fills up, its JetStream stops, and it asks its
// sessions to move, the bridge of ann's peer among them. The bridge
// attaches elsewhere make-before-break: ann's data channel stays open,
// what she types after reaches the room once, in order, and bob, on n2,
// never sees her leave (faults.md, the WebRTC front and a full disk).
func TestRTCPeerRidesOutAFullDisk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	data := t.TempDir()
	disk := filepath.Join(data, "n1")
	nodetest.SmallDisk(t, disk, 64<<20)
	l := newRTCLab(ctx, t, "rtcdisk.test", data)
	n1 := l.c.Nodes[0]
	ann := callRTC(t, l.offerURL(0), "lobby", "ann", nil)
	waitFor(t, "ann's channel to open on n1", ann.opened)
	if err := ann.dc.SendText("before "); err != nil {
		t.Fatal(err)
	}
	l.bobHas(ctx, t, "before ")
	if k, err := usersOn(ctx, n1); err != nil || k != 1 {
		t.Fatalf("n1 has %d users (%v), want 1: ann's bridge", k, err)
	}

	// A write must fail for nats-server to stop n1's JetStream: the
	// filler's chunks, on n3, reach every copy of the room bulk's stream.
	filler, err := client.Dial(ctx, l.c.Nodes[2].Addr, client.WithUser("filler"), client.WithPolicy(homeNode("n3")))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	if _, err := filler.JoinWait(ctx, "bulk"); err != nil {
		t.Fatal(err)
	}
	filling := time.Now()
	nodetest.FillUntil(t, settle, []string{disk}, filler, func() error {
		if st, err := n1.Status(ctx, n1.ID); err != nil || st != directory.Degraded {
			return fmt.Errorf("n1 calls itself %q (%v), want degraded", st, err)
		}
		return nil
	})
	// Every session gone from n1, the bridge's with them: a client's
	// move may take 20 s (10 to attach and join elsewhere, 10 before it
	// retires the old connection), and n1 closes what is left 30 s
	// after its ask.
	err = localcluster.Await(ctx, time.Minute, func(ctx context.Context) error {
		if k, err := usersOn(ctx, n1); err != nil || k != 0 {
			return fmt.Errorf("n1 has %d users (%v), want 0", k, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("n1 degraded with its disk full, and no session left on it, %v after the filling began", time.Since(filling).Round(time.Millisecond))
	if err := ann.dc.SendText("after"); err != nil {
		t.Fatal(err)
	}
	l.bobHas(ctx, t, "before after")
	select {
	case <-ann.closed:
		t.Error("ann's data channel closed: her bridge's move should not show to the page")
	case <-ann.failed:
		t.Error("ann's connection failed")
	default:
	}
	if !strings.Contains(l.logs.String(), `msg="asking sessions to move:`) {
		t.Error("no node logged asking its sessions to move")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.left["ann"] {
		t.Error("bob saw ann leave: her bridge's move should show no presence change")
	}
}

// usersOn is the count of sessions node n's own directory entry gives.
func usersOn(ctx context.Context, n *localcluster.Node) (int, error) {
	d, err := n.Directory(ctx)
	if err != nil {
		return 0, err
	}
	for _, e := range d.Nodes {
		if e.ID == n.ID {
			return e.Users, nil
		}
	}
	return 0, fmt.Errorf("%s does not list itself", n.ID)
}
