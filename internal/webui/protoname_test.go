package webui_test

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// TestBrowserProtoUserTypes: a user named __proto__ types a line and
// starts another, on the real page against a real node; ann, another
// member, sees both, and so does the typist's own page, in what each
// shows and in its room model's copy of the state (rtt.js, Room.state).
// Before, that copy was a plain object keyed by sender:
// live["__proto__"] = text set nothing (a string is no prototype), and
// the sender's live line and seq were lost from it.
func TestBrowserProtoUserTypes(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	n := c.Nodes[0]
	browser := sharedBrowser(t)
	ann := page(t, browser, n.HTTPAddr(), "ann")
	proto := page(t, browser, n.HTTPAddr(), "__proto__")

	// A line, then the start of the next: one chunk each, as typed.
	eval[bool](t, proto, `(() => {
  const box = document.querySelector("#compose");
  box.value = "hi";
  box.dispatchEvent(new Event("input"));
  box.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
  box.value = "yo";
  box.dispatchEvent(new Event("input"));
  return true;
})()`)
	poll[bool](t, proto, "the typist's chunks acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)

	// What each page holds of __proto__'s text: its completed lines, its
	// live line as shown, and the room model's state copy.
	const seen = `(() => {
  const room = window.switchboard.room;
  const st = room.state();
  const own = (o) => Object.hasOwn(o, "__proto__") ? JSON.stringify(o["__proto__"]) : "none";
  const lines = [...document.querySelectorAll("#history li")]
    .filter((li) => li.querySelector(".who").textContent === "__proto__")
    .map((li) => li.querySelector(".text").textContent);
  const live = (document.querySelector('#live li[data-live="__proto__"] .text') || {}).textContent;
  return "lines " + JSON.stringify(lines) + "; shown " + JSON.stringify(live) + "; model " + JSON.stringify(room.live("__proto__")) +
    "; state live " + own(st.live) + ", seq " + own(st.seqs) + ", lines " + JSON.stringify(st.lines.filter((l) => l.from === "__proto__").map((l) => l.text));
})()`
	poll[bool](t, ann, "__proto__'s line on ann's page", liveOf("__proto__")+` === "yo"`)
	want := `lines ["hi"]; shown "yo"; model "yo"; state live "yo", seq 3, lines ["hi"]`
	if got := eval[string](t, ann, seen); got != want {
		t.Errorf("ann's page holds of __proto__'s text:\n%s\nwant:\n%s", got, want)
	}
	if got := eval[string](t, proto, seen); got != want {
		t.Errorf("__proto__'s own page holds of its text:\n%s\nwant:\n%s", got, want)
	}
}
