package webui_test

import (
	"testing"
	"time"
)

// TestBrowserSilentNode pauses (SIGSTOP) the node a page is attached to:
// its kernel keeps the connection open and even takes what the page
// sends, so no close ever comes. The page must notice the silence (a
// ping unanswered, and no answer on a second connection either), fail
// over to another node and resend what its user typed meanwhile
// (docs/protocol.md, "The client's duties": notice a node that stopped
// answering without closing the connection).
func TestBrowserSilentNode(t *testing.T) {
	t.Parallel()
	c, _ := processCluster(t, 90*time.Second)
	ann := page(t, newBrowser(t), c.Nodes[0].HTTP, "ann")
	silent := nodeOf(t, ann)
	i := index(t, silent)
	if err := c.Pause(i); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Resume(i) }) // before c.Stop: a stopped process takes no SIGTERM

	const text = "typed into silence"
	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); box.value = "`+text+`"; box.dispatchEvent(new Event("input")); return true; })()`)
	poll[bool](t, ann, "ann's page on another node", `(() => { const c = document.querySelector("#conn"); return c.dataset.state === "attached" && c.dataset.node !== "`+silent+`"; })()`)
	poll[bool](t, ann, "every chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)
	t.Logf("ann's page:\n%s", eval[string](t, ann, `[...document.querySelectorAll("#log li")].map((li) => li.textContent).join("\n")`))
	if got := eval[string](t, ann, liveOf("ann")); got != text {
		t.Errorf("ann's line on her page is %q, want %q", got, text)
	}
}
