package webui_test

import (
	"net"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// TestBrowserRebindingPageIsRefused: a page under a name the service
// does not publish that resolves to the node (rebind.test, mapped to
// 127.0.0.1 as a DNS-rebinding attacker's name would be) reads the
// node's directory as a page of the same origin. Over plain HTTP
// Chromium sends it with no Sec-Fetch-Site and no Origin, so only the
// name tells it apart: it gets 421. The same page under the node's
// address reads it.
func TestBrowserRebindingPageIsRefused(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	_, port, err := net.SplitHostPort(c.Nodes[0].HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	tab := newTab(t, sharedBrowser(t), "rebind")
	for _, tt := range []struct {
		host string
		want string
	}{
		{"rebind.test:" + port, "421"},
		{"127.0.0.1:" + port, "200"},
	} {
		// A page of that origin that runs nothing of its own.
		do(t, tab, "loading a page of "+tt.host, chromedp.Navigate("http://"+tt.host+"/static/style.css"))
		got := eval[string](t, tab, `fetch("/v1/directory").then(async (r) => r.status + " " + (await r.text()))`)
		if code, _, _ := strings.Cut(got, " "); code != tt.want {
			t.Errorf("fetch(\"/v1/directory\") of a page of http://%s: %.200s, want %s", tt.host, got, tt.want)
		}
	}
}
