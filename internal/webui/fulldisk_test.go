//go:build linux

package webui_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/pick"
)

// TestBrowserFullDisk fills the disk under the node a page is attached
// to while its user types. The node's JetStream stops, the node steps
// aside and sends its sessions away: the page ends on another node with
// its line intact and every chunk acknowledged, the chunks it typed
// while its node could not store them resent there, and a TCP member on
// another node receives every chunk once, in order (faults.md, the web
// page and a full disk).
func TestBrowserFullDisk(t *testing.T) {
	t.Parallel()
	disks := make([]string, 3)
	for i := range disks {
		disks[i] = filepath.Join(t.TempDir(), "data")
		nodetest.SmallDisk(t, disks[i], 64<<20)
	}
	c := nodetest.Start(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.DataDir = disks[i] }})
	c.WaitRoomsReady(60 * time.Second)
	browser := newBrowser(t)
	ann := page(t, browser, c.Nodes[0].HTTPAddr(), "ann")
	poll[bool](t, ann, "the room synced", `window.switchboard.session.rooms.get("lobby")?.synced === true`)
	full := c.Nodes[index(t, nodeOf(t, ann))]
	other := c.Nodes[(index(t, full.ID())+1)%3]
	bob := joinTCP(t, other.Addr(), "bob")
	// The filler's chunks reach every copy of the room bulk's stream,
	// full's among them.
	onOther := pick.PolicyFunc(func(nodes []directory.Node, _ pick.Request) (pick.Result, error) {
		for _, n := range nodes {
			if n.ID == other.ID() && n.Available() {
				return pick.Result{Node: n, Reason: "pinned"}, nil
			}
		}
		return pick.Result{}, pick.ErrNoNode
	})
	filler, err := client.Dial(t.Context(), other.Addr(), client.WithUser("filler"), client.WithPolicy(onOther))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	if _, err := filler.JoinWait(t.Context(), "bulk"); err != nil {
		t.Fatal(err)
	}

	const before, during = "typed before the disk filled, ", "and while it was full: each character once"
	typeSlowly(t, ann, before, 10*time.Millisecond)
	poll[bool](t, ann, "the first part typed and acknowledged", `window.typed && window.switchboard.session.unacked("lobby").length === 0`)
	nodetest.FillDisk(t, filepath.Join(disks[index(t, full.ID())], "filler"))
	typeSlowly(t, ann, during, 50*time.Millisecond)
	nodetest.FillUntil(t, wait, disks[index(t, full.ID()):index(t, full.ID())+1], filler, func() error {
		if st := full.Status(); st != directory.Degraded {
			return fmt.Errorf("%s is %s, want degraded", full.ID(), st)
		}
		return nil
	})
	if why := full.StatusReason(); !strings.Contains(why, "cannot store") {
		t.Errorf("%s says it stepped aside because %q, want that it cannot store", full.ID(), why)
	}

	poll[bool](t, ann, "ann's page on another node", `(() => { const c = document.querySelector("#conn"); return c.dataset.state === "attached" && c.dataset.node !== "`+full.ID()+`"; })()`)
	poll[bool](t, ann, "the whole line typed", `window.typed`)
	poll[bool](t, ann, "every chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)
	t.Logf("ann's page:\n%s", eval[string](t, ann, `[...document.querySelectorAll("#log li")].map((li) => li.textContent).join("\n")`))
	if got := eval[string](t, ann, liveOf("ann")); got != before+during {
		t.Errorf("ann's own line on her page is %q, want %q", got, before+during)
	}
	if got := eval[int](t, ann, `window.switchboard.session.moves || 0`); got != 1 {
		t.Errorf("ann's session moved %d times, want 1 (asked to move, not failed over)", got)
	}
	nodetest.Eventually(t, time.Minute, func() error { // the old connection retired (10 s), or closed 30 s after the ask
		if k := full.Users(); k != 0 {
			return fmt.Errorf("%s still has %d sessions", full.ID(), k)
		}
		return nil
	})
	bob.readsWholeLine(t, ann, before+during)
}
