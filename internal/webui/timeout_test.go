package webui_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/localcluster"
)

// TestBrowserTimedOutNode: the node a page picks first is paused
// (SIGSTOP) while the directory still lists it up (the nodes' heartbeat
// is slow, so the others take long to mark it down). Its kernel takes the
// connection and nothing answers. As the Go client does
// (failover.Config.TimeoutRetries), the page must give up on it after
// one attempt timeout, leave it out and attach elsewhere, rather than
// dial it again and strand its user for as many more timeouts.
func TestBrowserTimedOutNode(t *testing.T) {
	t.Parallel()
	c, _ := processClusterWith(t, 120*time.Second, localcluster.Config{
		Nodes: 3, Groups: []string{"eu/a", "eu/b", "us/a"},
		Heartbeat: 10 * time.Second, // a silent node is down after 30 s
	})
	if err := c.Pause(1); err != nil { // n2, alone in zone eu/b
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Resume(1) }) // before c.Stop: a stopped process takes no SIGTERM

	ann := newTab(t, newBrowser(t), "ann")
	do(t, ann, "opening ann's page", chromedp.Navigate(fmt.Sprintf("http://%s/?user=ann&room=lobby&group=eu/b", c.Nodes[0].HTTP)))
	poll[bool](t, ann, "ann's page attached", `document.querySelector("#conn").dataset.state === "attached"`)
	lines := connLog(t, ann)
	t.Logf("ann's page:\n%s", strings.Join(lines, "\n"))
	if got := nodeOf(t, ann); got == "n2" {
		t.Fatalf("attached to n2, the paused node")
	}
	if n := count(lines, "picked n2"); n != 1 {
		t.Errorf("the page picked n2 %d times; want 1", n)
	}
	if n := count(lines, "n2: no answer in time"); n != 1 {
		t.Errorf("the page timed out on n2 %d times; want once, and no dial again", n)
	}
}
