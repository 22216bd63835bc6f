package webui_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserDashboardFollowsLiveNode opens the dashboard on one of three
// node processes and takes the others away one at a time: its own node
// is killed (kill -9), and then the node it moved to is paused (SIGSTOP:
// the connection stays open and the stream falls silent). The dashboard
// must notice the silence and stream from the third node, the only one
// left, rather than go back and forth between the two it knew first.
func TestBrowserDashboardFollowsLiveNode(t *testing.T) {
	t.Parallel()
	c, _ := processCluster(t, 90*time.Second)
	dash := newTab(t, sharedBrowser(t), "dashboard")
	// streaming waits until the dashboard streams from a node that cond
	// (of id, the node's ID) allows, and returns that node.
	streaming := func(what, cond string) string {
		t.Helper()
		return poll[string](t, dash, what, `(() => { const s = document.querySelector("#stream"), id = s.dataset.node || ""; return s.dataset.state === "live" && (`+cond+`) ? id : ""; })()`)
	}

	own := c.Nodes[0].ID
	do(t, dash, "opening the dashboard", chromedp.Navigate("http://"+c.Nodes[0].HTTP+"/dashboard"))
	streaming("the dashboard streaming from its own node, three nodes up", `id === "`+own+`" && document.querySelectorAll('#nodes tbody tr[data-status="up"]').length === 3`)

	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	second := streaming("the dashboard streaming from another node", `id !== "" && id !== "`+own+`"`)

	i := index(t, second)
	if err := c.Pause(i); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Resume(i) }) // before c.Stop: a stopped process takes no SIGTERM
	third := streaming("the dashboard streaming from the third node", `id !== "" && id !== "`+own+`" && id !== "`+second+`"`)
	t.Logf("the dashboard went from %s to %s to %s: %s", own, second, third, eval[string](t, dash, `document.querySelector("#stream").textContent`))
}
