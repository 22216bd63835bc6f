//go:build linux

package chaos

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipcall"
)

// A full disk under a node with a SIP call on it: the call is taken by
// n1, whose data is on a small file system that fills up. n1 steps aside
// and sends its sessions away, the call's bridged session among them:
// it attaches to another node, make-before-break, and the call goes on,
// not ended, with the text typed before and after in the room once, as
// bob on n2 shows it, and no leave of the caller shown to him. A
// new call to n1 is redirected (302) to a node that is up and answered
// there (faults.md, the SIP front).
func TestSIPCallRidesOutAFullDisk(t *testing.T) {
	ctx := context.Background()
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	port, err := localcluster.FreePort(ips, 5)
	if err != nil {
		t.Fatal(err)
	}
	sipPort := port + 4 // every node's SIP front on one port, as redirects need
	data := t.TempDir()
	var logs nodetest.LockedBuffer
	disk := filepath.Join(data, "n1")
	nodetest.SmallDisk(t, disk, 64<<20)
	c, err := localcluster.Start(ctx, localcluster.Config{
		Binary: binary, Nodes: 3, DataDir: data, Port: port, Output: io.MultiWriter(&logs, testLog(t)),
		ArgsFor: func(i int) []string { return []string{"--sip", fmt.Sprintf("%s:%d", ips[i], sipPort)} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	n1, n2 := c.Nodes[0], c.Nodes[1]

	bob, err := client.Dial(ctx, n2.Addr, client.WithUser("bob"), client.WithPolicy(prefer(n2.ID)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	const ann = "sip:ann@127.0.0.1"
	heard := heardFrom(bob, "lobby", ann)
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := bob.JoinWait(wctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	filler, err := client.Dial(ctx, c.Nodes[2].Addr, client.WithUser("filler"), client.WithPolicy(prefer(c.Nodes[2].ID)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	if _, err := filler.JoinWait(wctx, "bulk"); err != nil { // where fillUntilStopped writes
		t.Fatal(err)
	}

	// sbnode names n1: the call is taken there, not redirected.
	call, err := sipcall.Dial(wctx, fmt.Sprintf("sip:lobby@%s:%d;sbnode=%s", ips[0], sipPort, n1.ID),
		sipcall.Config{User: "ann", KeepAlive: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	call.Send("before ")
	heard.await(t, "before ")
	if v, err := gauge(n1, "switchboard_users"); err != nil || v != "1" {
		t.Fatalf("n1 has %q sessions (%v), want 1: the call's", v, err)
	}

	fillUntilStopped(t, filler, []string{disk}, []*localcluster.Node{n1})
	nodetest.Eventually(t, settle, func() error { return steppedAside(ctx, c.Nodes[:1]) })
	// n1's sessions are sent away at once, the bridge's with them: once
	// n1 has none, the call's session is on another node.
	nodetest.Eventually(t, settle, func() error {
		if v, err := gauge(n1, "switchboard_users"); err != nil || v != "0" {
			return fmt.Errorf("n1 has %q sessions (%v), want 0", v, err)
		}
		return nil
	})
	call.Send("after")
	heard.await(t, "before after")
	select {
	case <-call.Ended():
		t.Fatalf("the call ended: %s (%v)", call.Reason(), call.Err())
	default:
	}

	// A new call to n1 is sent to a node that can store.
	again, err := sipcall.Dial(wctx, fmt.Sprintf("sip:lobby@%s:%d", ips[0], sipPort), sipcall.Config{User: "cy"})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if a := again.Answer.Addr.Addr().String(); a == ips[0] {
		t.Errorf("a new call to n1, its disk full, was answered by n1 (%s)", a)
	}
	// Stored once: bob was shown "after" as it was typed, and the room
	// stores it a moment later (a join may come between).
	nodetest.Eventually(t, settle, func() error {
		state, err := bob.JoinWait(wctx, "lobby")
		if err != nil {
			return err
		}
		if got, want := state.Live[ann], "before after"; got != want {
			return fmt.Errorf("the room shows %q from ann, want %q: nothing lost, nothing twice", got, want)
		}
		return nil
	})
	if heard.userLeft() {
		t.Error("bob saw ann leave: the call's move should show no presence change")
	}
	if !slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(line string) bool {
		return strings.Contains(line, `msg="asking sessions to move:`) && strings.Contains(line, "node=n1")
	}) {
		t.Error("n1's log does not say it asked its sessions to move")
	}
}

// heard gathers what one user's chunks show in a member's room: the
// text as it comes, the whole again at each of the room's states, and
// whether the user left it.
type heard struct {
	mu   sync.Mutex
	got  strings.Builder
	left bool
}

// heardFrom follows s's events in room for the text from user.
func heardFrom(s *client.Session, room, user string) *heard {
	h := &heard{}
	go func() {
		for e := range s.Events() {
			re, ok := e.Room()
			if !ok || re.Room != room {
				continue
			}
			h.mu.Lock()
			switch {
			case re.Kind == client.TextEvent && re.From == user:
				h.got.WriteString(re.Text)
			case re.Kind == client.StateEvent:
				h.got.Reset()
				h.got.WriteString(re.State.Live[user])
			case re.Kind == client.PresenceEvent && re.User == user && !re.Joined:
				h.left = true
			}
			h.mu.Unlock()
		}
	}()
	return h
}

// await waits until the user's text shows want, and fails the test if it
// does not within settle.
func (h *heard) await(t *testing.T, want string) {
	t.Helper()
	nodetest.Eventually(t, settle, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !strings.Contains(h.got.String(), want) {
			return fmt.Errorf("shown %q, not %q", h.got.String(), want)
		}
		return nil
	})
}

// userLeft reports whether the user left the room.
func (h *heard) userLeft() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.left
}
