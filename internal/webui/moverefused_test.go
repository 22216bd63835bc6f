package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// TestBrowserMoveRefusedForGood: the page's node drains, and the other
// node refuses the move's attach in a way no retry mends (bad_request:
// here a device name with a control character, set in the page once it
// is attached, as a stand-in for any refusal every node would give). As
// in the Go client (client/move.go, moveFrom), that ends the move, not
// the session: the page stays attached where it was and its text still
// goes out, and once that connection is lost it fails over as after any
// drop. Before, the refusal stopped the session as if it had been
// refused at its first attach: the page said it could not attach, shut
// its compose box and never attached again.
func TestBrowserMoveRefusedForGood(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	ann := page(t, newBrowser(t), c.Nodes[0].HTTPAddr(), "ann")
	from, to := c.Nodes[0], c.Nodes[1]
	if from.ID() != nodeOf(t, ann) {
		from, to = to, from
	}
	bob := joinTCP(t, to.Addr(), "bob")
	bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })

	eval[bool](t, ann, `(() => {
  const s = window.switchboard.session;
  window.device = s.device;
  s.device = "bad\u0001device";
  return true;
})()`)
	from.Drain(time.Minute)
	poll[bool](t, ann, "the move given up", `[...document.querySelectorAll("#log li")].some((li) => li.textContent.includes("no other node took the session"))`)
	lines := connLog(t, ann)
	if count(lines, "bad_request") == 0 {
		t.Fatalf("the move was not refused with bad_request:\n%s", strings.Join(lines, "\n"))
	}
	if st := eval[string](t, ann, `(() => {
  const s = window.switchboard.session, c = document.querySelector("#conn");
  return [c.dataset.state, c.dataset.node, "halted " + JSON.stringify(s.halted), "token refused " + s.tokenRefused, "compose disabled " + document.querySelector("#compose").disabled].join(", ");
})()`); st != "attached, "+from.ID()+`, halted "", token refused false, compose disabled false` {
		t.Errorf("after the move was refused the page is %s; want still attached to %s and usable\n%s", st, from.ID(), strings.Join(lines, "\n"))
	}

	// Ann's text still goes out, on the draining node's connection.
	typeText(t, ann, "still here")
	bob.next(t, `ann's "still here"`, func(m wire.Message) bool { return m.Op == wire.OpText && m.From == "ann" && m.T == "still here" })

	// The device is one the nodes take again, and the connection to the
	// draining node is lost: the page fails over to the other node.
	eval[bool](t, ann, `(() => { const s = window.switchboard.session; s.device = window.device; window.firstWS = s.ws; s.ws.close(); return true; })()`)
	poll[bool](t, ann, "ann's page on "+to.ID(), `(() => {
  const s = window.switchboard.session, c = document.querySelector("#conn");
  return s.ws !== window.firstWS && c.dataset.state === "attached" && c.dataset.node === "`+to.ID()+`" && s.rooms.get("lobby")?.synced === true;
})()`)
	typeText(t, ann, "!")
	bob.next(t, `ann's "!"`, func(m wire.Message) bool { return m.Op == wire.OpText && m.From == "ann" && m.T == "!" })
	poll[bool](t, ann, "every chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)
}
