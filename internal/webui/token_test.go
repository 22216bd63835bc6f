package webui_test

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/pki"
	"github.com/switchboard/switchboard/internal/token"
)

// TestBrowserToken: where the service signs users' names, the page
// attaches with the token typed into its form, and without one it stops
// and says why instead of retrying every node.
func TestBrowserToken(t *testing.T) {
	privPEM, pubPEM, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(t.TempDir(), "token.pub")
	if err := os.WriteFile(pubFile, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	priv, err := pki.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.TokenKey = pubFile }})
	tok, err := token.Mint(priv.(ed25519.PrivateKey), token.Claims{User: "ann", Service: c.Config.Service, Expires: time.Now().Add(time.Hour)}, time.Now().Add(-time.Minute))
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
