package webui_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/wire"
)

// TestBrowserPartition cuts the node a page is attached to off the
// network (three node processes, each in its own network namespace; the
// browser and bob on the host) while its user types. To the page the
// node goes silent, as a paused one does, while the node itself goes on
// in a minority, stepping aside; it leads the room's stream. The page
// fails over to the majority and resends what was typed into the cut.
// bob, a TCP member on another node, gets each chunk once, in order,
// then and after the heal, when the cut-off node comes back with
// whatever it held of the page's session; and he sees no leave or join
// of ann's, though her join elsewhere waited for the majority's
// election (room.Room.StoreLeader).
func TestBrowserPartition(t *testing.T) {
	t.Parallel()
	nw, err := localcluster.NewNet(context.Background(), 3)
	if err != nil {
		t.Fatal(err) // CI runs as root with iproute2
	}
	t.Cleanup(func() {
		if err := nw.Close(); err != nil {
			t.Error(err)
		}
	})
	c, ctx := processClusterWith(t, 3*time.Minute, localcluster.Config{Nodes: 3, Net: nw})
	ann := page(t, newBrowser(t), c.Nodes[0].HTTP, "ann")
	annNode := nodeOf(t, ann)
	cut := index(t, annNode)
	other := c.Nodes[(cut+1)%3]
	bob := joinTCP(t, other.Addr, "bob")
	bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })

	const before, during = "typed before the cut; ", "and into it"
	typeSlowly(t, ann, before, 20*time.Millisecond)
	poll[bool](t, ann, "the first part typed", `window.typed`)
	poll[bool](t, ann, "the first part acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)

	// The room's stream led from the node about to be cut off, the hard
	// case: the majority must elect a leader of its own (nats-server's
	// 4-9 s) before it stores the page's join and resent text.
	if err := other.MoveRoomLeader(ctx, "lobby", annNode); err != nil {
		t.Fatal(err)
	}
	if err := nw.Cut(ctx, cut); err != nil {
		t.Fatal(err)
	}
	healed := false
	t.Cleanup(func() {
		if !healed {
			_ = nw.Heal(context.Background(), cut)
		}
	})
	typeSlowly(t, ann, during, 20*time.Millisecond)
	poll[bool](t, ann, "ann's page off the cut-off node", `(() => { const c = document.querySelector("#conn"); return c.dataset.state === "attached" && c.dataset.node !== "`+annNode+`"; })()`)
	poll[bool](t, ann, "the second part typed", `window.typed`)
	poll[bool](t, ann, "every chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)
	if got := eval[string](t, ann, liveOf("ann")); got != before+during {
		t.Errorf("ann's line on her page is %q, want %q", got, before+during)
	}
	landed := nodeOf(t, ann)

	// Heal, and let the cut-off node come back up in the majority's
	// directory: what it kept of ann's old session must not reach bob.
	if err := nw.Heal(ctx, cut); err != nil {
		t.Fatal(err)
	}
	healed = true
	if err := localcluster.Await(ctx, wait, func(ctx context.Context) error {
		st, err := other.Status(ctx, annNode)
		if err != nil {
			return err
		}
		if st != directory.Up {
			return fmt.Errorf("%s says %s is %s", other.ID, annNode, st)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("ann's page:\n%s", eval[string](t, ann, `[...document.querySelectorAll("#log li")].map((li) => li.textContent).join("\n")`))
	bob.readsWholeLine(t, ann, before+during)
	if now := nodeOf(t, ann); now != landed {
		t.Errorf("ann's page went from %s to %s after the heal, want it to stay", landed, now)
	}
}
