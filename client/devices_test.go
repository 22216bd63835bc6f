package client_test

import (
	"bytes"
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// Two sessions of one user, on two nodes, type into one room at the same
// time, each chunk as soon as the one before is acknowledged: their seqs
// collide again and again (both count from 1, each seeing the other's
// chunks only after choosing its own). Every chunk either typed is stored
// once (the room moves a chunk another device took the seq of to the
// user's next seq), and a member watching sees exactly what the room
// holds. Without devices (clients before them) the room took the second
// of each pair for a resend, acknowledged and dropped it; and while the
// room showed a user's live chunks to the user's other sessions, a client
// could count on above a chunk the room then moved, leaving a seq nothing
// was stored under (a U+FFFD in the text).
func TestTwoDevicesLoseNothing(t *testing.T) {
	const room = "r"
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(settle)
	dial := func(node int, user string) *client.Session {
		t.Helper()
		s, err := client.Dial(dialCtx(t), c.Nodes[node].Addr(), client.WithUser(user), client.WithRetry(fastRetry()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.JoinWait(dialCtx(t), room); err != nil {
			t.Fatal(err)
		}
		return s
	}
	bob := dial(0, "bob")
	// bob's view of the room: its states, and the chunks after them.
	var (
		mu   sync.Mutex
		view *rtt.Room
	)
	changed := make(chan struct{}, 1) // bob's view changed
	bobDone := make(chan struct{})
	defer func() {
		bob.Close()
		<-bobDone // nothing of bob's reaches t after the test
	}()
	go func() {
		defer close(bobDone)
		for e := range bob.Events() {
			m := e.Message
			if e.Kind != client.Received || m.Room != room {
				continue
			}
			mu.Lock()
			switch m.Op {
			case wire.OpRoom:
				r, err := rtt.FromState(0, m.State.TextState())
				if err != nil {
					t.Error(err)
				}
				view = r
			case wire.OpText:
				if view != nil {
					view.Apply(m.From, m.Seq, m.T)
				}
			}
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()
	phone, laptop := dial(0, "ann"), dial(1, "ann")
	for _, s := range []*client.Session{phone, laptop} {
		go func() {
			for range s.Events() {
			}
		}()
	}

	const n = 30
	typed := map[*client.Session]string{phone: strings.Repeat("abcde", n/5), laptop: strings.Repeat("VWXYZ", n/5)}
	var wg sync.WaitGroup
	for s, text := range typed {
		wg.Go(func() {
			for _, ch := range text {
				if _, err := s.SendTextWait(dialCtx(t), room, string(ch)); err != nil {
					t.Errorf("typing %q: %v", ch, err)
					return
				}
			}
		})
	}
	wg.Wait()

	// What the room holds, as a newcomer's state shows it: every
	// character of both, once.
	carol := dial(1, "carol")
	st, err := carol.JoinWait(dialCtx(t), room)
	if err != nil {
		t.Fatal(err)
	}
	held := st.Live["ann"]
	if got, want := sortedRunes(held), sortedRunes(typed[phone]+typed[laptop]); got != want {
		t.Fatalf("ann's text in the room: %q (%d characters), want each of the %d typed once, and no U+FFFD", held, utf8.RuneCountInString(held), utf8.RuneCountInString(want))
	}
	// bob's view comes to the same text, each chunk shown once.
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	for {
		mu.Lock()
		live := ""
		if view != nil {
			live = view.Live("ann")
		}
		mu.Unlock()
		if live == held {
			break
		}
		if len(live) > len(held) {
			t.Fatalf("bob sees ann typing %q; the room holds %q", live, held)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("bob sees ann typing %q; the room holds %q", live, held)
		}
	}
}

// sortedRunes is s with its characters sorted.
func sortedRunes(s string) string {
	r := []rune(s)
	slices.Sort(r)
	return string(r)
}

// swallowDialer dials as a net.Dialer does; while swallowing, its
// connections drop the text lines the session writes (a node that read
// them and died before storing them) and say so on swallowed. Close ends
// the connections it opened.
type swallowDialer struct {
	d         net.Dialer
	swallowed chan string // the text lines dropped
	mu        sync.Mutex
	swallow   bool
	conns     []net.Conn
	gate      chan struct{} // if not nil, dials wait for it to close
}

func (d *swallowDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	gate := d.gate
	d.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c, err := d.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conns = append(d.conns, c)
	return &swallowConn{Conn: c, d: d}, nil
}

func (d *swallowDialer) setSwallow(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.swallow = on
}

// holdDials makes later dials wait until the returned func is called.
func (d *swallowDialer) holdDials() (release func()) {
	gate := make(chan struct{})
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gate = gate
	return sync.OnceFunc(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.gate = nil
		close(gate)
	})
}

// dropAll closes every connection the dialer opened.
func (d *swallowDialer) dropAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

type swallowConn struct {
	net.Conn
	d *swallowDialer
}

func (c *swallowConn) Write(p []byte) (int, error) {
	c.d.mu.Lock()
	swallow := c.d.swallow
	c.d.mu.Unlock()
	if !swallow {
		return c.Conn.Write(p)
	}
	var kept []byte
	for line := range bytes.Lines(p) {
		if m, err := wire.Decode(bytes.TrimSuffix(line, []byte("\n"))); err == nil && m.Op == wire.OpText {
			c.d.swallowed <- m.T
			continue
		}
		kept = append(kept, line...)
	}
	if _, err := c.Conn.Write(kept); err != nil {
		return 0, err
	}
	return len(p), nil
}

// A chunk that went out and was never stored (its node died first) is
// resent after the session reattaches, even when the user's other device
// typed past its seq meanwhile: the room's state then shows the seq
// stored, but by the other device, and the room, which knows the resend
// is not this device's chunk under that seq, stores it under the user's
// next seq. Taking the state for its ack, as a client does that names no
// device, would lose text whose SendTextWait returned without an error.
// So would a room that forgot the user's devices when the user left: in
// the second case the laptop closes and the phone comes back only once
// the room has seen the user go.
func TestChunkLostWithItsNodeIsResent(t *testing.T) {
	for _, tc := range []struct {
		name       string
		userLeaves bool
	}{
		{"user stays", false},
		{"user leaves meanwhile", true},
	} {
		t.Run(tc.name, func(t *testing.T) { chunkLostWithItsNode(t, tc.userLeaves) })
	}
}

func chunkLostWithItsNode(t *testing.T, userLeaves bool) {
	const room = "r"
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(settle)
	sd := &swallowDialer{swallowed: make(chan string, 1)}
	phone, err := client.Dial(dialCtx(t), c.Nodes[0].Addr(), client.WithUser("ann"), client.WithDialer(sd), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { phone.Close() })
	laptop, err := client.Dial(dialCtx(t), c.Nodes[1].Addr(), client.WithUser("ann"), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { laptop.Close() })
	carol, err := client.Dial(dialCtx(t), c.Nodes[1].Addr(), client.WithUser("carol"), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { carol.Close() })
	annLeft := make(chan struct{})
	go func() {
		for ev := range carol.Events() {
			if re, ok := ev.Room(); ok && re.Kind == client.PresenceEvent && re.User == "ann" && !re.Joined {
				close(annLeft)
				for range carol.Events() {
				}
				return
			}
		}
	}()
	if _, err := carol.JoinWait(dialCtx(t), room); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*client.Session{phone, laptop} {
		go func() {
			for range s.Events() {
			}
		}()
		if _, err := s.JoinWait(dialCtx(t), room); err != nil {
			t.Fatal(err)
		}
	}

	// The phone types "y"; its node reads it and dies before storing it.
	sd.setSwallow(true)
	waitY := async(func() (uint64, error) { return phone.SendTextWait(dialCtx(t), room, "y") })
	select {
	case got := <-sd.swallowed:
		if got != "y" {
			t.Fatalf("swallowed %q, want \"y\"", got)
		}
	case <-time.After(settle):
		t.Fatal("the phone's chunk never went out")
	}
	// Meanwhile the laptop, which never saw it, types over its seq.
	for _, ch := range []string{"x", "z"} {
		if _, err := laptop.SendTextWait(dialCtx(t), room, ch); err != nil {
			t.Fatal(err)
		}
	}
	sd.setSwallow(false)
	if userLeaves {
		// The laptop closes, and the phone stays away until the room
		// has seen its old session go too.
		release := sd.holdDials()
		t.Cleanup(release)
		laptop.Close()
		sd.dropAll()
		select {
		case <-annLeft:
		case <-time.After(settle):
			t.Fatal("carol never saw ann leave")
		}
		release()
	} else {
		sd.dropAll()
	}
	if res := awaitResult(t, "SendTextWait of \"y\"", waitY); res.err != nil {
		t.Fatalf("SendTextWait of \"y\": %v", res.err)
	}

	late, err := client.Dial(dialCtx(t), c.Nodes[1].Addr(), client.WithUser("dave"), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { late.Close() })
	st, err := late.JoinWait(dialCtx(t), room)
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedRunes(st.Live["ann"]); got != "xyz" {
		t.Errorf("ann's text in the room: %q, want \"x\", \"y\" and \"z\" once each", st.Live["ann"])
	}
}
