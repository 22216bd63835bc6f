package webui_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
)

// TestBrowserRejoinRefusedForLimitIsAskedAgain: the node refuses the
// page's second chunk for its rate (two chunks a second, in bursts of one;
// the page sends as to a node that does not say its limits), and the
// page joins the room again after its pause. That re-join is refused with
// limit (the room's state does not fit one line: a refusal the test gives
// in the node's place, since a real node gives it only for a room of many
// members). The page is still in the room (docs/protocol.md, "Join"), so,
// as the Go client does (client/session.go, retryRoomLocked;
// client/rejoinlimit_test.go), it asks again after the same pause, and
// the state that then comes lets out the refused chunk and the one typed
// meanwhile, in order, each once. Before, the room stayed waiting for a
// state no join asked for: the text was queued for ever.
func TestBrowserRejoinRefusedForLimitIsAskedAgain(t *testing.T) {
	t.Parallel()
	ann, bob, st := annAndBob(t, func(i int, cfg *node.Config) {
		cfg.ChunkRate = 2
		cfg.ChunkBurst = 1
	})
	base := st.State.Seqs["ann"]

	// What the page sends and gets from now on, in order. The first join
	// after the rate refusal does not reach the node: the test answers it
	// with limit, as the node does to a re-join whose state does not fit.
	eval[bool](t, ann, `(() => {
  const s = window.switchboard.session, ws = s.ws, send = ws.send.bind(ws);
  s.ignoreLimits = true; // both chunks go at once: the second passes the node's rate
  window.transcript = [];
  let rated = false, refused = false;
  ws.send = (data) => {
    const m = JSON.parse(data);
    if (m.op === "text") window.transcript.push("text " + m.seq + " " + m.t);
    if (m.op === "join" && rated && !refused) {
      refused = true;
      window.transcript.push("join (refused by the test)");
      setTimeout(() => s.handle(ws, { op: "error", room: m.room, code: "limit", message: "room " + m.room + "'s state does not fit one line" }), 0);
      return;
    }
    if (m.op === "join") window.transcript.push("join");
    send(data);
  };
  s.addEventListener("error", (e) => {
    window.transcript.push("error " + e.detail.code + (e.detail.seq ? " " + e.detail.seq : ""));
    if (e.detail.code === "rate" && e.detail.seq) rated = true;
  });
  s.addEventListener("room", () => window.transcript.push("state"));
  return true;
})()`)

	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); for (const ch of "ab") { box.value += ch; box.dispatchEvent(new Event("input")); } return true; })()`)
	poll[bool](t, ann, "the re-join refused with limit", `window.transcript.includes("error limit")`)
	// Typed while the room waits for its state: it waits too.
	typeText(t, ann, "c")
	poll[bool](t, ann, "every chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)

	want := []string{
		fmt.Sprintf("text %d a", base+1),
		fmt.Sprintf("text %d b", base+2),
		fmt.Sprintf("error rate %d", base+2),
		"join (refused by the test)", // the retry's, after its pause
		"error limit",
		"join", // asked again after the same pause
		// Its state: the refused chunk goes again under its seq as the
		// page takes the state, before the page's room event.
		fmt.Sprintf("text %d b", base+2),
		"state",
		fmt.Sprintf("text %d c", base+3), // the next round (the page paces after a rate refusal)
	}
	if got := eval[[]string](t, ann, `window.transcript`); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the page did:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	// Bob receives each of ann's chunks once, in order.
	if got := receivedLine(t, bob, "ann", base, 3); got != "abc" {
		t.Errorf("bob received ann's text as %q, want %q", got, "abc")
	}
}
