package webui_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// TestBrowserHeldChunkIsNumberedAboveAnotherDevicesText: the page numbers
// a chunk as it is typed, and holds it while the node's limits do not
// allow it yet (here a chunk every five seconds after the first); the
// user's other session stores a chunk under that seq meanwhile. The page
// must take that delivery for the other session's, not for an echo of
// its own (it never sent that seq), and send the held chunk above it, as
// the Go client does (client/session.go, ownText and continueAboveLocked;
// client/state_test.go, TestHeldChunkIsNumberedAboveAnotherDevicesText).
// Before, the page dropped the delivery as an echo (it was below the
// page's next seq) and sent its chunk under the other session's seq:
// without a device the room took it for a duplicate, acknowledged it and
// never stored it; with one the room stored it under the next seq and had
// to send the page its state.
func TestBrowserHeldChunkIsNumberedAboveAnotherDevicesText(t *testing.T) {
	t.Parallel()
	// The page keeps a bucket of one chunk (an eighth of the burst, at
	// least one, kept in hand), refilled at 0.196 chunks a second: its
	// second chunk waits about five seconds in the page. The cases wait
	// for it side by side, on one node, each with users of its own.
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.ChunkRate = 0.2
		cfg.ChunkBurst = 2
	}})
	c.WaitRoomsReady(60 * time.Second)
	for i, tc := range []struct {
		name       string
		pageDevice bool   // the page names its device (as it does when served)
		other      string // the other session's device, or none
	}{
		{"page with a device, phone with one", true, "phone"},
		{"page with a device, other session without", true, ""},
		{"page without a device", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testHeldChunkAboveAnotherDevice(t, c.Nodes[0], fmt.Sprint(i+1), tc.pageDevice, tc.other)
		})
	}
}

// testHeldChunkAboveAnotherDevice runs one case on n, as users ann, bob
// and cat followed by suffix.
func testHeldChunkAboveAnotherDevice(t *testing.T, n *node.Node, suffix string, pageDevice bool, otherDevice string) {
	annID, bobID, catID := "ann"+suffix, "bob"+suffix, "cat"+suffix
	ann := page(t, newBrowser(t), n.HTTPAddr(), annID)
	if !pageDevice {
		// A session that names no device (the Session option device ""):
		// the page attaches again without one.
		eval[bool](t, ann, `(() => {
  const s = window.switchboard.session;
  s.device = "";
  s.rooms.get("lobby").byDevice = false;
  window.firstWS = s.ws;
  s.ws.close();
  return true;
})()`)
		poll[bool](t, ann, "the page attached again without a device", `(() => {
  const s = window.switchboard.session, r = s.rooms.get("lobby");
  return s.ws !== null && s.ws !== window.firstWS && r.synced === true;
})()`)
	}
	other := joinTCPAs(t, n.Addr(), wire.Message{Op: wire.OpAttach, User: annID, Device: otherDevice})
	st := other.next(t, "the other session's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	base := st.State.Seqs[annID]
	bob := joinTCP(t, n.Addr(), bobID)
	bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })

	// What the page sends (its text, and its joins), what its session
	// delivers of ann's text, and the states it gets from now on.
	eval[bool](t, ann, `(() => {
  const s = window.switchboard.session;
  window.sentText = [];
  window.joins = 0;
  window.annText = [];
  window.states = 0;
  const ws = s.ws, send = ws.send.bind(ws);
  ws.send = (data) => {
    const m = JSON.parse(data);
    if (m.op === "text") window.sentText.push([m.seq, m.t]);
    if (m.op === "join") window.joins++;
    send(data);
  };
  s.addEventListener("text", (e) => { if (e.detail.from === "`+annID+`") window.annText.push([e.detail.seq, e.detail.t]); });
  s.addEventListener("room", () => { window.states++; });
  return true;
})()`)

	// The page types "a", which goes out, and "b", which waits for the
	// node's limits under the next seq.
	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); for (const ch of "ab") { box.value += ch; box.dispatchEvent(new Event("input")); } return true; })()`)
	held := poll[float64](t, ann, "the page's second chunk held for the node's limits", `(() => {
  const r = window.switchboard.session.rooms.get("lobby");
  return r.unacked.length === 1 && r.pushed === 0 && r.pump !== null && window.sentText.length === 1 && r.unacked[0].seq;
})()`)
	if uint64(held) != base+2 {
		t.Fatalf("the held chunk has seq %v, want %d", held, base+2)
	}

	// Meanwhile ann's other session stores a chunk under that seq.
	other.send(t, wire.Message{Op: wire.OpText, Room: "lobby", Seq: base + 2, T: "X"})
	other.next(t, "the ack of the other session's chunk", func(m wire.Message) bool { return m.Op == wire.OpAck && m.Seq == base+2 })
	poll[bool](t, ann, "the page's chunks acknowledged", `window.switchboard.session.unacked("lobby").length === 0 && window.sentText.length >= 2`)

	// Bob receives ann's text each chunk once, in order; the room stored
	// all of it.
	if got := receivedLine(t, bob, annID, base, 3); got != "aXb" {
		t.Errorf("bob received ann's text as %q, want %q", got, "aXb")
	}
	cat := joinTCP(t, n.Addr(), catID)
	st = cat.next(t, "cat's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	if got := st.State.Live[annID]; got != "aXb" {
		t.Errorf("the room stored ann's line as %q, want %q (the page's held chunk taken for a duplicate?)", got, "aXb")
	}

	// The page sent each chunk once, the held one above the other
	// session's; its session delivered the other session's chunk (not
	// taken for an echo), and the room had no chunk of the page's to move:
	// the one state the page gets answers the join it sends, once its
	// text is acknowledged, to show its own line as the room has it (it
	// showed "b" under the seq "X" took).
	if got, want := eval[string](t, ann, `JSON.stringify(window.sentText)`), fmt.Sprintf(`[[%d,"a"],[%d,"b"]]`, base+1, base+3); got != want {
		t.Errorf("the page sent %s, want %s", got, want)
	}
	if got, want := eval[string](t, ann, `JSON.stringify(window.annText)`), fmt.Sprintf(`[[%d,"X"]]`, base+2); got != want {
		t.Errorf("the page's session delivered %s of ann's text, want %s (the other session's chunk dropped as an echo?)", got, want)
	}
	if got := poll[string](t, ann, "the page's join for the room's state, and the state", `window.joins >= 1 && window.states >= 1 && JSON.stringify([window.joins, window.states])`); got != "[1,1]" {
		t.Errorf("the page's [joins sent, room states got]: %s, want one of each", got)
	}
	if got := eval[string](t, ann, liveOf(annID)); got != "aXb" {
		t.Errorf("ann's own line on her page after the state: %q, want %q", got, "aXb")
	}
	// The page's next chunk goes on above.
	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); box.value += "c"; box.dispatchEvent(new Event("input")); return true; })()`)
	if got := poll[float64](t, ann, "the page's next chunk", `window.sentText.length === 3 && window.sentText[2][0]`); uint64(got) != base+4 {
		t.Errorf("the page's next chunk went out under %v, want %d", got, base+4)
	}
	if got := poll[string](t, ann, "ann's own line with c", `(() => { const l = `+liveOf(annID)+`; return (l || "").endsWith("c") && l; })()`); got != "aXbc" {
		t.Errorf("ann's own line on her page: %q, want %q", got, "aXbc")
	}
}
