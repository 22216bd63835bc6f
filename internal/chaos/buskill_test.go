//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// One server of a three-server bus is killed (kill -9) and started again,
// as an operator's restart or a crash of one NATS host would: the node
// that knew only that server finds the others by the servers' own
// gossip (and says so in its log), the typist on it is not moved, no
// session drops, no node steps aside, and every text typed before, while
// it is down and after its return is stored once (faults.md, partial loss
// of an external bus).
func TestBusServerKilledChangesNothing(t *testing.T) {
	ctx := context.Background()
	bus := startBusServers(t, busDirs(t))
	const room = "buskill"
	c, logs, typist, reader := twoNodesOnBus(ctx, t, bus, room) // n1 knows b3 alone

	bus[2].kill()
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	// Stored once the bus's JetStream has a leader for the room's
	// stream again (b3 may have led it).
	if _, err := typist.SendTextWait(wctx, room, "typed while b3 was down; "); err != nil {
		t.Fatal(err)
	}
	// Three more of each node's questions to its bus (every 2 s) after
	// that: a node that could not reach its bus would have stepped aside
	// 3 s into it.
	awaitBusChecks(t, c, busChecksOf(t, c), 3)
	bus[2].start()
	if _, err := typist.SendTextWait(wctx, room, "and after its return"); err != nil {
		t.Fatal(err)
	}

	// n1's log says what happened: its connections lost b3 and found
	// another server.
	for _, want := range [][]string{
		{`msg="lost a connection to the bus; reconnecting"`, "server=b3"},
		{`msg="reconnected to the bus"`, "lost=b3"},
	} {
		if !slices.ContainsFunc(strings.Split(logs[0].String(), "\n"), func(line string) bool {
			return strings.Contains(line, want[0]) && strings.Contains(line, want[1])
		}) {
			t.Errorf("n1's log has no line saying %s with %s", want[0], want[1])
		}
	}
	for i, n := range c.Nodes {
		if code := readyz(n); code != http.StatusOK {
			t.Errorf("%s's /readyz: %d, want 200", n.ID, code)
		}
		// "stepping aside (degraded)" for a bus or majority it cannot
		// reach, "steps aside" for storage.
		if l := logs[i].String(); strings.Contains(l, "stepping aside") || strings.Contains(l, "steps aside") {
			t.Errorf("%s stepped aside at some point", n.ID)
		}
	}
	for _, s := range []*client.Session{typist, reader} {
		if s.Attaches() != 1 {
			t.Errorf("a session attached %d times, want once: it dropped", s.Attaches())
		}
	}
	if typist.Node().ID != c.Nodes[0].ID {
		t.Errorf("the typist moved to %s", typist.Node().ID)
	}
	roomShows(ctx, t, reader, typist, room, "acked before; typed while b3 was down; and after its return")
}

// One server of a three-server bus paused (SIGSTOP): it keeps every
// connection open and answers nothing, as a hung process or a host cut
// off without a reset would. The node that knew only that server leaves
// it within seconds (its connections' pings go unanswered) for one the
// servers' gossip named, and is up again with the text typed meanwhile
// stored once. With nats.go's default pings (every 2 minutes) it stayed
// on the paused server for minutes, out of service.
func TestBusServerPausedIsLeft(t *testing.T) {
	ctx := context.Background()
	bus := startBusServers(t, busDirs(t))
	const room = "buspause"
	c, logs, typist, reader := twoNodesOnBus(ctx, t, bus, room) // n1 knows b3 alone

	if err := bus[2].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	t.Cleanup(func() { _ = bus[2].cmd.Process.Signal(syscall.SIGCONT) }) // before its kill
	if _, err := typist.SendText(room, "typed while b3 was paused; "); err != nil {
		t.Fatal(err)
	}
	// Within a minute: nats.go's default pings would take four to six.
	nodetest.Eventually(t, time.Minute, func() error {
		if !slices.ContainsFunc(strings.Split(logs[0].String(), "\n"), func(line string) bool {
			return strings.Contains(line, `msg="reconnected to the bus"`) && strings.Contains(line, "lost=b3")
		}) {
			return errors.New("n1 has not left b3")
		}
		return nil
	})
	t.Logf("n1 left the paused b3 after %v", time.Since(paused).Round(time.Millisecond))
	nodetest.Eventually(t, settle, func() error {
		if code := readyz(c.Nodes[0]); code != http.StatusOK {
			return fmt.Errorf("n1's /readyz: %d", code)
		}
		return nil
	})
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := typist.SendTextWait(wctx, room, "and after"); err != nil {
		t.Fatal(err)
	}
	roomShows(ctx, t, reader, typist, room, "acked before; typed while b3 was paused; and after")
}
