package webui_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// TestBrowserJoinRefused: a room that will not take the page's user (it
// is full: limit) must leave the compose box shut and say why where the
// user looks, not take keystrokes that can never be sent. The box opens
// with the room's state, not with the attach: before the state there is
// no room to type into.
func TestBrowserJoinRefused(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.MaxParticipants = 1 }})
	c.WaitRoomsReady(60 * time.Second)
	n := c.Nodes[0]
	bob := joinTCP(t, n.Addr(), "bob")
	bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })

	ann := newTab(t, newBrowser(t), "ann")
	do(t, ann, "opening ann's page", chromedp.Navigate(fmt.Sprintf("http://%s/?user=ann&room=lobby", n.HTTPAddr())))
	poll[bool](t, ann, "the join refused", `[...document.querySelectorAll("#log li")].some((li) => li.textContent.includes("error limit"))`)
	if !eval[bool](t, ann, `document.querySelector("#compose").disabled`) {
		t.Error("the compose box is open in a room the page could not join")
	}
	if why := eval[string](t, ann, `document.querySelector("#why").textContent`); !strings.Contains(why, "lobby") {
		t.Errorf("the page says %q under its status; want the refusal of room lobby", why)
	}
}
