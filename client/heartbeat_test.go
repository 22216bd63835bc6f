package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// awaitEvent returns the first event of s that ok accepts, failing the
// test when the events end or settle passes first. Every event read on
// the way is passed to seen, when not nil.
func awaitEvent(t *testing.T, s *client.Session, what string, ok func(client.Event) bool, seen func(client.Event)) client.Event {
	t.Helper()
	deadline := time.After(settle)
	for {
		select {
		case e, open := <-s.Events():
			if !open {
				t.Fatalf("events ended before %s", what)
			}
			if seen != nil {
				seen(e)
			}
			if ok(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, settle)
		}
	}
}

// A node that stops answering without closing its connections (here a
// fake that reads and answers nothing, as a paused process) is noticed by
// the heartbeat with its default settings, the drop says the node went
// silent, and the session reattaches to the other node of its directory
// although the common address is the silent node itself.
func TestHeartbeatNoticesSilentNode(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	both := func() []directory.Node { return []directory.Node{a.entry(), b.entry()} }
	a.setDirectory(both)
	b.setDirectory(both)
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithPolicy(preferring("a", "b")), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Node().ID != "a" {
		t.Fatalf("attached to %s, want a", s.Node().ID)
	}
	a.pause()
	drop := awaitEvent(t, s, "drop", func(e client.Event) bool { return e.Kind == client.Disconnected }, nil)
	if !errors.Is(drop.Err, client.ErrNodeSilent) {
		t.Errorf("drop error %v, want one matching ErrNodeSilent", drop.Err)
	}
	back := awaitEvent(t, s, "reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	if back.Node.ID != "b" {
		t.Errorf("reattached to %s, want b", back.Node.ID)
	}
}

// The same silent node, reached through a dialer that ignores its
// context (one wrapping net.Dial, say): the second opinion's dial hangs
// for as long as the kernel tries, past the verdict. The session must
// still fail over, and Close return, rather than wait for that dial:
// before, the verdict waited for the second opinion's result, and the
// session handled nothing and could not close until the dial ended.
func TestHeartbeatDoesNotWaitForADialerThatIgnoresItsContext(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	both := func() []directory.Node { return []directory.Node{a.entry(), b.entry()} }
	a.setDirectory(both)
	b.setDirectory(both)
	d := &deafDialer{addr: a.Addr(), release: make(chan struct{})}
	t.Cleanup(func() { close(d.release) }) // after the session's Close
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithDialer(d), client.WithPolicy(preferring("a", "b")), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	if s.Node().ID != "a" {
		t.Fatalf("attached to %s, want a", s.Node().ID)
	}
	d.stick()
	a.pause()
	drop := awaitEvent(t, s, "drop", func(e client.Event) bool { return e.Kind == client.Disconnected }, nil)
	if !errors.Is(drop.Err, client.ErrNodeSilent) {
		t.Errorf("drop error %v, want one matching ErrNodeSilent", drop.Err)
	}
	awaitEvent(t, s, "reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(settle):
		t.Fatalf("Close still waiting after %v, behind the stuck dial", settle)
	}
}

// deafDialer dials as net.Dialer does, except that once stuck, a dial
// to addr waits for release whatever its context says.
type deafDialer struct {
	addr    string
	release chan struct{}
	mu      sync.Mutex
	stuck   bool
}

func (d *deafDialer) stick() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stuck = true
}

// DialContext implements client.Dialer.
func (d *deafDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	stuck := d.stuck && addr == d.addr
	d.mu.Unlock()
	if stuck {
		<-d.release
		return nil, errors.New("released")
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// A node whose reader is stuck behind a slow request (here a join that
// waits, as for storage) but that answers a ping on another connection is
// busy, not gone: the session stays through two heartbeat timeouts, each
// settled by a second opinion, and gets its answer when the node catches
// up. A node at its connection limit answers the second connection with
// too_many_connections, and that is an answer too.
func TestHeartbeatKeepsBusyNode(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(map[bool]string{false: "pong", true: "too_many_connections"}[refuse], func(t *testing.T) {
			testHeartbeatKeepsBusyNode(t, refuse)
		})
	}
}

func testHeartbeatKeepsBusyNode(t *testing.T, refuseNew bool) {
	a := newFakeNode(t, "a")
	hb := client.Heartbeat{Interval: 2 * time.Second, Timeout: 4 * time.Second}
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithHeartbeat(hb), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a.mu.Lock()
	a.refuseNew = refuseNew
	a.mu.Unlock()
	a.stallJoins()
	if err := s.Join("r"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		select {
		case <-a.probes:
		case <-time.After(settle):
			t.Fatalf("no second opinion %d within %v", i+1, settle)
		}
	}
	a.unstall()
	var join fakeMsg
	select {
	case join = <-a.got:
	case <-time.After(settle):
		t.Fatalf("the join did not reach the node within %v", settle)
	}
	if join.m.Op != wire.OpJoin {
		t.Fatalf("node got %v, want the join", join.m)
	}
	join.conn.send(wire.Message{Op: wire.OpRoom, Room: "r", State: &wire.RoomState{Users: []string{"alice"}}})
	drops := 0
	awaitEvent(t, s, "room state", func(e client.Event) bool { return e.Kind == client.Received && e.Message.Op == wire.OpRoom },
		func(e client.Event) {
			if e.Kind == client.Disconnected {
				drops++
			}
		})
	if drops != 0 || s.Attaches() != 1 || s.State() != client.StateAttached {
		t.Errorf("%d drops, %d attaches, state %v; want the busy node kept: 0, 1, attached", drops, s.Attaches(), s.State())
	}
}

// A node that answers second connections but never this session again
// (its reader wedged, or a middlebox lost the flow while new ones pass)
// is left after MaxBusy, not waited on for ever.
func TestHeartbeatLeavesNodeBusyPastMaxBusy(t *testing.T) {
	a := newFakeNode(t, "a")
	// Timeout three Intervals, as the default's: a probe has an Interval
	// (from Timeout - Interval to Timeout) to be answered, here a second,
	// so a slow machine still finds the node busy.
	hb := client.Heartbeat{Interval: time.Second, Timeout: 3 * time.Second, MaxBusy: 6 * time.Second}
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithHeartbeat(hb), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a.stallJoins()
	if err := s.Join("r"); err != nil {
		t.Fatal(err)
	}
	probes := 0
	drop := awaitEvent(t, s, "drop", func(e client.Event) bool { return e.Kind == client.Disconnected }, nil)
	for len(a.probes) > 0 {
		<-a.probes
		probes++
	}
	if !errors.Is(drop.Err, client.ErrNodeSilent) || !strings.Contains(drop.Err.Error(), "answered a second connection") {
		t.Errorf("dropped with %v, want ErrNodeSilent for a node busy too long", drop.Err)
	}
	if probes == 0 {
		t.Errorf("dropped without a second opinion; want the node found busy first")
	}
}

// balancer is a TCP load balancer in front of the fake nodes, on a
// loopback port, until the test ends: it hands its first connection to
// first and every later one to rest.
func balancer(t *testing.T, first, rest string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		to := first
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", to)
			to = rest
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, b)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(b, c); b.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, b); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// A session attached through a TCP load balancer at the common address
// asks for its second opinion at its node's own address, as the
// directory lists it: dialled to the balancer, it reached another node,
// whose answer kept a paused node as busy until MaxBusy. The paused node
// answers no second opinion, and the session drops at the first verdict.
func TestSecondOpinionAsksTheNodeNotTheBalancer(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	both := func() []directory.Node { return []directory.Node{a.entry(), b.entry()} }
	a.setDirectory(both)
	b.setDirectory(both)
	lb := balancer(t, a.Addr(), b.Addr())
	hb := client.Heartbeat{Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond, MaxBusy: 5 * time.Second}
	s, err := client.Dial(dialCtx(t), lb, client.WithUser("alice"), client.WithHeartbeat(hb),
		client.WithPolicy(preferring("a", "b")), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Node().ID != "a" {
		t.Fatalf("attached to %s, want a (through the balancer)", s.Node().ID)
	}
	a.pause()
	drop := awaitEvent(t, s, "drop", func(e client.Event) bool { return e.Kind == client.Disconnected }, nil)
	if !errors.Is(drop.Err, client.ErrNodeSilent) || strings.Contains(drop.Err.Error(), "answered a second connection") {
		t.Errorf("dropped with %v, want ErrNodeSilent for a node that answered no second opinion", drop.Err)
	}
	if n := len(b.probes); n != 0 {
		t.Errorf("node b answered %d second opinion(s) about node a", n)
	}
}

// A session that only reads a busy room still sends a line now and then:
// the heartbeat pings only when the node is silent, and a node closes a
// session that sends nothing for its IdleTimeout (5 minutes), so a member
// who only read was closed every five minutes, and the room saw them
// leave and come back. The writer pings after its keep-alive without a
// line, however much arrives.
func TestReaderOfABusyRoomPings(t *testing.T) {
	a := newFakeNode(t, "a")
	// The heartbeat off: every ping counted is the keep-alive's, however
	// late the stream's messages come on a loaded machine.
	s, join := aliceInRoom(t, a, client.WithKeepAlive(200*time.Millisecond), client.WithHeartbeat(client.Heartbeat{}))
	join.conn.send(roomState("r", 0))
	go func() {
		for range s.Events() { // read, as an application would
		}
	}()
	stop := make(chan struct{})
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				join.conn.send(wire.Message{Op: wire.OpText, Room: "r", From: "bob", T: "x"})
			}
		}
	}()
	defer func() { close(stop); <-streamed }()
	nodetest.Eventually(t, settle, func() error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.sessionPings < 2 {
			return fmt.Errorf("%d pings from a session that only reads", a.sessionPings)
		}
		return nil
	})
	if s.Node().ID != "a" {
		t.Errorf("the session moved to %s", s.Node().ID)
	}
}
