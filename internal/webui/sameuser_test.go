package webui_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// send writes one message on a TCP member's connection.
func (m *tcpMember) send(t *testing.T, msg wire.Message) {
	t.Helper()
	b, err := wire.Encode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.conn.Write(b); err != nil {
		t.Fatalf("sending %s: %v", msg.Op, err)
	}
}

// next is the first message m receives that match accepts.
func (m *tcpMember) next(t *testing.T, what string, match func(wire.Message) bool) wire.Message {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case msg, ok := <-m.got:
			if !ok {
				t.Fatalf("the connection ended before %s", what)
			}
			if match(msg) {
				return msg
			}
		case <-deadline:
			t.Fatalf("no %s", what)
		}
	}
}

// TestBrowserSameUserElsewhere: the page's user types in the room from
// another session too (another device), above the page's next seq. The
// page must go on numbering above that chunk (docs/protocol.md, "The
// client's duties"); reusing its seq makes the room take the page's next
// chunk for a duplicate, acknowledge it and drop its text.
func TestBrowserSameUserElsewhere(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	n := c.Nodes[0]
	ann := page(t, newBrowser(t), n.HTTPAddr(), "ann")

	// Ann's other device: a TCP session of the same user in the room.
	other := joinTCP(t, n.Addr(), "ann")
	st := other.next(t, "the other session's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	seq := st.State.Seqs["ann"] + 1
	other.send(t, wire.Message{Op: wire.OpText, Room: "lobby", Seq: seq, T: "x"})
	other.next(t, "the ack of the other session's chunk", func(m wire.Message) bool { return m.Op == wire.OpAck && m.Seq == seq })
	poll[bool](t, ann, "the other session's chunk on the page", liveOf("ann")+` === "x"`)

	// The page types a character; the room must store it.
	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); box.value += "y"; box.dispatchEvent(new Event("input")); return true; })()`)
	poll[bool](t, ann, "the page's chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)

	// What the room stored: a fresh state.
	bob := joinTCP(t, n.Addr(), "bob")
	st = bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	if got := st.State.Live["ann"]; got != "xy" {
		t.Errorf("the room stored ann's line as %q, want %q (the page's chunk reused the other session's seq?)", got, "xy")
	}
	if got := eval[string](t, ann, liveOf("ann")); got != "xy" {
		t.Errorf("ann's page shows her line as %q, want %q", got, "xy")
	}
}

// TestBrowserSameUserWhileOffline: the page's user types while the page
// is disconnected, and from another session meanwhile, over the same
// seqs. The page's chunks never went out, so the room cannot hold them
// whatever its state's seqs say: after the reconnect they must go out
// above the other session's text, not be taken for acknowledged and
// dropped (docs/protocol.md, "The client's duties": renumber above it
// the chunks not sent yet).
func TestBrowserSameUserWhileOffline(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	n := c.Nodes[0]
	ann := page(t, newBrowser(t), n.HTTPAddr(), "ann")
	other := joinTCP(t, n.Addr(), "ann")
	st := other.next(t, "the other session's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	seq := st.State.Seqs["ann"] + 1

	// The page loses its connection and cannot dial until told.
	eval[bool](t, ann, `(() => {
  window.realWebSocket = WebSocket;
  window.WebSocket = class { static OPEN = 1; constructor() { throw new Error("offline (test)"); } };
  window.switchboard.session.ws.close();
  return true;
})()`)
	poll[bool](t, ann, "the page disconnected", `document.querySelector("#conn").dataset.state !== "attached"`)
	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); box.value += "y"; box.dispatchEvent(new Event("input")); return true; })()`)

	// Meanwhile ann types from her other device.
	other.send(t, wire.Message{Op: wire.OpText, Room: "lobby", Seq: seq, T: "x"})
	other.next(t, "the ack of the other session's chunk", func(m wire.Message) bool { return m.Op == wire.OpAck && m.Seq == seq })

	eval[bool](t, ann, `(() => { window.WebSocket = window.realWebSocket; return true; })()`)
	poll[bool](t, ann, "the page attached again", `document.querySelector("#conn").dataset.state === "attached"`)
	poll[bool](t, ann, "the page's chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)

	bob := joinTCP(t, n.Addr(), "bob")
	st = bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	if got := st.State.Live["ann"]; got != "xy" {
		t.Errorf("the room stored ann's line as %q, want %q (the chunk typed offline was dropped?)", got, "xy")
	}
	if got := eval[string](t, ann, liveOf("ann")); got != "xy" {
		t.Errorf("ann's page shows her line as %q, want %q", got, "xy")
	}
}

// TestBrowserSameSeqFromAnotherDevice: the page types a chunk, and the
// user's other device, which has not seen it, types under the same seq.
// The page names its device at attach, so the room tells the two apart:
// it stores the other device's chunk under the user's next seq, and the
// page shows both. Had the page named none, the room could not tell the
// second chunk from a resend of the page's, and would drop it.
func TestBrowserSameSeqFromAnotherDevice(t *testing.T) {
	t.Parallel()
	addr, ann, other, seq := annWithOtherDevice(t, "other")

	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); box.value += "y"; box.dispatchEvent(new Event("input")); return true; })()`)
	poll[bool](t, ann, "the page's chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)

	other.send(t, wire.Message{Op: wire.OpText, Room: "lobby", Seq: seq, T: "x"})
	other.next(t, "the ack of the other session's chunk", func(m wire.Message) bool { return m.Op == wire.OpAck && m.Seq == seq })
	poll[bool](t, ann, "both chunks on the page", liveOf("ann")+` === "yx"`)

	bob := joinTCP(t, addr, "bob")
	st := bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	if got := st.State.Live["ann"]; got != "yx" {
		t.Errorf("the room stored ann's line as %q, want %q (the other device's chunk taken for a resend?)", got, "yx")
	}
}

// TestBrowserUnaskedStateAcknowledgesNothing: a room state that comes on
// the connection the page's room is synced on (as when the room moved a
// chunk of the page's that another device had taken the seq of) is no
// ack: the page's chunk still on its way stays unacknowledged, and new
// text is numbered above the state (client/session.go, syncRoomLocked).
// The page's text is held back on its way out, so that it is in flight
// when the state comes.
func TestBrowserUnaskedStateAcknowledgesNothing(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	ann := page(t, newBrowser(t), c.Nodes[0].HTTPAddr(), "ann")
	// Text leaves the page but never reaches the node.
	eval[bool](t, ann, swallowText)
	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); box.value += "y"; box.dispatchEvent(new Event("input")); return true; })()`)
	seq := poll[float64](t, ann, "the page's chunk sent", `(() => { const u = window.switchboard.session.unacked("lobby"); return u.length === 1 && u[0].seq; })()`)

	// The state comes on the page's connection: the user's text is
	// stored up to two past the page's chunk.
	eval[bool](t, ann, fmt.Sprintf(`(() => {
  const s = window.switchboard.session;
  s.handle(s.ws, {op: "room", room: "lobby", state: {lines: [], live: {ann: "ab"}, seqs: {ann: %d}, users: ["ann"]}});
  return true;
})()`, int(seq)+2))
	if got := eval[float64](t, ann, `window.switchboard.session.unacked("lobby").length`); got != 1 {
		t.Fatalf("%v chunks unacknowledged after the state, want 1: the state was taken for an ack", got)
	}
	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); box.value += "z"; box.dispatchEvent(new Event("input")); return true; })()`)
	next := poll[float64](t, ann, "the page's next chunk", `(() => { const u = window.switchboard.session.unacked("lobby"); return u.length === 2 && u[1].seq; })()`)
	if int(next) != int(seq)+3 {
		t.Errorf("the page's next chunk has seq %v, want %v (above the state's)", next, int(seq)+3)
	}
}

// TestBrowserChunkLostWithItsNodeIsResent: a chunk of the page's went out
// and was never stored (here its connection swallows it, as a node that
// read it and died would), while the user's other device typed over its
// seq. After the reconnect the room's state shows that seq stored, by
// the other device; the page names its device, so it takes the state for
// no ack and resends the chunk under its seq, and the room, which knows
// the page never stored a chunk under it, stores it under the user's
// next seq (client/session.go, syncRoomLocked). Taken for acknowledged,
// as before, it was lost.
func TestBrowserChunkLostWithItsNodeIsResent(t *testing.T) {
	t.Parallel()
	addr, ann, other, seq := annWithOtherDevice(t, "phone")

	// The page's text leaves it but never reaches the node.
	eval[bool](t, ann, swallowText)
	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); box.value += "y"; box.dispatchEvent(new Event("input")); return true; })()`)
	if got := poll[float64](t, ann, "the page's chunk sent", `(() => { const u = window.switchboard.session.unacked("lobby"); return u.length === 1 && u[0].seq; })()`); uint64(got) != seq {
		t.Fatalf("the page sent seq %v, want %d", got, seq)
	}

	// Meanwhile the other device types over that seq.
	for i, ch := range []string{"x", "z"} {
		s := seq + uint64(i)
		other.send(t, wire.Message{Op: wire.OpText, Room: "lobby", Seq: s, T: ch})
		other.next(t, "the other device's ack", func(m wire.Message) bool { return m.Op == wire.OpAck && m.Seq == s })
	}

	// The page's connection ends; it attaches again and resends.
	eval[bool](t, ann, `(() => { window.switchboard.session.ws.close(); return true; })()`)
	poll[bool](t, ann, "the page's chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)

	bob := joinTCP(t, addr, "bob")
	st := bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	if got := st.State.Live["ann"]; got != "xzy" {
		t.Errorf("the room stored ann's line as %q, want %q (the page's chunk taken for acknowledged?)", got, "xzy")
	}
	poll[bool](t, ann, "ann's line on the page as the room holds it", liveOf("ann")+` === "xzy"`)
}

// swallowText makes the page's connection drop the text it sends, as a
// node that read it and died before storing it would: it leaves the page
// but never reaches the node.
const swallowText = `(() => {
  const ws = window.switchboard.session.ws;
  const send = ws.send.bind(ws);
  ws.send = (data) => { if (JSON.parse(data).op !== "text") send(data); };
  return true;
})()`

// annWithOtherDevice starts a one-node cluster, opens ann's page there and
// attaches ann's other device, a TCP session naming device, in the lobby.
// It returns the node's client address, the page, the other device and
// the seq that device types next.
func annWithOtherDevice(t *testing.T, device string) (string, context.Context, *tcpMember, uint64) {
	t.Helper()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	n := c.Nodes[0]
	ann := page(t, newBrowser(t), n.HTTPAddr(), "ann")
	other := joinTCPAs(t, n.Addr(), wire.Message{Op: wire.OpAttach, User: "ann", Device: device})
	st := other.next(t, "the other device's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	return n.Addr(), ann, other, st.State.Seqs["ann"] + 1
}

// TestBrowserOwnTextPastMaxSeq: text under the page's own user with a
// seq no chunk can carry (above 2^53-1, where a JavaScript number stops
// counting one by one) is not shown and does not move the page's
// numbering, as in the Go client. A node never sends one (it refuses such
// seqs), so the test hands it to the page's handler as if one had.
func TestBrowserOwnTextPastMaxSeq(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	ann := page(t, newBrowser(t), c.Nodes[0].HTTPAddr(), "ann")
	poll[bool](t, ann, "the room synced", `window.switchboard.session.rooms.get("lobby")?.synced === true`)
	got := eval[string](t, ann, `(() => {
  const s = window.switchboard.session;
  const r = s.rooms.get("lobby");
  const before = r.nextSeq;
  let shown = false;
  s.addEventListener("text", () => { shown = true; }, { once: true });
  s.handle(s.ws, { op: "text", room: "lobby", from: "ann", seq: 2 ** 60, t: "z" });
  return (shown ? "shown " : "") + (r.nextSeq === before ? "kept" : "moved to " + r.nextSeq);
})()`)
	if got != "kept" {
		t.Errorf("own text at seq 2^60: %s; want it not shown and the numbering kept", got)
	}
}

// TestBrowserCloseWhileAttaching: a session closed while an attach is
// under way does not take the attach when it is answered: the connection
// closes and no heartbeat runs. Before, the page kept the connection,
// attached, after close().
func TestBrowserCloseWhileAttaching(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	n := c.Nodes[0]
	ann := page(t, newBrowser(t), n.HTTPAddr(), "ann")
	poll[bool](t, ann, "the page attached", `document.querySelector("#conn").dataset.state === "attached"`)
	// The next connection closes the session as its attach is answered,
	// just before the page reads the answer.
	eval[bool](t, ann, `(() => {
  const Real = WebSocket;
  window.WebSocket = class extends Real {
    set onmessage(fn) {
      super.onmessage = (ev) => {
        if (String(ev.data).includes('"op":"attached"')) {
          window.closedAtAttach = true;
          window.switchboard.session.close();
        }
        fn(ev);
      };
    }
    get onmessage() { return super.onmessage; }
  };
  window.switchboard.session.ws.close();
  return true;
})()`)
	poll[bool](t, ann, "the page closed as its attach was answered", `window.closedAtAttach === true`)
	nodetest.Eventually(t, wait, func() error {
		if u := n.Users(); u != 0 {
			return fmt.Errorf("%s holds %d sessions after the page closed", n.ID(), u)
		}
		return nil
	})
	if got := eval[bool](t, ann, `window.switchboard.session.ws === null`); !got {
		t.Error("the closed session holds a connection")
	}
}
