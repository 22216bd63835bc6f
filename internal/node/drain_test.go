package node_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/drain"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/wire"
)

// preferNode picks the first of ids available, else what the default
// policy picks: a session that starts where the test wants it and moves
// like any client.
func preferNode(ids ...string) pick.Policy {
	fallback := pick.Default(pick.DefaultRand())
	return pick.PolicyFunc(func(nodes []directory.Node, req pick.Request) (pick.Result, error) {
		for _, id := range ids {
			for _, n := range nodes {
				if n.ID == id && n.Available() && (req.Exclude == nil || !req.Exclude(id)) {
					return pick.Result{Node: n, Reason: "test: " + id}, nil
				}
			}
		}
		return fallback.Pick(nodes, req)
	})
}

// mover is a client.Session in one room that records what it was shown:
// each delivery counted by (sender, seq), and the highest seq of each
// sender a room state held, so that a chunk shown twice (delivered again,
// or delivered after a state that held it) is caught.
type mover struct {
	s     *client.Session
	user  string
	moved chan directory.Node // the node of each Moved event

	mu        sync.Mutex
	delivered map[string]map[uint64]int
	covered   map[string]uint64
	twice     []string
	drops     int
}

func newMover(t *testing.T, target, home, user, room string) *mover {
	t.Helper()
	return newMoverPreferring(t, target, user, room, home)
}

// newMoverPreferring is newMover with a policy that picks the first of
// prefer available: it attaches to prefer[0].
func newMoverPreferring(t *testing.T, target, user, room string, prefer ...string) *mover {
	t.Helper()
	home := prefer[0]
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := client.Dial(ctx, target, client.WithUser(user), client.WithPolicy(preferNode(prefer...)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Node().ID != home {
		t.Fatalf("%s attached to %s, want %s", user, s.Node().ID, home)
	}
	m := &mover{s: s, user: user, moved: make(chan directory.Node, 4), delivered: map[string]map[uint64]int{}, covered: map[string]uint64{}}
	go m.watch(room)
	if _, err := s.JoinWait(ctx, room); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *mover) watch(room string) {
	for e := range m.s.Events() {
		switch e.Kind {
		case client.Moved:
			m.moved <- e.Node
		case client.Disconnected:
			m.mu.Lock()
			m.drops++
			m.mu.Unlock()
		case client.Received:
			msg := e.Message
			if msg.Room != room {
				continue
			}
			m.mu.Lock()
			switch {
			case msg.Op == wire.OpRoom && msg.State != nil:
				// A client replaces its view of the room with a state
				// (docs/protocol.md): what it was shown before counts no
				// more. A move's new node states what was stored when
				// the session joined there, which may lack text the old
				// node showed live, and delivers that once it is stored.
				clear(m.covered)
				clear(m.delivered)
				maps.Copy(m.covered, msg.State.Seqs)
			case msg.Op == wire.OpText:
				d := m.delivered[msg.From]
				if d == nil {
					d = map[uint64]int{}
					m.delivered[msg.From] = d
				}
				d[msg.Seq]++
				switch {
				case msg.Seq <= m.covered[msg.From]:
					m.twice = append(m.twice, fmt.Sprintf("%s shown %s's seq %d after a state covering it (seq %d)", m.user, msg.From, msg.Seq, m.covered[msg.From]))
				case d[msg.Seq] > 1:
					m.twice = append(m.twice, fmt.Sprintf("%s shown %s's seq %d twice since the last state", m.user, msg.From, msg.Seq))
				}
			}
			m.mu.Unlock()
		}
	}
}

// typeAll sends text one character a chunk, without waiting for acks.
func (m *mover) typeAll(t *testing.T, room, text string) {
	t.Helper()
	for _, c := range text {
		if _, err := m.s.SendText(room, string(c)); err != nil {
			t.Fatal(err)
		}
	}
}

// A drain to empty moves a room's members from the draining node to the
// others, make-before-break: a member on another node sees every chunk
// once and in order, and no presence change for the users who moved,
// whose text typed before, during and after the move is all there; the
// movers are shown nothing twice and never drop; the node reports empty.
func TestDrainMovesRoomMembers(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	c.WaitRoomsReady(wait)
	n1, n2 := c.Nodes[0], c.Nodes[1]
	const room = "moving"

	bob := newPeer(t, n1.Addr(), "bob")
	bobView := newView(t, bob.join(room))
	ann := newMover(t, n2.Addr(), n2.ID(), "ann", room)
	cat := newMover(t, n2.Addr(), n2.ID(), "cat", room)
	// bob hears ann and cat come in before the drain.
	for _, u := range []string{"ann", "cat"} {
		bob.await("presence join of "+u, func(m wire.Message) bool {
			return m.Op == wire.OpPresence && m.User == u && m.Event == "join"
		})
	}
	annText := []string{"before the drain\n", "while moving ", "and after\n"}
	catText := []string{"cat was here ", "and stays ", "to the end\n"}
	ann.typeAll(t, room, annText[0])
	cat.typeAll(t, room, catText[0])

	// The drain spreads its asks over the window less its tail (package
	// drain): the second of two sessions is asked halfway through that,
	// so the window, not the moves, sets how long the drain lasts. 20 s
	// asks it at about 7.5 s and leaves it 12.5 s to move, more than a
	// client's own move timeout (10 s), after which it gives up anyway:
	// as generous for a loaded CI machine as a longer window. A mover too
	// slow for it would be closed at its deadline and fail over, which is
	// another test.
	const within = 20 * time.Second
	done := n2.Drain(within)
	// Text typed while the moves are under way: it goes out on the old
	// connection or waits for the new one, and is stored once either way.
	ann.typeAll(t, room, annText[1])
	cat.typeAll(t, room, catText[1])
	for _, m := range []*mover{ann, cat} {
		select {
		case to := <-m.moved:
			if to.ID == n2.ID() {
				t.Errorf("%s moved to the draining node %s", m.user, to.ID)
			}
		case <-time.After(wait):
			t.Fatalf("%s did not move within %v", m.user, wait)
		}
	}
	ann.typeAll(t, room, annText[2])
	cat.typeAll(t, room, catText[2])
	select {
	case <-done:
	case <-time.After(2 * wait):
		t.Fatalf("the drain did not end within %v: %+v", 2*wait, n2.DrainStatus())
	}
	if st := n2.DrainStatus(); st.Reason != "empty" || !st.Empty || st.Closed != 0 || st.Asked != 2 {
		t.Errorf("drain status %+v; want empty, 2 asked, none closed", st)
	}

	want := map[string]string{"ann": strings.Join(annText, ""), "cat": strings.Join(catText, "")}
	full := func(text string) (lines []string, live string) {
		parts := strings.Split(text, "\n")
		return parts[:len(parts)-1], parts[len(parts)-1]
	}
	var churn []string
	for !slices.Equal(lines(bobView.room.State(), "ann"), must(full(want["ann"]))) ||
		!slices.Equal(lines(bobView.room.State(), "cat"), must(full(want["cat"]))) {
		m := bob.await("text or presence", func(m wire.Message) bool {
			return m.Room == room && (m.Op == wire.OpText || m.Op == wire.OpPresence)
		})
		if m.Op == wire.OpPresence {
			churn = append(churn, m.User+" "+m.Event)
			continue
		}
		bobView.apply(m) // fails the test on a gap, a repeat or disorder
	}
	if len(churn) > 0 {
		t.Errorf("bob saw presence for users who only moved: %q", churn)
	}
	for _, m := range []*mover{ann, cat} {
		if n := m.s.Unacked(room); n != 0 {
			nodetest.Eventually(t, wait, func() error {
				if n := m.s.Unacked(room); n != 0 {
					return fmt.Errorf("%s has %d chunks unacked", m.user, n)
				}
				return nil
			})
		}
		m.mu.Lock()
		if len(m.twice) > 0 || m.drops > 0 {
			t.Errorf("%s: shown twice %q, drops %d; want none", m.user, m.twice, m.drops)
		}
		m.mu.Unlock()
		if m.s.Moves() != 1 || m.s.Node().ID == n2.ID() {
			t.Errorf("%s moved %d times and is on %s; want once, off %s", m.user, m.s.Moves(), m.s.Node().ID, n2.ID())
		}
	}
	// ann saw all of cat's text once, across her move: on a connection
	// of her own, so after bob maybe, but it comes.
	nodetest.Eventually(t, wait, func() error {
		ann.mu.Lock()
		got := ann.covered["cat"]
		for seq := range ann.delivered["cat"] {
			got = max(got, seq)
		}
		ann.mu.Unlock()
		if want := uint64(len([]rune(want["cat"]))); got != want {
			return fmt.Errorf("ann saw cat's text up to seq %d, want %d", got, want)
		}
		return nil
	})
	// A late joiner reads exactly what was typed.
	st := newPeer(t, n1.Addr(), "dee").join(room)
	for user, text := range want {
		ls, live := full(text)
		v := newView(t, st).room.State()
		if !slices.Equal(lines(v, user), ls) || v.Live[user] != live {
			t.Errorf("a late joiner reads %s's lines %q live %q; want %q %q", user, lines(v, user), v.Live[user], ls, live)
		}
	}
	if !slices.Equal(st.Users, []string{"ann", "bob", "cat", "dee"}) {
		t.Errorf("users %q after the moves", st.Users)
	}
}

func must(lines []string, _ string) []string { return lines }

// waitRoomsCaughtUp waits until the rooms are ready and every one of
// their streams has all its copies caught up with its leader (the live
// nodes' caught-up gauges add up to the streams). A test cluster raises
// its streams from two copies to three once its nodes see each other
// (WaitRoomsReady waits for the raise to be asked, not done); a node
// killed a moment after it, while a stream's group changes, can leave
// that stream without a quorum until the node returns.
func waitRoomsCaughtUp(t *testing.T, c *nodetest.Cluster) {
	t.Helper()
	c.WaitRoomsReady(wait)
	nodetest.Eventually(t, wait, func() error {
		var streams, caughtUp float64
		for _, n := range c.Nodes {
			streams = gauge(t, n, "switchboard_room_streams")
			caughtUp += gauge(t, n, "switchboard_room_streams_caught_up")
		}
		if streams == 0 || caughtUp != streams {
			return fmt.Errorf("%v of %v room streams caught up", caughtUp, streams)
		}
		return nil
	})
}

// A node killed (halted) in the middle of another's drain, after
// sessions have moved to it: those sessions fail over to the node left,
// the drain moves the rest there and ends empty, closing no one, and
// every mover's text is acknowledged and in the room once, in order.
func TestDrainGoesOnWhenADestinationDies(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	waitRoomsCaughtUp(t, c)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	const room = "rerouted"
	users := []string{"ann", "cat", "dan", "eve"}
	movers := make([]*mover, len(users))
	for i, u := range users {
		// On n2 while it admits sessions, then on n3 while it lives.
		movers[i] = newMoverPreferring(t, n2.Addr(), u, room, n2.ID(), n3.ID())
	}
	text := func(u string) []string {
		return []string{u + " before\n", u + " during ", u + " after\n"}
	}
	for i, m := range movers {
		m.typeAll(t, room, text(users[i])[0])
	}

	// Four asks spread over the window less the drain's tail (15 s), in
	// no set order: the first asked moves to n3, which dies before the
	// others are asked. A move to n1 may wait for the room stream's
	// election if n3 led it (nats-server's 4-9 s): the window leaves the
	// last ask more than that, so the drain still ends empty, closing no
	// one.
	done := n2.Drain(20 * time.Second)
	nodetest.Eventually(t, wait, func() error {
		for _, m := range movers {
			if m.s.Node().ID == n3.ID() {
				return nil
			}
		}
		return errors.New("nobody moved to n3")
	})
	n3.Halt()
	for i, m := range movers {
		m.typeAll(t, room, text(users[i])[1])
	}
	nodetest.Eventually(t, wait, func() error {
		for _, m := range movers {
			if id := m.s.Node().ID; id != n1.ID() {
				return fmt.Errorf("%s is on %s", m.user, id)
			}
		}
		return nil
	})
	for i, m := range movers {
		m.typeAll(t, room, text(users[i])[2])
	}
	select {
	case <-done:
	case <-time.After(2 * wait):
		t.Fatalf("the drain did not end within %v: %+v", 2*wait, n2.DrainStatus())
	}
	if st := n2.DrainStatus(); st.Reason != "empty" || !st.Empty || st.Closed != 0 {
		t.Errorf("drain status %+v; want empty, none closed", st)
	}
	// The drain, not only the failover, moved sessions after the death.
	toN1 := 0
	for _, m := range movers {
		for len(m.moved) > 0 {
			if to := <-m.moved; to.ID == n1.ID() {
				toN1++
			}
		}
	}
	if toN1 == 0 {
		t.Error("no session was moved to n1 by the drain after n3's death")
	}
	for _, m := range movers {
		nodetest.Eventually(t, wait, func() error {
			if n := m.s.Unacked(room); n != 0 {
				return fmt.Errorf("%s has %d chunks unacked", m.user, n)
			}
			return nil
		})
		m.mu.Lock()
		if len(m.twice) > 0 {
			t.Errorf("%s: shown twice %q", m.user, m.twice)
		}
		m.mu.Unlock()
	}
	st := newPeer(t, n1.Addr(), "dee").join(room)
	v := newView(t, st).room.State()
	for _, u := range users {
		all := strings.Join(text(u), "")
		if got := strings.Join(lines(v, u), "\n") + "\n" + v.Live[u]; got != all {
			t.Errorf("a late joiner reads %s's %q, want %q", u, got, all)
		}
	}
}

// A client that ignores "move" (a raw protocol client of an older kind)
// gets the move, then at the drain's deadline the error "shutdown", and
// the connection closes; the drain reports that it closed it.
func TestDrainClosesOldClientsAtTheDeadline(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	n2 := c.Nodes[1]
	old := newPeer(t, n2.Addr(), "old")
	done := n2.Drain(time.Second)
	mv := old.await("move", func(m wire.Message) bool { return m.Op == wire.OpMove })
	if d := mv.Directory(); d == nil || !slices.ContainsFunc(d.Nodes, func(e directory.Node) bool { return e.ID == n2.ID() && e.Status == directory.Draining }) {
		t.Errorf("the move's directory does not list %s draining: %+v", n2.ID(), mv.Dir)
	}
	bye := old.await("shutdown", func(m wire.Message) bool { return m.Op == wire.OpError })
	if bye.Code != wire.CodeShutdown {
		t.Errorf("at the deadline the old client got %+v, want error shutdown", bye)
	}
	select {
	case _, open := <-old.in:
		for open {
			_, open = <-old.in
		}
	case <-time.After(wait):
		t.Fatal("the connection stayed open after shutdown")
	}
	<-done
	if st := n2.DrainStatus(); st.Reason != "deadline" || st.Closed != 1 || st.Asked != 1 {
		t.Errorf("drain status %+v; want deadline, 1 asked, 1 closed", st)
	}
	// The closed session's reader releases it once it sees the close.
	nodetest.Eventually(t, wait, func() error {
		if u := n2.Users(); u != 0 {
			return fmt.Errorf("%d users", u)
		}
		return nil
	})
	// Still draining: a new attach is refused with a fresh directory.
	if got := n2.Status(); got != directory.Draining {
		t.Errorf("status %s after the drain, want draining", got)
	}
}

// POST /v1/drain?within= starts a drain to empty for an admin only, GET
// /v1/drain reports it, and DELETE stops it.
func TestDrainHTTP(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	n := c.Nodes[0]
	base := "http://" + n.HTTPAddr() + "/v1/drain"
	do := func(method, url string) int {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do(http.MethodPost, base+"?within=soon"); code != http.StatusBadRequest {
		t.Errorf("within=soon: %d, want 400", code)
	}
	if n.Status() == directory.Draining {
		t.Error("a refused drain turned draining on")
	}
	if code := do(http.MethodPost, base+"?within=30s"); code != http.StatusOK {
		t.Errorf("within=30s: %d, want 200", code)
	}
	var st node.DrainStatus
	nodetest.Eventually(t, wait, func() error {
		st = n.DrainStatus()
		if !st.Done || !st.Empty {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if !st.Paced || !st.Draining || st.Reason != "empty" {
		t.Errorf("status %+v; want a paced drain, empty at once", st)
	}
	if code := do(http.MethodGet, base); code != http.StatusOK {
		t.Errorf("GET: %d, want 200", code)
	}
	if code := do(http.MethodDelete, base); code != http.StatusOK || n.DrainStatus().Draining {
		t.Errorf("DELETE: %d, draining %v; want 200 and not draining", code, n.DrainStatus().Draining)
	}
}

// With rebalancing on, a node that holds more than its share (here all
// 8 sessions of a two-node cluster) asks its surplus to move once the
// excess has held, down to the mean: 4 sessions move, each once, and the
// node that received them does not send them back.
func TestRebalanceMovesTheSurplusOnce(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Rebalance = drain.RebalanceConfig{Threshold: 0.05, Hold: 500 * time.Millisecond, Rate: 100}
		cfg.RebalanceMinAge = time.Nanosecond
	}})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	// Hold n2 out of the picks while the sessions attach to n1.
	n2.SetDraining(true)
	var sessions []*client.Session
	for i := range 8 {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		s, err := client.Dial(ctx, n1.Addr(), client.WithUser(fmt.Sprintf("u%d", i)), client.WithPolicy(preferNode(n1.ID())))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		go func() {
			for range s.Events() {
			}
		}()
		sessions = append(sessions, s)
	}
	n2.SetDraining(false)
	moves := func() (total, most int) {
		for _, s := range sessions {
			total += s.Moves()
			most = max(most, s.Moves())
		}
		return total, most
	}
	nodetest.Eventually(t, wait, func() error {
		if n1.Users() != 4 || n2.Users() != 4 {
			return fmt.Errorf("n1 %d, n2 %d users; want 4 and 4", n1.Users(), n2.Users())
		}
		if total, _ := moves(); total != 4 {
			return fmt.Errorf("%d moves so far", total)
		}
		return nil
	})
	if total, most := moves(); total != 4 || most != 1 {
		t.Errorf("%d moves, one session moved %d times; want 4, each once", total, most)
	}
	for _, s := range sessions {
		if s.Moves() == 1 && s.Node().ID != n2.ID() {
			t.Errorf("%s moved to %s, want %s", s.User(), s.Node().ID, n2.ID())
		}
	}
}

// A drain asked for right after one was cancelled is a new drain. Before,
// it returned the cancelled one's channel while that drain's loop had not
// seen the cancel yet: the caller saw its drain end at once, and the node
// was not draining.
func TestDrainAfterCancelIsNew(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	n := c.Nodes[0]
	newPeer(t, n.Addr(), "stays") // the drains do not end empty
	first := n.Drain(time.Minute)
	n.SetDraining(false)
	second := n.Drain(time.Minute)
	<-first
	if first == second {
		t.Fatal("Drain right after a cancel returned the cancelled drain's channel")
	}
	select {
	case <-second:
		t.Errorf("the new drain ended with the cancelled one: %+v", n.DrainStatus())
	default:
	}
	if st := n.DrainStatus(); !st.Draining || st.Done || st.Reason != "" {
		t.Errorf("status %+v after the cancelled drain ended; want the new one draining, under way", st)
	}
}
