package webui_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// TestBrowserAttachRefusedForGood: a node answers the attach with a
// refusal no retry mends (bad_request: a user name longer than 64
// bytes). Every node would say the same, so, as the Go client does, the
// page must stop and say why, not dial the node again and again.
func TestBrowserAttachRefusedForGood(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	user := strings.Repeat("a", 65)
	ann := newTab(t, newBrowser(t), "ann")
	do(t, ann, "opening the page", chromedp.Navigate(fmt.Sprintf("http://%s/?user=%s&room=lobby", c.Nodes[0].HTTPAddr(), user)))
	poll[bool](t, ann, "the page stopped", `document.querySelector("#conn").dataset.state === "failed"`)
	lines := connLog(t, ann)
	t.Logf("the page:\n%s", strings.Join(lines, "\n"))
	if n := count(lines, "bad_request"); n != 1 {
		t.Errorf("the log tells of %d bad_request refusals; want 1", n)
	}
	if why := eval[string](t, ann, `document.querySelector("#why").textContent`); !strings.Contains(why, "bad_request") {
		t.Errorf("the page says %q under its status; want the node's refusal", why)
	}
	if !eval[bool](t, ann, `document.querySelector("#reauth-form").hidden`) {
		t.Error("the page asks for a fresh token, which would not help")
	}
	// The form again, to give a name the node takes; before, it stayed
	// hidden and only a reload helped.
	if !eval[bool](t, ann, `document.querySelector("#join-form").checkVisibility()`) {
		t.Error("the join form is hidden; want it shown, to give another name")
	}
}
