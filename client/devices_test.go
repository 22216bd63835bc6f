package client_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

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
// of each pair for a resend, acknowledged and dropped it.
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
				st := rtt.State{Live: m.State.Live, Seqs: m.State.Seqs}
				for _, l := range m.State.Lines {
					st.Lines = append(st.Lines, rtt.Line{From: l.From, Text: l.Text})
				}
				r, err := rtt.FromState(0, st)
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
		t.Fatalf("ann's text in the room: %q (%d characters), want each of the %d typed once", held, len(held), len(want))
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
