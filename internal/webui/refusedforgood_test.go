package webui_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/wire"
)

// TestBrowserChunkRefusedForGood: the node refuses the page's last chunk
// in a way no resend mends (limit: longer than the node's MaxChunk of 16
// bytes; the page cuts its text as for a node that does not say its
// limits). As the Go client does (client/session.go, refuseLocked), the
// page must drop the chunk: nothing waits for an acknowledgement, the
// page says so, and the chunk is not sent again after a reconnect; its
// seq stays used, so the next chunk goes out under the one after it.
// Before, the chunk stayed in the queue for ever: the page said a chunk
// waited for an acknowledgement, sent it again after every reconnect, and
// a resync waiting for an empty queue never came.
func TestBrowserChunkRefusedForGood(t *testing.T) {
	t.Parallel()
	ann, bob, _ := annAndBob(t, func(i int, cfg *node.Config) { cfg.MaxChunk = 16 })

	// The page cuts as for a node older than limits (DEFAULT_MAX_CHUNK),
	// and notes each refusal of a chunk.
	eval[bool](t, ann, `(() => {
  const s = window.switchboard.session;
  s.maxChunk = () => 4096;
  window.refusals = [];
  s.addEventListener("error", (e) => { if (e.detail.seq) window.refusals.push(e.detail); });
  return true;
})()`)
	typeText(t, ann, "hi")
	poll[bool](t, ann, `"hi" acknowledged`, `window.switchboard.session.unacked("lobby").length === 0`)
	typeText(t, ann, " and a line longer than sixteen bytes")
	poll[bool](t, ann, "the long chunk refused", `window.refusals.length === 1`)
	if code := eval[string](t, ann, `window.refusals[0].code`); code != wire.CodeLimit {
		t.Fatalf("the long chunk was refused with %q, want %q", code, wire.CodeLimit)
	}
	refused := eval[int](t, ann, `window.refusals[0].seq`)
	poll[bool](t, ann, "nothing waiting for an acknowledgement", `window.switchboard.session.unacked("lobby").length === 0`)
	poll[bool](t, ann, "the page saying nothing waits", `document.querySelector("#pending").textContent === ""`)
	// The page showed the refused text at once; the room never stored
	// it, and the page shows the room's line once it has its state.
	if got := poll[string](t, ann, "ann's own line without the refused text", `(() => { const l = `+liveOf("ann")+`; return l === "hi" && l; })()`); got != "hi" {
		t.Errorf("ann's own line on her page: %q, want %q", got, "hi")
	}

	// A reconnect: the refused chunk must not go out again. A resend
	// would go out on the new connection before the next chunk, and be
	// refused before that chunk is acknowledged.
	eval[bool](t, ann, `(() => { const s = window.switchboard.session; window.firstWS = s.ws; s.ws.close(); return true; })()`)
	poll[bool](t, ann, "the page attached again and in the room", `(() => {
  const s = window.switchboard.session, r = s.rooms.get("lobby");
  return s.ws !== null && s.ws !== window.firstWS && r.synced === true;
})()`)
	typeText(t, ann, "!")
	poll[bool](t, ann, `"!" acknowledged`, `window.switchboard.session.unacked("lobby").length === 0`)
	if n := eval[int](t, ann, `window.refusals.length`); n != 1 {
		t.Errorf("the node refused %d chunks of ann's, want 1: the refused chunk went out again\n%s", n, strings.Join(connLog(t, ann), "\n"))
	}

	// Bob's account: "hi", then "!" under the seq after the refused one.
	var got []string
	for {
		m := bob.next(t, "ann's chunks", func(m wire.Message) bool { return m.Op == wire.OpText && m.From == "ann" })
		got = append(got, strconv.FormatUint(m.Seq, 10)+" "+strconv.Quote(m.T))
		if m.T == "!" {
			break
		}
	}
	want := []string{strconv.Itoa(refused-1) + ` "hi"`, strconv.Itoa(refused+1) + ` "!"`}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("bob got ann's chunks %v, want %v", got, want)
	}
}

// typeText types text at the end of the page's compose box, as one input
// event.
func typeText(t *testing.T, tab context.Context, text string) {
	t.Helper()
	eval[bool](t, tab, `(() => {
  const box = document.querySelector("#compose");
  box.value += `+strconv.Quote(text)+`;
  box.dispatchEvent(new Event("input"));
  return true;
})()`)
}
