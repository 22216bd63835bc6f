//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// One node cut off from a bus the others still reach: two nodes and a
// nats-server, each in a network namespace of its own, and n1's packets
// to the server dropped (a blackhole route in n1's namespace, as a link
// broken between those two hosts alone would). n1 still reaches its
// clients and they it. It steps aside: degraded, /readyz 503, SERVFAIL at
// its DNS responder, new attaches refused; then it tells its sessions to
// move, though its own directory, cut off, lists n2 as down. Its sessions
// attach to n2, which never stepped aside, and the text typed on n1
// while it was cut off, never acknowledged there, is stored once from
// n2. Healed, n1 is up again by itself and takes sessions (faults.md,
// partial loss of an external bus).
func TestNodeCutOffFromTheBus(t *testing.T) {
	ctx := context.Background()
	nw := newNet(t, 3) // n1, n2, the bus server
	bus := startNATSServerIn(t, nw, 2)
	var n1Log, n2Log nodetest.LockedBuffer
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 2, Net: nw, Bus: bus.url, DNS: true,
		OutputFor: func(i int) io.Writer {
			return io.MultiWriter([]*nodetest.LockedBuffer{&n1Log, &n2Log}[i], testLog(t))
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)

	sessions := dialSpread(ctx, t, c, 4) // u0 and u2 on n1, u1 and u3 on n2
	typist, reader := sessions[0], sessions[1]
	const room = "buscut"
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := typist.JoinWait(wctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := typist.SendTextWait(wctx, room, "acked before the cut; "); err != nil {
		t.Fatal(err)
	}

	busIP := nw.IP(2)
	cut := time.Now()
	if err := nw.CutFrom(ctx, 0, busIP); err != nil {
		t.Fatal(err)
	}
	healed := false
	defer func() {
		if !healed {
			_ = nw.HealFrom(ctx, 0, busIP)
		}
	}()
	// Typed on n1 after the cut: n1 cannot store it, so it stays unacked
	// in the client until the session is on a node that can.
	if _, err := typist.SendText(room, "typed while n1 was cut off; "); err != nil {
		t.Fatal(err)
	}

	// n1 steps aside and says so at every door; n2 stays up.
	nodetest.Eventually(t, settle, func() error { return steppedAside(ctx, c.Nodes[:1]) })
	t.Logf("n1 degraded %v after the cut", time.Since(cut).Round(time.Millisecond))
	if code, err := attachAt(wctx, c.Nodes[0].Addr, "late"); err != nil || code != wire.CodeDraining {
		t.Errorf("an attach at n1, cut off: code %q (%v), want %q", code, err, wire.CodeDraining)
	}
	if status, ips, err := digInNS(ctx, nil, -1, c.Nodes[0].DNS, c.Service()); err != nil || status != "SERVFAIL" {
		t.Errorf("n1's DNS responder, cut off: %s %v (%v), want SERVFAIL", status, ips, err)
	}

	// Nobody stranded: every session ends on n2.
	nodetest.Eventually(t, settle, func() error {
		for i, s := range sessions {
			if !s.Connected() || s.Node().ID != "n2" {
				return fmt.Errorf("session %d: connected %v on %s", i, s.Connected(), s.Node().ID)
			}
		}
		return nil
	})
	t.Logf("every session on n2 %v after the cut", time.Since(cut).Round(time.Millisecond))
	if code := readyz(c.Nodes[1]); code != http.StatusOK {
		t.Errorf("n2's /readyz: %d, want 200", code)
	}
	if st, err := c.Nodes[1].Status(ctx, "n2"); err != nil || st != directory.Up {
		t.Errorf("n2 calls itself %q (%v), want up", st, err)
	}
	// The text n1 never acknowledged, stored once from n2.
	if _, err := typist.SendTextWait(wctx, room, "and on n2"); err != nil {
		t.Fatal(err)
	}
	roomShows(ctx, t, reader, typist, room, "acked before the cut; typed while n1 was cut off; and on n2")
	// n2, the room's steward once n1 is down, removes the typist's
	// membership from n1 the grace after it loaded the room. It would
	// stay in the room for good otherwise: n2 sees one node of two, no
	// majority, and only its bus's word lets it act on n1's absence.
	nodetest.Eventually(t, settle, func() error {
		if !slices.ContainsFunc(strings.Split(n2Log.String(), "\n"), func(line string) bool {
			return strings.Contains(line, `msg="removing stale members from a room"`) && strings.Contains(line, "room="+room) && strings.Contains(line, "sessions=[n1/")
		}) {
			return errors.New("n2 has not removed the members n1 had in the room")
		}
		return nil
	})

	// Healed: n1 is up again by itself and takes a session.
	healAt := time.Now()
	if err := nw.HealFrom(ctx, 0, busIP); err != nil {
		t.Fatal(err)
	}
	healed = true
	if err := c.WaitConverged(ctx, settle); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if code := readyz(c.Nodes[0]); code != http.StatusOK {
			return fmt.Errorf("n1's /readyz: %d", code)
		}
		return nil
	})
	t.Logf("n1 up and ready %v after the heal", time.Since(healAt).Round(time.Millisecond))
	if code, err := attachAt(wctx, c.Nodes[0].Addr, "late"); err != nil || code != "" {
		t.Errorf("an attach at n1, healed: code %q (%v), want it taken", code, err)
	}
	// n2 never stepped aside ("stepping aside (degraded)" for a bus or
	// majority it cannot reach, "steps aside" for storage).
	if l := n2Log.String(); strings.Contains(l, "stepping aside") || strings.Contains(l, "steps aside") {
		t.Error("n2 stepped aside at some point")
	}
	// Each node's log says which lost its bus.
	if !strings.Contains(n1Log.String(), `msg="lost a connection to the bus; reconnecting"`) {
		t.Error("n1's log does not say it lost its bus")
	}
	if strings.Contains(n2Log.String(), `msg="lost a connection to the bus`) {
		t.Error("n2's log says it lost its bus, which it never did")
	}
}

// newNet makes a net of n namespaces for the test (localcluster.NewNet),
// removed at its end.
func newNet(t *testing.T, n int) *localcluster.Net {
	t.Helper()
	nw, err := localcluster.NewNet(context.Background(), n)
	if errors.Is(err, localcluster.ErrNoNetns) {
		t.Skipf("this test makes network namespaces, and cannot here: %v (CI runs it as root with iproute2)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nw.Close(); err != nil {
			t.Error(err)
		}
	})
	return nw
}

// One server of a three-server bus cut off from the other two, a
// partition of the bus itself, with n1 on it (given only its URL) and n2
// on the others. n1 still reaches its server and its clients, but that
// server's JetStream has no metadata leader (two of three servers are on
// the other side): n1's questions go unanswered, it sees only itself,
// and it steps aside and moves its sessions. n2 sees only itself too, yet
// stays up: its bus's JetStream answers it, and it takes every session.
// The text typed on n1 meanwhile is stored once; healed, n1 is up again
// by itself (faults.md, partial loss of an external bus).
func TestNodeOnABusServerCutOffFromTheBus(t *testing.T) {
	ctx := context.Background()
	nw := newNet(t, 5) // n1, n2, b1, b2, b3
	bus := startBusServersIn(t, nw, 2, busDirs(t))
	var n2Log nodetest.LockedBuffer
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 2, Net: nw, Bus: bus[0].url,
		OutputFor: func(i int) io.Writer {
			if i == 1 {
				return io.MultiWriter(&n2Log, testLog(t))
			}
			return testLog(t)
		},
		ArgsFor: func(i int) []string {
			if i == 0 {
				return []string{"--bus", bus[2].url}
			}
			return []string{"--bus", bus[0].url}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)

	sessions := dialSpread(ctx, t, c, 4) // u0 and u2 on n1, u1 and u3 on n2
	typist, reader := sessions[0], sessions[1]
	const room = "busisland"
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := typist.JoinWait(wctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := typist.SendTextWait(wctx, room, "acked before the cut; "); err != nil {
		t.Fatal(err)
	}

	// b3 (namespace 4) and b1, b2 (2 and 3) drop what they send each other.
	type link struct{ from, to int }
	var cuts []link
	for _, other := range []int{2, 3} {
		cuts = append(cuts, link{4, other}, link{other, 4})
	}
	heal := func() {
		for _, l := range cuts {
			if err := nw.HealFrom(ctx, l.from, nw.IP(l.to)); err != nil {
				t.Error(err)
			}
		}
		cuts = nil
	}
	defer heal()
	cut := time.Now()
	for _, l := range cuts {
		if err := nw.CutFrom(ctx, l.from, nw.IP(l.to)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := typist.SendText(room, "typed while b3 was cut off; "); err != nil {
		t.Fatal(err)
	}

	nodetest.Eventually(t, settle, func() error { return steppedAside(ctx, c.Nodes[:1]) })
	t.Logf("n1 degraded %v after the cut", time.Since(cut).Round(time.Millisecond))
	nodetest.Eventually(t, settle, func() error {
		for i, s := range sessions {
			if !s.Connected() || s.Node().ID != "n2" {
				return fmt.Errorf("session %d: connected %v on %s", i, s.Connected(), s.Node().ID)
			}
		}
		return nil
	})
	t.Logf("every session on n2 %v after the cut", time.Since(cut).Round(time.Millisecond))
	nodetest.Eventually(t, settle, func() error {
		if code := readyz(c.Nodes[1]); code != http.StatusOK {
			return fmt.Errorf("n2's /readyz: %d", code)
		}
		return nil
	})
	if _, err := typist.SendTextWait(wctx, room, "and on n2"); err != nil {
		t.Fatal(err)
	}
	roomShows(ctx, t, reader, typist, room, "acked before the cut; typed while b3 was cut off; and on n2")
	if !strings.Contains(n2Log.String(), "stays up") {
		t.Error(`n2's log does not say it "stays up" without a majority of its peers in sight`)
	}

	healAt := time.Now()
	heal()
	if err := c.WaitConverged(ctx, settle); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if code := readyz(c.Nodes[0]); code != http.StatusOK {
			return fmt.Errorf("n1's /readyz: %d", code)
		}
		return nil
	})
	t.Logf("n1 up and ready %v after the heal", time.Since(healAt).Round(time.Millisecond))
	if code, err := attachAt(wctx, c.Nodes[0].Addr, "late"); err != nil || code != "" {
		t.Errorf("an attach at n1, healed: code %q (%v), want it taken", code, err)
	}
}
