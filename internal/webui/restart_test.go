package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/localcluster"
)

// TestBrowserRestartedNode: the only node of a service is killed and
// started again. The node that dropped the session is left out of the
// picks for a cool-down, but, as in the Go client (failover: a node
// excluded for a drop alone is up again once it answers a hello), only
// until it answers the page's directory fetch itself: the page must pick
// it from the first directory it gets from it, not wait out the cool-down
// with the node up.
func TestBrowserRestartedNode(t *testing.T) {
	t.Parallel()
	c, _ := processClusterWith(t, 120*time.Second, localcluster.Config{Nodes: 1, Standalone: true})
	ann := page(t, newBrowser(t), c.Nodes[0].HTTP, "ann")
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	// Back only once the page has found it gone: its dials failed and
	// its directory fetch found nobody.
	poll[bool](t, ann, "the page finding no node", `[...document.querySelectorAll("#log li")].some((li) => li.textContent.includes("no directory from"))`)
	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	poll[bool](t, ann, "ann's page attached again", `window.switchboard.session.attaches === 2 && document.querySelector("#conn").dataset.state === "attached"`)
	lines := connLog(t, ann)
	t.Logf("ann's page:\n%s", strings.Join(lines, "\n"))
	for i, l := range lines {
		if !strings.Contains(l, "directory from") || strings.Contains(l, "no directory from") {
			continue
		}
		for _, next := range lines[i+1:] {
			if strings.Contains(next, "picked") || strings.Contains(next, "available") {
				if strings.Contains(next, "excluded") {
					t.Errorf("after %q the page left the node out: %q", l, next)
				}
				break
			}
		}
	}
}
