package webui_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/token"
)

// TestBrowserToken: where the service signs users' names, the page
// attaches with the token typed into its form, and without one it stops
// and says why instead of retrying every node.
func TestBrowserToken(t *testing.T) {
	t.Parallel()
	priv, pubFile := nodetest.TokenKey(t)
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.TokenKey = pubFile }})
	tok, err := token.Mint(priv, token.Claims{User: "ann", Service: c.Config.Service, Expires: time.Now().Add(time.Hour)}, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	browser := newBrowser(t)
	base := "http://" + c.Nodes[0].HTTPAddr() + "/"

	without := newTab(t, browser, "no token")
	do(t, without, "joining without a token",
		chromedp.Navigate(base),
		chromedp.SendKeys(chromedp.CSS("#user"), "ann"),
		chromedp.Click(chromedp.CSS(`#join-form button[type="submit"]`)))
	why := poll[string](t, without, "the page giving up", `document.querySelector("#conn").dataset.state === "failed" && document.querySelector("#why").textContent`)
	t.Logf("without a token: %s", why)

	with := newTab(t, browser, "token")
	do(t, with, "joining with a token",
		chromedp.Navigate(base),
		chromedp.SendKeys(chromedp.CSS("#user"), "ann"),
		chromedp.SendKeys(chromedp.CSS("#token"), tok),
		chromedp.Click(chromedp.CSS(`#join-form button[type="submit"]`)))
	poll[bool](t, with, "ann attached and in the room", `document.querySelector("#conn").dataset.state === "attached" && window.switchboard.room !== null`)
	// The keyboard is where the user types next.
	poll[bool](t, with, "the compose box focused", `document.activeElement === document.querySelector("#compose")`)
}

// TestBrowserTokenExpires: a session outlives its token, but a reattach
// needs a valid one (docs/protocol.md, "Attach"). When the page's
// connection drops after its token has expired, the node refuses it;
// the page must then ask its user for a fresh token and go on with it,
// keeping what was typed meanwhile, rather than stop for good and lose
// it.
func TestBrowserTokenExpires(t *testing.T) {
	t.Parallel()
	priv, pubFile := nodetest.TokenKey(t)
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.TokenKey = pubFile }})
	c.WaitRoomsReady(60 * time.Second)
	mint := func(expires time.Time) string {
		tok, err := token.Mint(priv, token.Claims{User: "ann", Service: c.Config.Service, Expires: expires}, expires.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ann := newTab(t, newBrowser(t), "ann")
	do(t, ann, "joining with a token",
		chromedp.Navigate("http://"+c.Nodes[0].HTTPAddr()+"/"),
		chromedp.SendKeys(chromedp.CSS("#user"), "ann"),
		chromedp.SendKeys(chromedp.CSS("#token"), mint(time.Now().Add(time.Hour))),
		chromedp.Click(chromedp.CSS(`#join-form button[type="submit"]`)))
	poll[bool](t, ann, "ann attached and in the room", `document.querySelector("#conn").dataset.state === "attached" && window.switchboard.room !== null`)

	// Time passes: the token the page holds expires (here it is swapped
	// for one that expired a minute past the nodes' leeway, rather than
	// waited for), and then the connection drops.
	expired := mint(time.Now().Add(-token.Leeway - time.Minute))
	eval[bool](t, ann, `(() => { const s = window.switchboard.session; s.token = "`+expired+`"; s.ws.close(); return true; })()`)
	poll[bool](t, ann, "the page asking for a fresh token", `document.querySelector("#conn").dataset.state === "failed" && !document.querySelector("#reauth-form").hidden`)

	const text = "typed with an expired token"
	eval[bool](t, ann, `(() => { const box = document.querySelector("#compose"); box.value = "`+text+`"; box.dispatchEvent(new Event("input")); return true; })()`)
	do(t, ann, "giving a fresh token",
		chromedp.SendKeys(chromedp.CSS("#reauth-token"), mint(time.Now().Add(time.Hour))),
		chromedp.Click(chromedp.CSS(`#reauth-form button[type="submit"]`)))
	poll[bool](t, ann, "ann attached again", `document.querySelector("#conn").dataset.state === "attached"`)
	poll[bool](t, ann, "every chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)
	if got := eval[string](t, ann, liveOf("ann")); got != text {
		t.Errorf("ann's line on her page is %q, want %q", got, text)
	}
}
