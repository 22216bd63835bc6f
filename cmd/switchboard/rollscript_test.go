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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
)

// deploy/roll.sh itself, as an operator runs it, over three node
// processes: each node is drained, restarted by the RESTART command and
// waited for until it is up and the rooms' copies have caught up, in the
// order NODES gives; the roll ends saying so, every node restarted once,
// and a session in a room moved at each drain of its node and never
// dropped. Then a second roll whose first node dies in its restart stops
// there, with the other two untouched and up. RESTART asks the test to
// restart the node (localcluster keeps the processes) through a pair of
// named pipes, which the test holds open to read and write: no open of
// either ever blocks, and a RESTART that gets no answer gives up after a
// minute.
func TestRollScript(t *testing.T) {
	// A bound for the whole test, not a wait: three restarts, each until
	// the rooms' copies have caught up, then a second roll, on a loaded
	// machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, _ := startLoggedCluster(ctx, t, "roll.test")

	// A member of a room on n1, the first to roll.
	s := memberOn(ctx, t, c, "n1", "roll")
	if err := c.WaitCaughtUp(ctx, settle); err != nil {
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

	// A RESTART command first terminates the node (it was drained: it
	// stops at once) and starts it again on the same data.
	restarts := &restarter{do: func(i int) error {
		if err := c.Terminate(i); err != nil {
			return err
		}
		return c.Restart(i)
	}}
	pipes := newRestartPipes(t, c, restarts)
	nodes := rollNodes(c)
	roll := func(readyWait int) (string, error) { return pipes.roll(ctx, t, nodes, readyWait) }
	out, err := roll(90)
	if err != nil {
		pipes.requests.Close()
		t.Fatalf("roll.sh: %v", err)
	}
	if !strings.Contains(out, "every node rolled") {
		t.Errorf("roll.sh did not say it rolled every node")
	}
	if got, want := restarts.set(c.Kill), []string{"n1", "n2", "n3"}; !slices.Equal(got, want) {
		t.Errorf("roll.sh restarted %v, want %v", got, want)
	}
	for _, n := range c.Nodes {
		if !n.Alive() {
			t.Errorf("%s is not running after the roll", n.ID)
		}
	}

	// A second roll whose first node dies in its restart and does not
	// come back (a new binary that crashes, say): the roll stops there,
	// exit 1, names the node it left and the drain's undo, and touches
	// neither other node, which stay up with the rooms' quorum. (The
	// RESTART commands now kill the node: restarts.set above.)
	out, err = roll(3)
	pipes.requests.Close()
	if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("roll.sh over a node that does not come back: %v, want exit status 1", err)
	}
	for _, want := range []string{"n1 did not come back up within 3s; stopping the roll", "after draining n1", "drain --undo"} {
		if !strings.Contains(out, want) {
			t.Errorf("roll.sh did not say %q", want)
		}
	}
	if got, want := restarts.set(nil), []string{"n1"}; !slices.Equal(got, want) {
		t.Errorf("roll.sh restarted %v, want %v", got, want)
	}
	if err := <-pipes.served; err != nil {
		t.Errorf("restarting for roll.sh: %v", err)
	}
	pipes.served <- nil // for the cleanup
	for _, id := range []string{"n2", "n3"} {
		if st, err := c.Nodes[1].Status(ctx, id); err != nil || st != directory.Up {
			t.Errorf("%s after the stopped roll: %v (%v), want up", id, st, err)
		}
	}
	if _, err := s.SendTextWait(ctx, "roll", "after the stopped roll\n"); err != nil {
		t.Errorf("ann's text after the stopped roll: %v", err)
	}

	// ann moved off n1 at its drains, and off wherever she was at the
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

// roll.sh when a node other than the one rolling dies (kill -9) during
// the roll: here n3, killed while n1 restarts. The rooms' copies cannot
// all catch up without n3, so the script stops at n1, exit 1, saying
// why, before draining n2: a roll never takes a second node of three
// away while one is gone, which would leave the rooms' streams without a
// quorum. n2 stays up and the room stores text on the two left. (n1
// comes back up once JetStream has elected without n3, 4 to 9 s, and the
// script then waits out READY_WAIT for the copies; on a starved machine
// it may stop at n1 not up instead, which is as safe.)
func TestRollStopsWhenAnotherNodeDies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, _ := startLoggedCluster(ctx, t, "rollkill.test")
	s := memberOn(ctx, t, c, "n2", "roll")
	// Every copy caught up after the join, or roll.sh stops before n1.
	if err := c.WaitCaughtUp(ctx, settle); err != nil {
		t.Fatal(err)
	}
	restarts := &restarter{do: func(i int) error {
		if err := c.Kill(2); err != nil {
			return err
		}
		if err := c.Terminate(i); err != nil {
			return err
		}
		return c.Restart(i)
	}}
	pipes := newRestartPipes(t, c, restarts)
	nodes := rollNodes(c)
	out, err := pipes.roll(ctx, t, nodes, 8)
	pipes.requests.Close()
	if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("roll.sh with n3 killed during n1's restart: %v, want exit status 1", err)
	}
	if !strings.Contains(out, "the rooms' copies did not catch up within 8s of n1's restart; stopping the roll") &&
		!strings.Contains(out, "n1 did not come back up within 8s; stopping the roll") {
		t.Errorf("roll.sh did not say it stopped at n1, and why")
	}
	if strings.Contains(out, "n2: draining") {
		t.Errorf("roll.sh drained n2 with n3 dead")
	}
	if got, want := restarts.set(nil), []string{"n1"}; !slices.Equal(got, want) {
		t.Errorf("roll.sh restarted %v, want %v", got, want)
	}
	// n2 may stand aside a moment, alone while n1 restarts.
	err = localcluster.Await(ctx, settle, func(ctx context.Context) error {
		if st, err := c.Nodes[1].Status(ctx, "n2"); err != nil || st != directory.Up {
			return fmt.Errorf("n2 says it is %v (%v), want up", st, err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("after the stopped roll: %v", err)
	}
	if _, err := s.SendTextWait(ctx, "roll", "on the two left\n"); err != nil {
		t.Errorf("ann's text after the stopped roll: %v", err)
	}
}

// memberOn is ann, a member of room on node home (while it is available),
// closed when the test ends.
func memberOn(ctx context.Context, t *testing.T, c *localcluster.Cluster, home, room string) *client.Session {
	t.Helper()
	s, err := client.Dial(ctx, strings.Join(c.Addrs(), ","), client.WithUser("ann"), client.WithPolicy(homeNode(home)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.JoinWait(ctx, room); err != nil {
		t.Fatal(err)
	}
	return s
}

// rollNodes is roll.sh's NODES for c: each node's ID and HTTP address.
func rollNodes(c *localcluster.Cluster) []string {
	var nodes []string
	for _, n := range c.Nodes {
		nodes = append(nodes, n.ID+"="+n.HTTP)
	}
	return nodes
}

// restartPipes are the named pipes through which roll.sh's RESTART
// commands ask the test to restart a node: the command writes the node's
// ID on a line of req and waits for "ok" on a line of ans. The test holds
// both open to read and write, so that no open of either ever blocks
// (here or in the script) and the requests' reads see no end while RESTART
// commands come and go; closing requests ends serveRestarts, whose result
// served gets.
type restartPipes struct {
	req, ans          string
	requests, answers *os.File
	served            chan error
}

// newRestartPipes makes the pipes in a temporary directory and serves
// them with r until the test ends.
func newRestartPipes(t *testing.T, c *localcluster.Cluster, r *restarter) *restartPipes {
	t.Helper()
	dir := t.TempDir()
	p := &restartPipes{req: filepath.Join(dir, "restart"), ans: filepath.Join(dir, "restarted"), served: make(chan error, 1)}
	for _, f := range []string{p.req, p.ans} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if p.requests, err = os.OpenFile(p.req, os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	if p.answers, err = os.OpenFile(p.ans, os.O_RDWR, 0); err != nil {
		p.requests.Close()
		t.Fatal(err)
	}
	go func() { p.served <- serveRestarts(c, p.requests, p.answers, r) }()
	t.Cleanup(func() {
		p.requests.Close()
		p.answers.Close()
		<-p.served
	})
	return p
}

// roll runs deploy/roll.sh over nodes ("ID=HTTP") with this test's binary,
// a 10 s drain, readyWait seconds for each node to come back, and RESTART
// commands asking through the pipes; it returns what the script printed.
func (p *restartPipes) roll(ctx context.Context, t *testing.T, nodes []string, readyWait int) (string, error) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "deploy", "roll.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(os.Environ(),
		"NODES="+strings.Join(nodes, " "),
		"SWITCHBOARD="+binary,
		"WITHIN=10s",
		fmt.Sprintf("READY_WAIT=%d", readyWait),
		fmt.Sprintf(`RESTART=echo "$NODE_ID" > %q && read -r -t 60 answer < %q && [ "$answer" = ok ]`, p.req, p.ans),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second // a RESTART left behind by a killed roll.sh
	err = cmd.Run()
	t.Logf("roll.sh:\n%s", out.String())
	return out.String(), err
}

// restarter is what serveRestarts does to a node a RESTART command names,
// and the nodes it did it to, in order.
type restarter struct {
	mu   sync.Mutex
	do   func(i int) error
	done []string
}

// set makes do what later commands do, and returns the nodes named
// since the last set.
func (r *restarter) set(do func(i int) error) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	done := r.done
	r.do, r.done = do, nil
	return done
}

// serveRestarts answers roll.sh's RESTART commands until req is closed:
// each names a node on a line of req, which r does its thing to, and is
// answered "ok" on a line of ans (or what failed).
func serveRestarts(c *localcluster.Cluster, req, ans *os.File, r *restarter) error {
	lines := bufio.NewScanner(req)
	for lines.Scan() {
		id := strings.TrimSpace(lines.Text())
		i := slices.IndexFunc(c.Nodes, func(n *localcluster.Node) bool { return n.ID == id })
		answer := "ok"
		if i < 0 {
			answer = "no node " + id
		} else {
			r.mu.Lock()
			do := r.do
			r.mu.Unlock()
			if do == nil {
				answer = "no restarts expected now"
			} else if err := do(i); err != nil {
				answer = err.Error()
			}
		}
		r.mu.Lock()
		r.done = append(r.done, id)
		r.mu.Unlock()
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
