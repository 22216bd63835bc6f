package webui_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/wire"
)

// TestBrowserTextRefusedAfterRemovedIsResent: the node takes the page's
// session out of the room while a chunk is on its way (removed: its place
// lost while the node was cut off), so the node refuses that chunk with
// bad_request, not in the room. Here the page's session leaves the room
// on the node just before the chunk goes (a leave the test sends), and
// the test tells the page removed in place of the leave's answer: the
// node is then as after a removal, and its refusal of the chunk is its
// own. The page joins again, and as the Go client does (client/session.go,
// removedOn; client/removedresend_test.go) the chunk waits for that
// join's state and goes again under its seq: bob receives it once. Once
// the state is in, a bad_request is a refusal for good again. Before,
// the refusal dropped the chunk: the room never had it.
func TestBrowserTextRefusedAfterRemovedIsResent(t *testing.T) {
	t.Parallel()
	ann, bob, st := annAndBob(t, nil)
	base := st.State.Seqs["ann"]

	// What the page sends, the refusals and states it gets. leaveBefore:
	// the text before which the page's session leaves the room on the
	// node; sayRemoved: the page is told removed before the leave's answer
	// or the chunk's refusal, whichever comes first (the leave's own
	// answer, a presence leave, is not the page's to see).
	eval[bool](t, ann, `(() => {
  const s = window.switchboard.session, ws = s.ws, send = ws.send.bind(ws), onmessage = ws.onmessage;
  window.sentText = [];
  window.errors = [];
  window.joins = 0;
  window.states = 0;
  window.leaveBefore = "";
  window.sayRemoved = false;
  ws.send = (data) => {
    const m = JSON.parse(data);
    if (m.op === "text") {
      window.sentText.push([m.seq, m.t]);
      if (m.t === window.leaveBefore) {
        window.leaveBefore = "";
        send(JSON.stringify({ op: "leave", room: m.room }));
      }
    }
    if (m.op === "join") window.joins++;
    send(data);
  };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    const leave = m.op === "presence" && m.user === "ann" && m.event === "leave";
    if (window.sayRemoved && (leave || (m.op === "error" && m.seq))) {
      window.sayRemoved = false;
      onmessage({ data: JSON.stringify({ op: "error", code: "removed", room: "lobby", message: "room lobby is full (100 users): this session lost its place while its node was cut off and is no longer in the room" }) });
    }
    if (!leave) onmessage(ev);
  };
  s.addEventListener("error", (e) => window.errors.push(e.detail.code + (e.detail.seq ? " " + e.detail.seq : "")));
  s.addEventListener("room", () => { window.states++; });
  return true;
})()`)

	// The chunk goes as the node takes the session out of the room.
	eval[bool](t, ann, `(() => { window.leaveBefore = "x"; window.sayRemoved = true; return true; })()`)
	typeText(t, ann, "x")
	// Every join answered with a state (the page's own resync joins
	// among them) and nothing waiting for an acknowledgement.
	settled := `window.errors.includes("bad_request ` + fmt.Sprint(base+1) + `") && window.states === window.joins && window.switchboard.session.unacked("lobby").length === 0 && window.switchboard.session.rooms.get("lobby")?.synced === true`
	poll[bool](t, ann, "the refused chunk settled", settled)
	if got, want := eval[string](t, ann, `JSON.stringify(window.sentText)`), fmt.Sprintf(`[[%d,"x"],[%d,"x"]]`, base+1, base+1); got != want {
		t.Fatalf("the page sent %s, want %s: the chunk refused after removed goes again under its seq after the join's state\n%s", got, want, strings.Join(connLog(t, ann), "\n"))
	}
	if got, want := eval[string](t, ann, `window.errors.join(", ")`), fmt.Sprintf("removed, bad_request %d", base+1); got != want {
		t.Errorf("the page got the refusals %s, want %s", got, want)
	}

	// In the room again: the node refuses the next chunk with bad_request
	// (the session out of the room once more, unsaid), and that refusal
	// is for good: the chunk is dropped, and the page's resync puts its
	// session back in the room.
	eval[bool](t, ann, `(() => { window.leaveBefore = "y"; return true; })()`)
	typeText(t, ann, "y")
	settled = `window.errors.includes("bad_request ` + fmt.Sprint(base+2) + `") && window.states === window.joins && window.switchboard.session.unacked("lobby").length === 0`
	poll[bool](t, ann, "the chunk refused for good", settled)
	typeText(t, ann, "z")
	poll[bool](t, ann, `"z" acknowledged`, `window.switchboard.session.unacked("lobby").length === 0`)

	// Bob's account: "x" once, then "z" under the seq after the dropped
	// one. The page sent "y" once and "z" once.
	var got []string
	for {
		m := bob.next(t, "ann's chunks", func(m wire.Message) bool { return m.Op == wire.OpText && m.From == "ann" })
		got = append(got, fmt.Sprintf("%d %q", m.Seq, m.T))
		if m.T == "z" {
			break
		}
	}
	if want := []string{fmt.Sprintf(`%d "x"`, base+1), fmt.Sprintf(`%d "z"`, base+3)}; strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("bob got ann's chunks %v, want %v", got, want)
	}
	if got, want := eval[string](t, ann, `JSON.stringify(window.sentText.slice(2))`), fmt.Sprintf(`[[%d,"y"],[%d,"z"]]`, base+2, base+3); got != want {
		t.Errorf("after the resend the page sent %s, want %s", got, want)
	}
}
