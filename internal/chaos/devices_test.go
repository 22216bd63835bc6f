package chaos

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/localcluster"
)

// Two devices of one user type into one room at once, on two nodes, and
// the phone's node dies (kill -9) while the phone's chunks are on their
// way. The phone fails over and resends what was not acknowledged, under
// its seqs, while the laptop has typed past them: the room takes a resend
// of a chunk stored before the kill for a resend, and stores one that
// died with the node under the user's next seq. At the end the room holds
// every character either device typed, once, with no gap (U+FFFD).
func TestTwoDevicesThroughAKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 3, Output: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	target := strings.Join(c.Addrs(), ",")
	const room = "devices"
	dial := func(user, node string) *client.Session {
		t.Helper()
		s, err := client.Dial(ctx, target, client.WithUser(user), client.WithPolicy(prefer(node)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		go func() {
			for range s.Events() {
			}
		}()
		jctx, jcancel := context.WithTimeout(ctx, settle)
		defer jcancel()
		if _, err := s.JoinWait(jctx, room); err != nil {
			t.Fatal(err)
		}
		return s
	}
	phone, laptop := dial("ann", c.Nodes[0].ID), dial("ann", c.Nodes[1].ID)
	if phone.Node().ID != c.Nodes[0].ID {
		t.Fatalf("the phone attached to %s, want %s", phone.Node().ID, c.Nodes[0].ID)
	}

	const n = 40
	phoneText, laptopText := strings.Repeat("abcdefghij", n/10), strings.Repeat("ABCDEFGHIJ", n/10)
	var wg sync.WaitGroup
	wg.Go(func() {
		// The phone sends as it types, without waiting for acks, so
		// that chunks are on their way when its node dies.
		for i, ch := range phoneText {
			if i == n/4 {
				if err := c.Kill(0); err != nil {
					t.Error(err)
					return
				}
			}
			if _, err := phone.SendText(room, string(ch)); err != nil {
				t.Errorf("phone typing %q: %v", ch, err)
				return
			}
		}
		fctx, fcancel := context.WithTimeout(ctx, settle)
		defer fcancel()
		if err := phone.Flush(fctx, room); err != nil {
			t.Errorf("phone's text never all acknowledged: %v", err)
		}
	})
	wg.Go(func() {
		for _, ch := range laptopText {
			sctx, scancel := context.WithTimeout(ctx, settle)
			_, err := laptop.SendTextWait(sctx, room, string(ch))
			scancel()
			if err != nil {
				t.Errorf("laptop typing %q: %v", ch, err)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	if phone.Node().ID == c.Nodes[0].ID {
		t.Errorf("the phone is still on %s, which was killed", c.Nodes[0].ID)
	}

	carol := dial("carol", c.Nodes[2].ID)
	jctx, jcancel := context.WithTimeout(ctx, settle)
	defer jcancel()
	st, err := carol.JoinWait(jctx, room)
	if err != nil {
		t.Fatal(err)
	}
	held := st.Live["ann"]
	if got, want := sorted(held), sorted(phoneText+laptopText); got != want {
		t.Errorf("ann's text in the room: %q; want each of the %d characters typed once, and no U+FFFD", held, len(want))
	}
}

// sorted is s with its characters sorted.
func sorted(s string) string {
	r := []rune(s)
	slices.Sort(r)
	return string(r)
}
