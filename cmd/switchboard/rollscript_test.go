//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/localcluster"
)

// deploy/roll.sh itself, as an operator runs it, over three node
// processes: each node is drained, restarted by the RESTART command and
// waited for until it is up and the rooms' copies have caught up, in the
// order NODES gives; the roll ends saying so, every node restarted once,
// and a session in a room moved at each drain of its node and never
// dropped. RESTART asks the test to restart the node (localcluster keeps
// the processes) through a pair of named pipes, which the test holds open
// to read and write: no open of either ever blocks, and a RESTART that
// gets no answer gives up after a minute.
func TestRollScript(t *testing.T) {
	// A bound for the whole test, not a wait: three restarts, each until
	// the rooms' copies have caught up, on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, _ := startLoggedCluster(ctx, t, "roll.test")

	// A member of a room on n1, the first to roll.
	s, err := client.Dial(ctx, strings.Join(c.Addrs(), ","), client.WithUser("ann"), client.WithPolicy(homeNode("n1")))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.JoinWait(ctx, "roll"); err != nil {
		t.Fatal(err)
	}
	events := make(chan client.Event, 64)
	go func() {
		for e := range s.Events() {
			if e.Kind != client.Received && e.Kind != client.DirectoryPushed {
				events <- e
			}
		}
		close(events)
	}()

	dir := t.TempDir()
	req, ans := filepath.Join(dir, "restart"), filepath.Join(dir, "restarted")
	for _, p := range []string{req, ans} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Each opened to read and write, so that no open blocks (here or in
	// the script) and requests' reads see no end while RESTART commands
	// come and go; closing requests ends serveRestarts.
	requests, err := os.OpenFile(req, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	answers, err := os.OpenFile(ans, os.O_RDWR, 0)
	if err != nil {
		requests.Close()
		t.Fatal(err)
	}
	var restarted []string
	served := make(chan error, 1)
	go func() { served <- serveRestarts(c, requests, answers, &restarted) }()
	t.Cleanup(func() {
		requests.Close()
		answers.Close()
		<-served
	})

	var nodes []string
	for _, n := range c.Nodes {
		nodes = append(nodes, n.ID+"="+n.HTTP)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "deploy", "roll.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(os.Environ(),
		"NODES="+strings.Join(nodes, " "),
		"SWITCHBOARD="+binary,
		"WITHIN=10s",
		"READY_WAIT=90",
		fmt.Sprintf(`RESTART=echo "$NODE_ID" > %q && read -r -t 60 answer < %q && [ "$answer" = ok ]`, req, ans),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second // a RESTART left behind by a killed roll.sh
	err = cmd.Run()
	requests.Close()
	t.Logf("roll.sh:\n%s", out.String())
	if err != nil {
		t.Fatalf("roll.sh: %v", err)
	}
	if !strings.Contains(out.String(), "every node rolled") {
		t.Errorf("roll.sh did not say it rolled every node")
	}
	if err := <-served; err != nil {
		t.Errorf("restarting for roll.sh: %v", err)
	}
	served <- nil // for the cleanup
	if want := []string{"n1", "n2", "n3"}; !slices.Equal(restarted, want) {
		t.Errorf("roll.sh restarted %v, want %v", restarted, want)
	}
	for _, n := range c.Nodes {
		if !n.Alive() {
			t.Errorf("%s is not running after the roll", n.ID)
		}
	}
	// ann moved off n1 at its drain, and off wherever she was at the
	// next drains, without a drop.
	s.Close()
	moved := 0
	for e := range events {
		switch e.Kind {
		case client.Moved:
			moved++
		case client.Disconnected, client.Reattached:
			t.Errorf("ann's session: %v (%v), want moves only", e.Kind, e.Err)
		}
	}
	if moved == 0 {
		t.Errorf("ann's session never moved; want a move at least at n1's drain")
	}
}

// serveRestarts answers roll.sh's RESTART commands until req is closed:
// each names a node on a line of req, which is terminated (it was
// drained: it stops at once), started again on the same data, and
// answered "ok" on a line of ans.
func serveRestarts(c *localcluster.Cluster, req, ans *os.File, restarted *[]string) error {
	lines := bufio.NewScanner(req)
	for lines.Scan() {
		id := strings.TrimSpace(lines.Text())
		i := slices.IndexFunc(c.Nodes, func(n *localcluster.Node) bool { return n.ID == id })
		answer := "ok"
		if i < 0 {
			answer = "no node " + id
		} else if err := c.Terminate(i); err != nil {
			answer = err.Error()
		} else if err := c.Restart(i); err != nil {
			answer = err.Error()
		}
		*restarted = append(*restarted, id)
		if _, err := fmt.Fprintln(ans, answer); err != nil {
			return err
		}
		if answer != "ok" {
			return fmt.Errorf("restarting %s: %s", id, answer)
		}
	}
	if err := lines.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil // closed: the roll is over
}
