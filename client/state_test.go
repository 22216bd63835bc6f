package client_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/wire"
)

// nextGot returns the next message the fake got from an attached session,
// skipping none, failing after settle.
func nextGot(t *testing.T, n *fakeNode) fakeMsg {
	t.Helper()
	select {
	case m := <-n.got:
		return m
	case <-time.After(settle):
		t.Fatalf("node %s got nothing within %v", n.id, settle)
	}
	return fakeMsg{}
}

// aliceInRoom dials the fake node a as alice, with opts, and joins room
// "r"; it returns the session (closed when the test ends) and the join
// the node got, to answer.
func aliceInRoom(t *testing.T, a *fakeNode, opts ...client.Option) (*client.Session, fakeMsg) {
	t.Helper()
	s, err := client.Dial(dialCtx(t), a.Addr(), append([]client.Option{client.WithUser("alice")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Join("r"); err != nil {
		t.Fatal(err)
	}
	return s, awaitGot(t, a, wire.OpJoin)
}

// awaitGot returns the next message of op the fake got, skipping others.
func awaitGot(t *testing.T, n *fakeNode, op string) fakeMsg {
	t.Helper()
	for {
		if m := nextGot(t, n); m.m.Op == op {
			return m
		}
	}
}

// roomState is a room message whose state says alice's text is stored up
// to seq.
func roomState(room string, seq uint64) wire.Message {
	return wire.Message{Op: wire.OpRoom, Room: room, State: &wire.RoomState{Users: []string{"alice"}, Seqs: map[string]uint64{"alice": seq}}}
}

// devices are the two ways a session can attach: naming its device (the
// default), or not, as clients did before devices. The room judges the
// resends of the first by device, of the second by seq alone, and the
// client resends accordingly.
var devices = []struct {
	name string
	opt  client.Option
	// byDevice: chunks that went out are resent under their seqs after a
	// state on a new connection, whatever its seqs say.
	byDevice bool
}{
	{"device", client.WithDevice("laptop"), true},
	{"no device", client.WithDevice(""), false},
}

// Text typed before the room's state arrives is numbered after what the
// state shows stored; after a drop the session joins again and resends,
// with their original seqs, the chunks not acknowledged (without a
// device, only those the new state does not hold); and when a state shows
// more of the user's text than the session sent (another session of the
// same user), numbering continues above it.
func TestResendAndRenumbering(t *testing.T) {
	for _, d := range devices {
		t.Run(d.name, func(t *testing.T) { testResendAndRenumbering(t, d.opt, d.byDevice) })
	}
}

func testResendAndRenumbering(t *testing.T, device client.Option, byDevice bool) {
	a := newFakeNode(t, "a")
	retry := fastRetry()
	retry.Cooldown = time.Millisecond // the one node comes back at once
	s, join := aliceInRoom(t, a, client.WithRetry(retry), device)
	for _, ch := range []string{"a", "b", "c"} {
		if _, err := s.SendText("r", ch); err != nil {
			t.Fatal(err)
		}
	}
	// Five chunks of alice's are stored already (typed elsewhere before).
	join.conn.send(roomState("r", 5))
	var got []uint64
	for range 3 {
		m := awaitGot(t, a, wire.OpText)
		got = append(got, m.m.Seq)
	}
	if want := []uint64{6, 7, 8}; !equalSeqs(got, want) {
		t.Fatalf("after a state at 5 the node got seqs %v, want %v", got, want)
	}
	join.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 6})
	awaitEvent(t, s, "ack 6", func(e client.Event) bool { return e.Message.Op == wire.OpAck }, nil)
	if un := s.UnackedText("r"); len(un) != 2 || un[0].Seq != 7 || un[1].Seq != 8 {
		t.Fatalf("unacknowledged %v, want seqs 7 and 8", un)
	}

	// The node restarts; 7 was stored, but its ack never came.
	a.dropAll()
	awaitEvent(t, s, "reattach", func(e client.Event) bool { return e.Kind == client.Reattached }, nil)
	rejoin := awaitGot(t, a, wire.OpJoin)
	rejoin.conn.send(roomState("r", 7))
	if byDevice {
		// The state is no ack: the room takes 7 for a resend of this
		// device's and acknowledges it again.
		if resent := awaitGot(t, a, wire.OpText); resent.m.Seq != 7 || resent.m.T != "b" {
			t.Fatalf("resent %d %q, want 7 \"b\"", resent.m.Seq, resent.m.T)
		}
	}
	resent := awaitGot(t, a, wire.OpText)
	if resent.m.Seq != 8 || resent.m.T != "c" {
		t.Fatalf("resent %d %q, want 8 \"c\"", resent.m.Seq, resent.m.T)
	}
	rejoin.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 8})
	seq, err := s.SendText("r", "d")
	if err != nil || seq != 9 {
		t.Fatalf("SendText = %d, %v; want 9", seq, err)
	}
	if m := awaitGot(t, a, wire.OpText); m.m.Seq != 9 {
		t.Fatalf("node got seq %d, want 9", m.m.Seq)
	}
	rejoin.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 9})
	awaitEvent(t, s, "ack 9", func(e client.Event) bool { return e.Message.Op == wire.OpAck && e.Message.Seq == 9 }, nil)

	// Alice typed up to 20 from another session; a resynchronising join
	// shows it, and this session continues above.
	if err := s.Join("r"); err != nil {
		t.Fatal(err)
	}
	awaitGot(t, a, wire.OpJoin).conn.send(roomState("r", 20))
	awaitEvent(t, s, "state at 20", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	if seq, err := s.SendText("r", "e"); err != nil || seq != 21 {
		t.Fatalf("SendText after a state at 20 = %d, %v; want 21", seq, err)
	}
}

// Text the same user's other session (another device) types is delivered
// to this session like anyone's. When its seq is at or above this
// session's next one, this session numbers on above it: reusing the seq
// would make the room take the chunk for a duplicate (without a device)
// or move it (with one). Chunks that went out keep their seqs (the room
// may store them under those); chunks typed while the room waits for its
// state are renumbered above the other session's. A chunk the node
// refused went out: with a device it keeps its seq (the room stores it
// under the user's next, or takes it for a resend if a failed store
// stored it all the same); without one it is renumbered too, or the room
// would take it for a duplicate of the other session's.
func TestOtherSessionsTextIsNumberedAbove(t *testing.T) {
	for _, d := range devices {
		t.Run(d.name, func(t *testing.T) { testOtherSessionsTextIsNumberedAbove(t, d.opt, d.byDevice) })
	}
}

func testOtherSessionsTextIsNumberedAbove(t *testing.T, device client.Option, byDevice bool) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()), device)
	join.conn.send(roomState("r", 5))
	awaitEvent(t, s, "the state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	// fromPhone delivers the phone's chunks; the last one's event shows
	// the session handled them all (it drops those it takes for echoes).
	fromPhone := func(seqs ...uint64) {
		t.Helper()
		for _, seq := range seqs {
			join.conn.send(wire.Message{Op: wire.OpText, Room: "r", From: "alice", Seq: seq, T: "phone"})
		}
		last := seqs[len(seqs)-1]
		awaitEvent(t, s, "the phone's text", func(e client.Event) bool {
			return e.Message.Op == wire.OpText && e.Message.Seq == last
		}, nil)
	}

	// The phone types 6; the laptop (this session) goes on at 7.
	fromPhone(6)
	if seq, err := s.SendText("r", "x"); err != nil || seq != 7 {
		t.Fatalf("SendText after the phone's 6 = %d, %v; want 7", seq, err)
	}
	if m := awaitGot(t, a, wire.OpText); m.m.Seq != 7 || m.m.T != "x" {
		t.Fatalf("node got %d %q, want 7 \"x\"", m.m.Seq, m.m.T)
	}

	// 7 went out unacknowledged; 8 is refused (the session then holds
	// the room) and 9 waits for the room's state. The phone, which saw
	// 7 but neither 8 nor 9, types 8, 9 and 10: 8 and 9 are the
	// laptop's numbers (taken for echoes, as during a move), 10 is not.
	waitA := async(func() (uint64, error) { return s.SendTextWait(dialCtx(t), "r", "a") })
	refused := awaitGot(t, a, wire.OpText)
	if refused.m.Seq != 8 || refused.m.T != "a" {
		t.Fatalf("node got %d %q, want 8 \"a\"", refused.m.Seq, refused.m.T)
	}
	join.conn.send(wire.Message{Op: wire.OpError, Code: wire.CodeRate, Room: "r", Seq: 8, Message: "slow down"})
	awaitEvent(t, s, "the refusal", func(e client.Event) bool { return e.Message.Op == wire.OpError }, nil)
	if seq, err := s.SendText("r", "b"); err != nil || seq != 9 {
		t.Fatalf("SendText while held = %d, %v; want 9", seq, err)
	}
	fromPhone(8, 9, 10)
	var got []uint64
	for _, m := range s.UnackedText("r") {
		got = append(got, m.Seq)
	}
	// "a", refused, keeps 8 with a device; "b" never went out.
	want, resent, seqA, seqC := []uint64{7, 11, 12}, []wire.Message{{Seq: 11, T: "a"}, {Seq: 12, T: "b"}}, uint64(11), uint64(13)
	if byDevice {
		want, resent, seqA, seqC = []uint64{7, 8, 11}, []wire.Message{{Seq: 7, T: "x"}, {Seq: 8, T: "a"}, {Seq: 11, T: "b"}}, 8, 12
	}
	if !equalSeqs(got, want) {
		t.Fatalf("unacknowledged seqs %v after the phone's 10, want %v", got, want)
	}

	// The session asks for the room again; its state shows the phone's
	// 10 stored (and the laptop's 7). Without a device the state stands
	// for 7's ack, and "a" and "b" go out as 11 and 12; with one, all
	// three go again and their acks say what the room made of them.
	rejoin := awaitGot(t, a, wire.OpJoin)
	rejoin.conn.send(roomState("r", 10))
	for _, want := range resent {
		if m := awaitGot(t, a, wire.OpText); m.m.Seq != want.Seq || m.m.T != want.T {
			t.Fatalf("node got %d %q, want %d %q", m.m.Seq, m.m.T, want.Seq, want.T)
		}
	}
	for _, m := range resent {
		rejoin.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: m.Seq})
	}
	if res := awaitResult(t, "SendTextWait of \"a\"", waitA); res.err != nil || res.v != seqA {
		t.Errorf("SendTextWait of \"a\" = %d, %v; want %d", res.v, res.err, seqA)
	}
	if seq, err := s.SendText("r", "c"); err != nil || seq != seqC {
		t.Fatalf("SendText after = %d, %v; want %d", seq, err, seqC)
	}
}

// A chunk numbered but held in the session for the node's limits has not
// gone out, so the user's own text delivered under its seq is another
// device's, not an echo of this session's: the held chunk goes out above
// it, and the delivery is shown. It went out under the other device's
// seq, and without a device the room took it for a duplicate,
// acknowledged it and dropped its text.
func TestHeldChunkIsNumberedAboveAnotherDevicesText(t *testing.T) {
	for _, d := range devices {
		t.Run(d.name, func(t *testing.T) { testHeldChunkIsNumberedAboveAnotherDevicesText(t, d.opt) })
	}
}

func testHeldChunkIsNumberedAboveAnotherDevicesText(t *testing.T, device client.Option) {
	a := newFakeNode(t, "a")
	// One chunk at once, the next about five seconds later: "b" waits in
	// the session while the phone's chunk comes (a margin for a loaded
	// machine: the phone's chunk must be handled before "b" may go).
	a.limits = &wire.Limits{MaxChunk: 4096, ChunkRate: 0.2, ChunkBurst: 2, ByteRate: 8192, ByteBurst: 65536}
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()), device)
	join.conn.send(roomState("r", 0))
	awaitEvent(t, s, "the state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	for _, ch := range []string{"a", "b"} {
		if _, err := s.SendText("r", ch); err != nil {
			t.Fatal(err)
		}
	}
	if m := awaitGot(t, a, wire.OpText); m.m.Seq != 1 || m.m.T != "a" {
		t.Fatalf("node got %d %q, want 1 \"a\"", m.m.Seq, m.m.T)
	}
	// The phone (alice too) stores 2 while "b" waits for the budget.
	join.conn.send(wire.Message{Op: wire.OpText, Room: "r", From: "alice", Seq: 2, T: "X"})
	if m := awaitGot(t, a, wire.OpText); m.m.Seq != 3 || m.m.T != "b" {
		t.Fatalf("node got %d %q after the phone's 2, want 3 \"b\"", m.m.Seq, m.m.T)
	}
	awaitEvent(t, s, "the phone's text", func(e client.Event) bool {
		return e.Message.Op == wire.OpText && e.Message.Seq == 2 && e.Message.T == "X"
	}, nil)
	if seq, err := s.SendText("r", "c"); err != nil || seq != 4 {
		t.Errorf("SendText after = %d, %v; want 4", seq, err)
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A session that cannot reattach within its reconnect timeout ends: its
// last event says why, the events end, it is failed, and every method
// returns the error, which matches ErrGaveUp and ErrClosed and names the
// node tried. Close then changes nothing of that.
func TestGiveUpIsFinal(t *testing.T) {
	a := newFakeNode(t, "a")
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithRetry(fastRetry()), client.WithReconnectTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Join("r"); err != nil {
		t.Fatal(err)
	}
	if s.State() != client.StateAttached || s.Err() != nil {
		t.Fatalf("state %v, err %v; want attached, nil", s.State(), s.Err())
	}
	a.stop() // gone for good: refused from now on
	var last client.Event
	for e := range s.Events() {
		last = e
	}
	if last.Kind != client.Disconnected || !errors.Is(last.Err, client.ErrGaveUp) {
		t.Fatalf("last event %v %v, want a drop that gave up", last.Kind, last.Err)
	}
	err = s.Err()
	if !errors.Is(err, client.ErrGaveUp) || !errors.Is(err, client.ErrClosed) || !strings.Contains(err.Error(), "a: session dropped") {
		t.Errorf("Err() = %v; want it to match ErrGaveUp and ErrClosed and to name node a", err)
	}
	if st := s.State(); st != client.StateFailed {
		t.Errorf("state %v, want failed", st)
	}
	if err := s.Join("r2"); !errors.Is(err, client.ErrGaveUp) {
		t.Errorf("Join after giving up = %v, want ErrGaveUp", err)
	}
	if _, err := s.SendText("r", "x"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("SendText after giving up = %v, want ErrClosed", err)
	}
	if err := s.Leave("r"); !errors.Is(err, client.ErrGaveUp) {
		t.Errorf("Leave after giving up = %v, want ErrGaveUp", err)
	}
	s.Close()
	if st, err := s.State(), s.Err(); st != client.StateFailed || !errors.Is(err, client.ErrGaveUp) {
		t.Errorf("after Close: state %v, err %v; want failed and the give-up error", st, err)
	}
}

// After Close the session is closed and every method says so.
func TestClosedIsFinal(t *testing.T) {
	a := newFakeNode(t, "a")
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if st, err := s.State(), s.Err(); st != client.StateClosed || err != client.ErrClosed {
		t.Errorf("state %v, err %v; want closed, ErrClosed", st, err)
	}
	if err := s.Join("r"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Join after Close = %v, want ErrClosed", err)
	}
	if _, err := s.SendText("r", "x"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("SendText after Close = %v, want ErrClosed", err)
	}
}

// stuckDialer hands out connections whose writes block, once stuck is
// closed, until the connection closes: a node that stopped reading with
// full buffers.
type stuckDialer struct {
	stuck chan struct{}
}

func (d *stuckDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &stuckConn{Conn: c, stuck: d.stuck, closed: make(chan struct{})}, nil
}

type stuckConn struct {
	net.Conn
	stuck  chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (c *stuckConn) Write(p []byte) (int, error) {
	select {
	case <-c.stuck:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return c.Conn.Write(p)
	}
}

func (c *stuckConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// No method waits for the network: with every write to the node stuck,
// Join, SendText, Leave and the getters return, and the reader still
// handles what the node sends (here an ack).
func TestNoMethodWaitsForAWrite(t *testing.T) {
	a := newFakeNode(t, "a")
	d := &stuckDialer{stuck: make(chan struct{})}
	s, join := aliceInRoom(t, a, client.WithDialer(d), client.WithHeartbeat(client.Heartbeat{}))
	join.conn.send(roomState("r", 0))
	awaitEvent(t, s, "room state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	close(d.stuck)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			if _, err := s.SendText("r", "x"); err != nil {
				t.Errorf("SendText %d: %v", i, err)
			}
		}
		if err := s.Join("other"); err != nil {
			t.Error(err)
		}
		if err := s.Leave("other"); err != nil {
			t.Error(err)
		}
		_, _, _ = s.Node(), s.Unacked("r"), s.State()
	}()
	select {
	case <-done:
	case <-time.After(settle):
		t.Fatalf("methods blocked for %v behind a stuck write", settle)
	}
	join.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 1})
	awaitEvent(t, s, "ack", func(e client.Event) bool { return e.Message.Op == wire.OpAck }, nil)
	if n := s.Unacked("r"); n != 49 {
		t.Errorf("%d chunks unacknowledged, want 49", n)
	}
}

// Text typed while the session was away never went out, so no node can
// have stored it: a state that shows the user's text at or above its
// seqs (the user typed from another device meanwhile) does not
// acknowledge it. It goes on above the state's seq instead, where before
// it was taken for stored, acknowledged and lost. Nor, with a device, is
// the state an ack for text that went out: the node that had it may have
// died before storing it, and the room judges its resend.
func TestStateDoesNotAcknowledgeTextNeverSent(t *testing.T) {
	for _, d := range devices {
		t.Run(d.name, func(t *testing.T) { testStateDoesNotAcknowledgeTextNeverSent(t, d.opt, d.byDevice) })
	}
}

func testStateDoesNotAcknowledgeTextNeverSent(t *testing.T, device client.Option, byDevice bool) {
	a := newFakeNode(t, "a")
	retry := fastRetry()
	retry.Cooldown = time.Millisecond // the one node comes back at once
	s, join := aliceInRoom(t, a, client.WithRetry(retry), client.WithHeartbeat(client.Heartbeat{}), device)
	join.conn.send(roomState("r", 5))
	awaitEvent(t, s, "the state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	if seq, err := s.SendText("r", "x"); err != nil || seq != 6 {
		t.Fatalf("SendText = %d, %v; want 6", seq, err)
	}
	awaitGot(t, a, wire.OpText) // 6 went out, never acknowledged

	// Away: from the drop until the room's state comes on the new
	// connection, what is typed waits in the session.
	a.dropAll()
	awaitEvent(t, s, "the drop", func(e client.Event) bool { return e.Kind == client.Disconnected }, nil)
	if seq, err := s.SendText("r", "y"); err != nil || seq != 7 {
		t.Fatalf("SendText while away = %d, %v; want 7", seq, err)
	}
	// The phone stored 7 and 8 meanwhile, and 6 is stored: this
	// session's, or the phone's (and this one's lost with its node).
	awaitGot(t, a, wire.OpJoin).conn.send(roomState("r", 8))
	unacked := 1
	if byDevice {
		unacked = 2
		if m := awaitGot(t, a, wire.OpText); m.m.Seq != 6 || m.m.T != "x" {
			t.Fatalf("after a state at 8 the node got %d %q, want 6 \"x\" again", m.m.Seq, m.m.T)
		}
	}
	if m := awaitGot(t, a, wire.OpText); m.m.Seq != 9 || m.m.T != "y" {
		t.Fatalf("after a state at 8 the node got %d %q, want 9 \"y\"", m.m.Seq, m.m.T)
	}
	if un := s.UnackedText("r"); len(un) != unacked || un[len(un)-1].Seq != 9 {
		t.Fatalf("unacknowledged %v, want %d chunks, \"y\" at 9 last", un, unacked)
	}
}

// A token source that never answers does not keep a session from giving
// up: its wait ends at the reconnect deadline, and the session ends.
func TestHungTokenFuncGivesUpAtTheReconnectDeadline(t *testing.T) {
	n := newFakeNode(t, "n1")
	var calls atomic.Int32
	hung := func(ctx context.Context) (string, error) {
		if calls.Add(1) == 1 {
			return "t1", nil
		}
		<-ctx.Done() // a token service that never answers
		return "", ctx.Err()
	}
	s, err := client.Dial(dialCtx(t), n.Addr(), client.WithUser("alice"), client.WithTokenFunc(hung),
		client.WithReconnectTimeout(3*time.Second), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	n.dropAll()
	last := awaitEvent(t, s, "the session giving up", func(e client.Event) bool {
		return e.Kind == client.Disconnected && errors.Is(e.Err, client.ErrGaveUp)
	}, nil)
	if !errors.Is(last.Err, context.DeadlineExceeded) {
		t.Errorf("gave up with %v, want the token's wait cut by the deadline", last.Err)
	}
	if calls.Load() < 2 {
		t.Errorf("the token function was called %d times, want a call for the reattach", calls.Load())
	}
}

// A token source that does not honour its context (a blocking call) does
// not keep Close waiting: the session stops waiting for it at Close, as
// for one that honours ctx, and drops its late answer. Before, the
// session called it on its own goroutine, and Close waited until it
// returned.
func TestCloseDoesNotWaitForATokenSourceThatIgnoresCtx(t *testing.T) {
	n := newFakeNode(t, "n1")
	var calls atomic.Int32
	called := make(chan struct{}, 1)
	release := make(chan struct{})
	var released sync.Once
	unblock := func() { released.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	blocking := func(ctx context.Context) (string, error) {
		if calls.Add(1) == 1 {
			return "t1", nil
		}
		select {
		case called <- struct{}{}:
		default:
		}
		<-release // ignores ctx, until the test ends
		return "t2", nil
	}
	s, err := client.Dial(dialCtx(t), n.Addr(), client.WithUser("alice"), client.WithTokenFunc(blocking), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range s.Events() {
		}
	}()
	n.dropAll()
	select {
	case <-called:
	case <-time.After(settle):
		t.Fatalf("the token source was not called for the reattach within %v", settle)
	}
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(settle):
		unblock() // lets Close return, for the cleanup
		<-closed
		t.Fatalf("Close did not return within %v while the token source blocked", settle)
	}
	if st := s.State(); st != client.StateClosed {
		t.Errorf("state after Close = %v, want closed", st)
	}
}

// A room state that comes unasked on the connection the room is synced
// on (the room moved one of this session's chunks because another device
// of the user had taken its seq) answers none of the chunks on their way:
// one the other device stored may stand at their seqs, and their own
// stores could still fail. They stay unacknowledged until their acks
// come, none is sent again, and new text is numbered above the state.
func TestUnaskedStateAcknowledgesNothing(t *testing.T) {
	a := newFakeNode(t, "a")
	s, join := aliceInRoom(t, a, client.WithRetry(fastRetry()))
	join.conn.send(roomState("r", 5))
	awaitEvent(t, s, "the state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)

	waitX := async(func() (uint64, error) { return s.SendTextWait(dialCtx(t), "r", "x") })
	if m := awaitGot(t, a, wire.OpText); m.m.Seq != 6 {
		t.Fatalf("node got seq %d, want 6", m.m.Seq)
	}
	if _, err := s.SendText("r", "y"); err != nil {
		t.Fatal(err)
	}
	if m := awaitGot(t, a, wire.OpText); m.m.Seq != 7 {
		t.Fatalf("node got seq %d, want 7", m.m.Seq)
	}

	// The other device stored 6 to 8 meanwhile; the state says so.
	join.conn.send(roomState("r", 8))
	awaitEvent(t, s, "the unasked state", func(e client.Event) bool { return e.Message.Op == wire.OpRoom }, nil)
	if seq, err := s.SendText("r", "z"); err != nil || seq != 9 {
		t.Fatalf("SendText after the state = %d, %v; want 9", seq, err)
	}
	// The next text the node gets is the new chunk, not a resend.
	if m := awaitGot(t, a, wire.OpText); m.m.Seq != 9 || m.m.T != "z" {
		t.Fatalf("node got %d %q, want 9 \"z\"", m.m.Seq, m.m.T)
	}
	var got []uint64
	for _, m := range s.UnackedText("r") {
		got = append(got, m.Seq)
	}
	if want := []uint64{6, 7, 9}; !equalSeqs(got, want) {
		t.Fatalf("unacknowledged seqs %v after the state, want %v: the state is no ack", got, want)
	}
	join.conn.send(wire.Message{Op: wire.OpAck, Room: "r", Seq: 6})
	if res := awaitResult(t, "SendTextWait of \"x\"", waitX); res.err != nil || res.v != 6 {
		t.Errorf("SendTextWait of \"x\" = %d, %v; want 6", res.v, res.err)
	}
}
