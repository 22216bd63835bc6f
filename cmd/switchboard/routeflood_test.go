//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
)

// floodConns is how many connections TestRouteFloodLeavesTheNodeStanding's
// stranger keeps open at once: past the node's whole table.
const floodConns = tableLimit + 600

// TestRouteFloodLeavesTheNodeStanding floods a node's cluster port, as a
// stranger who reaches it can (security.md: the port is not bounded
// before authentication), with connections that never authenticate,
// until the node's descriptor table is full. Nothing protects the table
// there, so the test pins what the node does keep: the session attached
// before the flood has its text stored and acknowledged while the table
// is full (the rooms' stream files are open already, and two of the three
// copies suffice). Elections meanwhile make nats-server stop the node's
// copy of a stream for good (its term and vote file cannot be opened).
// Once the stranger leaves, the node is whole again without a restart of
// its process: it restarts its JetStream itself (storage.go) and every
// copy catches up, its peers list it up, a newcomer attaches to it and
// reads that text, and its readiness probe answers. (faults.md,
// "Descriptors"; operations.md, "Raft groups stopped on a failed write";
// the alert on a table nearly full is deploy/alerts.yml's
// SwitchboardDescriptorsNearlyFull.)
func TestRouteFloodLeavesTheNodeStanding(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, logs := startLimited(ctx, t, localcluster.Config{Nodes: 3, Service: "routeflood.test"})
	n := c.Nodes[0]
	// Every copy of the rooms' streams in place, so that the flood is
	// the only thing between the node and its storage.
	if err := c.WaitCaughtUp(ctx, settle); err != nil {
		t.Fatal(err)
	}
	ann, err := client.Dial(ctx, n.Addr, client.WithUser("ann"))
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	if _, err := ann.JoinWait(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.SendTextWait(ctx, "lobby", "before the flood\n"); err != nil {
		t.Fatal(err)
	}

	// The stranger: floodConns connections to the cluster port from 100
	// addresses, each held until the node closes it (its route TLS
	// handshake timeout) and dialled again at once.
	floodCtx, stopFlood := context.WithCancel(ctx)
	defer stopFlood()
	var flood sync.WaitGroup
	for i := range floodConns {
		flood.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(10+i%100))}}
			for floodCtx.Err() == nil {
				conn, err := d.DialContext(floodCtx, "tcp", n.Cluster)
				if err != nil {
					select { // not a busy loop if dials fail at once
					case <-floodCtx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				stop := context.AfterFunc(floodCtx, func() { conn.Close() })
				io.Copy(io.Discard, conn)
				stop()
				conn.Close()
			}
		})
	}
	// The table is full: the node holds every descriptor it may.
	floodStarted := time.Now()
	err = localcluster.Await(ctx, settle, func(context.Context) error {
		open, limit, err := n.OpenFiles()
		if err != nil {
			return err
		}
		if open < limit {
			return fmt.Errorf("the node holds %d of its %d descriptors", open, limit)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the flood never filled the node's table: %v", err)
	}
	t.Logf("the node's table full %v after the flood began", time.Since(floodStarted).Round(time.Millisecond))
	// Text typed now is stored and acknowledged.
	if _, err := ann.SendTextWait(ctx, "lobby", "during the flood\n"); err != nil {
		t.Fatalf("text typed with the node's table full: %v", err)
	}
	// Elections meanwhile: each new term is a file the node's copy of the
	// stream must write (its term and vote), and nats-server stops a Raft
	// group for good when that write fails. Moved until a group stopped,
	// or a few times.
	groupStopped := func() bool { // a Raft group, on the flooded node, by its log
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "RAFT [") && strings.Contains(line, "Critical write error") && strings.Contains(line, "node="+n.ID) {
				return true
			}
		}
		return false
	}
	for i := 0; i < 8 && !groupStopped(); i++ {
		moveCtx, cancelMove := context.WithTimeout(ctx, 10*time.Second)
		err := c.Nodes[1].MoveRoomLeader(moveCtx, "lobby", c.Nodes[1+i%2].ID)
		cancelMove()
		if err != nil {
			t.Logf("moving the room's stream leader: %v", err)
		}
	}
	stopFlood()
	flood.Wait()
	stoppedGroup := groupStopped()
	t.Logf("a Raft group stopped on a failed write during the flood: %v", stoppedGroup)

	// The flood reached the node: its NATS could not accept.
	if !strings.Contains(logs.String(), "too many open files") {
		t.Errorf("no node logged running out of descriptors: the flood missed")
	}
	if stoppedGroup {
		// The node's own repair, done: counted, and storing again.
		hc := http.Client{Timeout: settle}
		repaired := regexp.MustCompile(`(?m)^switchboard_storage_repairs_total [1-9]`)
		storing := regexp.MustCompile(`(?m)^switchboard_storage_stopped 0$`)
		err := localcluster.Await(ctx, 2*time.Minute, func(context.Context) error {
			resp, err := hc.Get("http://" + n.HTTP + "/metrics")
			if err != nil {
				return err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if !repaired.Match(body) || !storing.Match(body) {
				return errors.New("no repair counted, or storage still stopped")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("a Raft group stopped on the node: %v", err)
		}
	}
	// Every copy of every stream runs and has caught up again, the
	// node's own too: a group that stopped was started again.
	if err := c.WaitCaughtUp(ctx, 2*time.Minute); err != nil {
		t.Fatalf("after the flood: %v", err)
	}
	// Its peers list it up.
	err = localcluster.Await(ctx, settle, func(ctx context.Context) error {
		for _, peer := range c.Nodes[1:] {
			d, err := peer.Directory(ctx)
			if err != nil {
				return err
			}
			for _, e := range d.Nodes {
				if e.ID == n.ID && e.Status != directory.Up {
					return fmt.Errorf("%s lists %s %s", peer.ID, n.ID, e.Status)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("after the flood: %v", err)
	}
	if stoppedGroup {
		// The repair's story, timed by the node's log (operations.md),
		// once its peers list it up again.
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "node="+n.ID) && (strings.Contains(line, "Critical write error") ||
				strings.Contains(line, "stepping aside") || strings.Contains(line, "the embedded JetStream stopped") ||
				strings.Contains(line, "restarted the embedded JetStream") || strings.Contains(line, "up again")) {
				t.Log(strings.TrimSpace(line))
			}
		}
	}
	// Whole again, without a restart.
	bob := newcomerAfterFlood(ctx, t, n)
	st, err := bob.JoinWait(ctx, "lobby")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range st.Lines {
		lines = append(lines, l.Text)
	}
	if got, want := strings.Join(lines, "|"), "before the flood|during the flood"; got != want {
		t.Errorf("the newcomer's lines of the room: %q, want %q", got, want)
	}
	checkReady(t, n, "after the flood")
	if _, err := bob.SendTextWait(ctx, "lobby", "after the flood\n"); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("text typed after the flood: %v", err)
	}
}
