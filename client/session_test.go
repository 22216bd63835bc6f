package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/pick"
)

// faultDialer records every dial by node ID and refuses those to the
// nodes in refuse.
type faultDialer struct {
	mu     sync.Mutex
	ids    map[string]string // addr -> node ID
	refuse map[string]bool
	dials  []string
	d      net.Dialer
}

func newFaultDialer(c *nodetest.Cluster) *faultDialer {
	f := &faultDialer{ids: map[string]string{}, refuse: map[string]bool{}}
	for _, n := range c.Nodes {
		f.ids[n.Addr()] = n.ID()
	}
	return f
}

func (f *faultDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	id := f.ids[addr]
	f.dials = append(f.dials, id)
	refused := f.refuse[id]
	f.mu.Unlock()
	if refused {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	return f.d.DialContext(ctx, network, addr)
}

func (f *faultDialer) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dials)
}

// preferring picks the first of ids that is available and not excluded.
func preferring(ids ...string) pick.Policy {
	return pick.PolicyFunc(func(nodes []directory.Node, req pick.Request) (pick.Result, error) {
		for _, id := range ids {
			for _, n := range nodes {
				if n.ID == id && n.Available() && (req.Exclude == nil || !req.Exclude(id)) {
					return pick.Result{Node: n, Reason: "preferred " + id}, nil
				}
			}
		}
		return pick.Result{}, pick.ErrNoNode
	})
}

func fastRetry() failover.Config {
	cfg := failover.DefaultConfig()
	cfg.RetryBase = time.Millisecond
	cfg.RetryMax = 2 * time.Millisecond
	cfg.PassBase = 5 * time.Millisecond
	cfg.PassMax = 20 * time.Millisecond
	cfg.DropBase = 5 * time.Millisecond
	return cfg
}

func dialCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The failover order of the design: the pick refuses -> retry it (twice)
// -> ask the common address again -> pick another node.
func TestFailoverOrder(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	fd := newFaultDialer(c)
	fd.refuse["n2"] = true
	// One hello at a time, so that the dials come in the order asserted
	// however slowly the machine makes a connection.
	s, err := client.Dial(dialCtx(t), c.Nodes[0].Addr(),
		client.WithUser("alice"), client.WithDialer(fd), client.WithRetry(fastRetry()),
		client.WithPolicy(preferring("n2", "n3", "n1")), client.WithHelloStagger(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []string{"n1", "n2", "n2", "n2", "n1", "n3"}
	if diff := cmp.Diff(fd.log(), want); diff != "" {
		t.Errorf("dials (-got +want):\n%s", diff)
	}
	if got := s.Node().ID; got != "n3" {
		t.Errorf("attached to %s, want n3", got)
	}
	if !strings.Contains(s.Reason(), "n3") {
		t.Errorf("reason %q does not name n3", s.Reason())
	}
}

// A pick that is the node answering the hello attaches on the same
// connection: one dial in all.
func TestAttachOnTheHelloConnection(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	fd := newFaultDialer(c)
	s, err := client.Dial(dialCtx(t), c.Nodes[1].Addr(), client.WithUser("alice"), client.WithDialer(fd),
		client.WithPolicy(preferring("n2")))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if diff := cmp.Diff(fd.log(), []string{"n2"}); diff != "" {
		t.Errorf("dials (-got +want):\n%s", diff)
	}
	if got := c.Nodes[1].Users(); got != 1 {
		t.Errorf("n2 has %d users, want 1", got)
	}
}

// A full node refuses with a fresh directory: the client picks another at
// once, without retrying the full one and without a new hello.
func TestFullNodeRefusalPicksAgainAtOnce(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	c.Nodes[1].SetDraining(true)
	fd := newFaultDialer(c)
	// A directory is a little old when the client picks from it: the
	// policy sees n2 as it was before draining began only if it ignores
	// status, so use one that does.
	stale := pick.PolicyFunc(func(nodes []directory.Node, req pick.Request) (pick.Result, error) {
		for _, id := range []string{"n2", "n3"} {
			for _, n := range nodes {
				if n.ID == id && !req.Exclude(id) {
					return pick.Result{Node: n, Reason: "forced " + id}, nil
				}
			}
		}
		return pick.Result{}, pick.ErrNoNode
	})
	s, err := client.Dial(dialCtx(t), c.Nodes[0].Addr(), client.WithUser("alice"), client.WithDialer(fd),
		client.WithRetry(fastRetry()), client.WithPolicy(stale))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if diff := cmp.Diff(fd.log(), []string{"n1", "n2", "n3"}); diff != "" {
		t.Errorf("dials (-got +want):\n%s", diff)
	}
}

// With every node down, Dial fails with a clear error within its deadline.
func TestAllNodesDown(t *testing.T) {
	var addrs []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	// Long enough that dials are refused before it passes on a loaded
	// machine, so that the error can say what failed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, strings.Join(addrs, ","), client.WithUser("alice"), client.WithRetry(fastRetry()))
	if err == nil {
		t.Fatal("Dial succeeded with every node down")
	}
	if !errors.Is(err, failover.ErrDeadline) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not say the deadline passed", err)
	}
	if !strings.Contains(err.Error(), "connect") && !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not say what failed", err)
	}
}

// refusingDialer refuses every dial, as a host with nothing listening on
// the port does, and records the addresses dialled. onDial runs after each
// dial is recorded, with the number of dials so far.
type refusingDialer struct {
	mu     sync.Mutex
	dials  []string
	onDial func(n int)
}

func (d *refusingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials = append(d.dials, addr)
	n := len(d.dials)
	d.mu.Unlock()
	if d.onDial != nil {
		d.onDial(n)
	}
	return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
}

func (d *refusingDialer) log() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.dials)
}

// With every node down, Dial stops as soon as its context ends: the
// context is cancelled at the last dial of the second pass over the three
// addresses, and Dial gives up there, with no dial after it, saying what
// stopped it and what failed. (The event is the cancel, not a clock.)
func TestAllNodesDownStopsWhenContextEnds(t *testing.T) {
	addrs := []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &refusingDialer{onDial: func(n int) {
		if n == 2*len(addrs) {
			cancel()
		}
	}}
	_, err := client.Dial(ctx, strings.Join(addrs, ","), client.WithUser("alice"), client.WithDialer(d), client.WithRetry(fastRetry()))
	if err == nil {
		t.Fatal("Dial succeeded with every node down")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not say the context ended", err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not say what failed", err)
	}
	got := d.log()
	if len(got) != 2*len(addrs) {
		t.Fatalf("dials %v, want two passes over %v and none after the cancel", got, addrs)
	}
	for pass := range 2 {
		p := slices.Sorted(slices.Values(got[pass*len(addrs) : (pass+1)*len(addrs)]))
		if diff := cmp.Diff(p, addrs); diff != "" {
			t.Errorf("pass %d does not try every address once (-got +want):\n%s", pass+1, diff)
		}
	}
}

func TestBadUserNameIsNotRetried(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	_, err := client.Dial(dialCtx(t), c.Nodes[0].Addr(), client.WithUser(strings.Repeat("x", 200)))
	if err == nil || !strings.Contains(err.Error(), "bad_request") {
		t.Fatalf("Dial with a 200-byte user name: %v, want a bad_request error", err)
	}
}

// A node dies under attached sessions: every one of them reattaches to a
// survivor.
func TestNodeDeathReattachesEverySession(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Capacity = 100
	}})
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.Addr())
	}
	target := strings.Join(addrs, ",")
	var sessions []*client.Session
	for i := range 30 {
		s, err := client.Dial(dialCtx(t), target, client.WithUser(fmt.Sprintf("u%d", i)), client.WithRetry(fastRetry()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		sessions = append(sessions, s)
	}
	victim := c.Nodes[1]
	var onVictim []*client.Session
	for _, s := range sessions {
		if s.Node().ID == victim.ID() {
			onVictim = append(onVictim, s)
		}
	}
	if len(onVictim) == 0 {
		t.Fatal("no session picked n2")
	}
	victim.Halt()
	for _, s := range onVictim {
		deadline := time.After(settle)
		for reattached := false; !reattached; {
			select {
			case e := <-s.Events():
				if e.Kind == client.Reattached {
					reattached = true
					if e.Node.ID == victim.ID() {
						t.Errorf("session reattached to the dead node")
					}
				}
			case <-deadline:
				t.Fatalf("session on %s not reattached in %v", victim.ID(), settle)
			}
		}
	}
	nodetest.Eventually(t, settle, func() error {
		if got := c.Nodes[0].Users() + c.Nodes[2].Users(); got != 30 {
			return fmt.Errorf("survivors hold %d users, want 30", got)
		}
		return nil
	})
}

// A pick whose attach fails and is retried is one pick: the Tracker
// shared by the process's sessions loses that one, not the pending picks
// of other sessions of the same node.
func TestFailedPickReleasedOnce(t *testing.T) {
	a := newFakeNode(t, "a")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close() // x refuses every connection
	a.setDirectory(func() []directory.Node {
		return []directory.Node{{ID: "x", Addr: gone, Status: directory.Up, Capacity: 100}, a.entry()}
	})
	tr := pick.NewTracker(time.Minute)
	now := time.Now()
	tr.Add("x", now) // two other sessions' picks of x, pending
	tr.Add("x", now)
	s := dialPreferringX(t, a, tr)
	if s.Node().ID != "a" {
		t.Fatalf("attached to %s, want a after x refused", s.Node().ID)
	}
	if got := tr.Pending("x", time.Now()); got != 2 {
		t.Errorf("%d picks of x pending after this session's failed; want the other sessions' 2", got)
	}
}

// A pick whose first dial fails and whose retry attaches stays pending
// in the Tracker, as any attached pick does until the directory counts
// its user: the failed dial did not release it.
func TestRetriedPickStaysPending(t *testing.T) {
	a, x := newFakeNode(t, "a"), newFakeNode(t, "x")
	a.setDirectory(func() []directory.Node { return []directory.Node{x.entry(), a.entry()} })
	x.mu.Lock()
	x.closeNext = 1 // the first dial of x fails, its retry attaches
	x.mu.Unlock()
	tr := pick.NewTracker(time.Minute)
	s := dialPreferringX(t, a, tr)
	if s.Node().ID != "x" {
		t.Fatalf("attached to %s, want x on the retry", s.Node().ID)
	}
	x.mu.Lock()
	accepted := x.accepted
	x.mu.Unlock()
	if accepted != 2 {
		t.Fatalf("x accepted %d connections, want the failed dial and its retry", accepted)
	}
	if got := tr.Pending("x", time.Now()); got != 1 {
		t.Errorf("%d picks of x pending after attaching on a retry; want this session's 1", got)
	}
}

// dialPreferringX attaches alice through a, preferring x, with picks
// counted in tr and two retries of a node whose dial fails.
func dialPreferringX(t *testing.T, a *fakeNode, tr *pick.Tracker) *client.Session {
	t.Helper()
	retry := fastRetry()
	retry.Retries = 2
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithPolicy(preferring("x", "a")), client.WithTracker(tr), client.WithRetry(retry))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recordingRand answers 0 and records the bounds it is asked for.
type recordingRand struct {
	mu     sync.Mutex
	bounds []int
}

func (r *recordingRand) IntN(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bounds = append(r.bounds, n)
	return 0
}

// TestStableSessionsDropWithoutGrowingWaits: a session that stayed attached
// longer than Stable waits at most DropBase after each drop, however
// many it had before; the bound doubles only for drops in a row.
func TestStableSessionsDropWithoutGrowingWaits(t *testing.T) {
	a := newFakeNode(t, "a")
	cfg := fastRetry()
	cfg.DropBase = 7 * time.Millisecond
	cfg.PassMax = time.Hour
	cfg.Stable = time.Nanosecond
	r := &recordingRand{}
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithRetry(cfg), client.WithRand(r))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const drops = 5
	for range drops {
		a.dropAll()
		awaitEvent(t, s, "the reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	base := int(cfg.DropBase/time.Microsecond) + 1
	var waits []int
	for _, n := range r.bounds {
		if n >= base {
			waits = append(waits, n)
		}
	}
	want := slices.Repeat([]int{base}, drops)
	if !slices.Equal(waits, want) {
		t.Errorf("the bounds of the waits after %d drops of a stable session were %v µs+1, want %v", drops, waits, want)
	}
}

// A directory that lists a node at an address another node of the
// service now has (an address reused): the session attaches to the node
// that answers and reports that node, not the one picked, so that a drop
// later leaves out the right one.
func TestAddressAnsweringAsAnotherNode(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	stale := directory.Node{ID: "x", Addr: b.Addr(), Status: directory.Up, Capacity: 100}
	a.setDirectory(func() []directory.Node { return []directory.Node{a.entry(), stale} })
	b.setDirectory(func() []directory.Node { return []directory.Node{a.entry(), b.entry()} })
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithPolicy(preferring("x")), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if got := s.Node(); got.ID != "b" || got.Addr != b.Addr() {
		t.Errorf("attached to %s at %s, want b at %s (the node that answered on x's address)", got.ID, got.Addr, b.Addr())
	}
}
