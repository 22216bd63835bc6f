package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/stats"
)

// connectLines runs switchboard connect with args until the test ends and
// returns its output lines as they come.
func connectLines(t *testing.T, args ...string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, append([]string{"connect"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
	})
	return lines
}

// awaitLine returns the first line matching re, failing after settle.
func awaitLine(t *testing.T, lines <-chan string, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(settle)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("connect ended without a line matching %s; it printed:\n%s", re, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no line matching %s within %v; connect printed:\n%s", re, settle, strings.Join(seen, "\n"))
		}
	}
}

// switchboard connect whose common address is one node moves when that
// node is stopped (SIGTERM) while two others are up: the node drains
// first, and the client, asked to move, finds the common address
// draining and asks the nodes of the directory it has. A
// second connect, given the dead node's DNS responder first and a live
// one second, attaches through the second.
func TestConnectReattachesAfterSIGTERM(t *testing.T) {
	c := startCluster(t, 3)
	n1 := c.Nodes[0]
	// dns-only attaches to the node that answered the hello: n1 here.
	lines := connectLines(t, "--service", n1.Addr, "--policy", "dns-only", "--user", "bob")
	awaitLine(t, lines, regexp.MustCompile(`^attached to n1 `))
	if err := c.Terminate(0); err != nil {
		t.Fatal(err)
	}
	m := awaitLine(t, lines, regexp.MustCompile(`moved: attached to (n\d)`))
	if m[1] == "n1" {
		t.Fatalf("reattached to n1, which was stopped")
	}

	second := connectLines(t, "--service", c.Service(), "--resolver", n1.DNS+","+c.Nodes[1].DNS, "--user", "carol")
	awaitLine(t, second, regexp.MustCompile(`^attached to n[23] `))
}

// pausedNodeDrop dials n's address with dns-only (so the session is on
// that node), waits idle (a benchmark's choice: a session idle for a
// while has its heartbeat going; tests pass 0), pauses its process (SIGSTOP: the sockets stay open, nothing
// answers), and returns how long the session took to report the drop,
// the drop's error and the session, reattaching elsewhere. The node
// stays paused until the test ends or the caller resumes it (resume may
// be called more than once).
func pausedNodeDrop(t testing.TB, c *localcluster.Cluster, i int, idle time.Duration) (took time.Duration, dropErr error, s *client.Session, resume func()) {
	t.Helper()
	policy, err := pick.ByName(pick.DNSOnly, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	s, err = client.Dial(ctx, c.Nodes[i].Addr, client.WithUser("dave"), client.WithPolicy(policy))
	if err != nil {
		t.Fatal(err)
	}
	if s.Node().ID != c.Nodes[i].ID {
		s.Close()
		t.Fatalf("attached to %s, want %s", s.Node().ID, c.Nodes[i].ID)
	}
	if idle > 0 {
		time.Sleep(idle) // not a synchronisation: the phase of the heartbeat the pause falls in
	}
	if err := c.Pause(i); err != nil {
		s.Close()
		t.Fatal(err)
	}
	paused := time.Now()
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := c.Resume(i); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(resume)
	deadline := time.After(settle)
	for {
		select {
		case e := <-s.Events():
			if e.Kind == client.Disconnected {
				return time.Since(paused), e.Err, s, resume
			}
		case <-deadline:
			s.Close()
			t.Fatalf("no drop within %v of pausing %s", settle, c.Nodes[i].ID)
		}
	}
}

// A node process paused with SIGSTOP keeps its connections open and
// answers nothing: its client notices by the heartbeat (the drop says the
// node went silent) and reattaches to another node. How fast is measured
// by BenchmarkPausedNodeDetection, not asserted here.
func TestPausedNodeIsNoticed(t *testing.T) {
	c := startCluster(t, 3)
	_, err, s, _ := pausedNodeDrop(t, c, 0, 0)
	defer s.Close()
	if !errors.Is(err, client.ErrNodeSilent) {
		t.Errorf("drop error %v, want one matching client.ErrNodeSilent", err)
	}
	deadline := time.After(settle)
	for {
		select {
		case e := <-s.Events():
			if e.Kind == client.Reattached {
				if e.Node.ID == c.Nodes[0].ID {
					t.Errorf("reattached to the paused node")
				}
				return
			}
		case <-deadline:
			t.Fatalf("no reattach within %v", settle)
		}
	}
}

// BenchmarkPausedNodeDetection measures how long a session takes to
// notice that its node's process was paused (SIGSTOP), with the default
// heartbeat, and to attach to another node, over b.N trials spread over
// three nodes, each session idle for 2 to 3 s before the pause, and
// reports the median, p99 and maximum of each in milliseconds (with a few
// dozen trials the p99 is the maximum). Run a few dozen trials:
//
//	go test -run '^$' -bench PausedNodeDetection -benchtime 40x ./cmd/switchboard/
func BenchmarkPausedNodeDetection(b *testing.B) {
	c := startClusterTB(b, 3)
	var took, back []time.Duration
	for i := 0; b.Loop(); i++ {
		n := i % len(c.Nodes)
		// The node paused last time comes back up before it is dialled.
		if err := localcluster.Await(context.Background(), settle, func(ctx context.Context) error {
			for _, peer := range c.Nodes {
				if st, err := peer.Status(ctx, c.Nodes[n].ID); err != nil || st != directory.Up {
					return fmt.Errorf("%s sees %s as %q (%v)", peer.ID, c.Nodes[n].ID, st, err)
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		// Idle for 2 to 3 s first, so that the pause falls at a random
		// phase of the heartbeat of a session that has been idle a while.
		d, err, s, resume := pausedNodeDrop(b, c, n, 2*time.Second+rand.N(time.Second))
		if !errors.Is(err, client.ErrNodeSilent) {
			b.Fatalf("drop error %v, want client.ErrNodeSilent", err)
		}
		took = append(took, d)
		dropped := time.Now()
		if e := awaitEventTB(b, s, client.Reattached); e.Node.ID == c.Nodes[n].ID {
			b.Fatalf("reattached to the paused node")
		}
		back = append(back, d+time.Since(dropped))
		s.Close()
		resume()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"detect", took}, {"reattach", back}} {
		slices.Sort(m.d)
		b.ReportMetric(ms(stats.Median(m.d)), m.name+"-p50-ms")
		b.ReportMetric(ms(stats.Quantile(m.d, 0.99)), m.name+"-p99-ms")
		b.ReportMetric(ms(m.d[len(m.d)-1]), m.name+"-max-ms")
	}
	b.ReportMetric(0, "ns/op")
}

// startClusterTB is startCluster for benchmarks too.
func startClusterTB(tb testing.TB, nodes int) *localcluster.Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: nodes, DNS: true, Service: "chat.test"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	return c
}

// awaitEventTB returns s's next event of kind, failing after settle.
func awaitEventTB(tb testing.TB, s *client.Session, kind client.EventKind) client.Event {
	tb.Helper()
	deadline := time.After(settle)
	for {
		select {
		case e, ok := <-s.Events():
			if !ok {
				tb.Fatalf("the session ended before a %v event: %v", kind, s.Err())
			}
			if e.Kind == kind {
				return e
			}
		case <-deadline:
			tb.Fatalf("no %v event within %v", kind, settle)
		}
	}
}
