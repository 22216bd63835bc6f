package rtcfront_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// TestPagesOfOtherOriginsMayPost: a page that may post offers (one of
// another node of the service, or one --ws-origins allows) gets its
// CORS preflight answered and may read the answers, the refusals
// included; a page of another site gets neither. A page posts to the
// node it picked, usually of another origin than its own, and posting
// application/sdp (or with Authorization) makes the browser ask first:
// before, the front answered the preflight 405, with no
// Access-Control-Allow-Origin, and only a node's own pages could call.
func TestPagesOfOtherOriginsMayPost(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(settle)
	_, url := startFront(t, c.Nodes[0], func(cfg *rtcfront.Config) {
		cfg.Origins = []string{"pages.example"}
	})
	do := func(t *testing.T, method, origin, ctype, body string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, url+"?room=lobby&user=carol", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	varies := func(res *http.Response) bool {
		for _, v := range res.Header.Values("Vary") {
			for f := range strings.SplitSeq(v, ",") {
				if strings.EqualFold(strings.TrimSpace(f), "Origin") {
					return true
				}
			}
		}
		return false
	}
	for _, tt := range []struct {
		name, origin string
		allowed      bool
	}{
		{"a page of another node", "http://" + c.Nodes[1].HTTPAddr(), true},
		{"a page --ws-origins allows", "https://pages.example", true},
		{"a page of another site", "https://elsewhere.example", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pre := do(t, http.MethodOptions, tt.origin, "", "",
				"Access-Control-Request-Method", "POST",
				"Access-Control-Request-Headers", "authorization,content-type",
				"Access-Control-Request-Private-Network", "true")
			acao := pre.Header.Get("Access-Control-Allow-Origin")
			pna := pre.Header.Get("Access-Control-Allow-Private-Network")
			if !tt.allowed {
				if pre.StatusCode/100 == 2 || acao != "" || pna != "" {
					t.Errorf("preflight: %d, Access-Control-Allow-Origin %q, Access-Control-Allow-Private-Network %q; want a refusal without them", pre.StatusCode, acao, pna)
				}
				res := do(t, http.MethodPost, tt.origin, "application/sdp", "v=0")
				if res.StatusCode != http.StatusForbidden || res.Header.Get("Access-Control-Allow-Origin") != "" {
					t.Errorf("POST: %d, Access-Control-Allow-Origin %q; want 403 without it", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
				}
				return
			}
			if pre.StatusCode != http.StatusNoContent || acao != tt.origin {
				t.Fatalf("preflight: %d, Access-Control-Allow-Origin %q; want 204, %q", pre.StatusCode, acao, tt.origin)
			}
			if pna != "true" {
				t.Errorf("Access-Control-Allow-Private-Network %q, want true", pna)
			}
			if m := pre.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") {
				t.Errorf("Access-Control-Allow-Methods %q, want POST", m)
			}
			h := strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers"))
			if !strings.Contains(h, "content-type") || !strings.Contains(h, "authorization") {
				t.Errorf("Access-Control-Allow-Headers %q, want Content-Type and Authorization", h)
			}
			if pre.Header.Get("Access-Control-Max-Age") == "" || !varies(pre) {
				t.Errorf("preflight: Access-Control-Max-Age %q, Vary %q; want both, Vary naming Origin", pre.Header.Get("Access-Control-Max-Age"), pre.Header.Values("Vary"))
			}
			// A refusal the page may read.
			res := do(t, http.MethodPost, tt.origin, "application/sdp", "not an offer")
			if res.StatusCode != http.StatusBadRequest || res.Header.Get("Access-Control-Allow-Origin") != tt.origin || !varies(res) {
				t.Errorf("a bad offer: %d, Access-Control-Allow-Origin %q, Vary %q; want 400, %q, Origin", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), res.Header.Values("Vary"), tt.origin)
			}
			// An answer the page may read.
			_, offer := newPeer(t, rtcfront.Protocol, nil)
			res = do(t, http.MethodPost, tt.origin, "application/sdp", offer)
			if res.StatusCode != http.StatusCreated || res.Header.Get("Access-Control-Allow-Origin") != tt.origin || !varies(res) {
				t.Errorf("an offer: %d, Access-Control-Allow-Origin %q, Vary %q; want 201, %q, Origin", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), res.Header.Values("Vary"), tt.origin)
			}
		})
	}
}

// TestChromiumPageOfAnotherNodeCalls: a page served by n2, a node of the
// service, posts its offer to n1's front, another origin, as a page
// does that picked a node from the directory. Before, Chromium's
// preflight got 405 and the fetch failed.
func TestChromiumPageOfAnotherNodeCalls(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(settle)
	_, url := startFront(t, c.Nodes[0], nil)
	browser := newBrowser(t)
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab, chromedp.Navigate("http://"+c.Nodes[1].HTTPAddr()+"/healthz")); err != nil {
		t.Fatal(err)
	}
	ans, err := chromedp.Run(tab, chromedp.Evaluate[string](`(async () => { try { return await `+callRoom+`(`+"`"+url+"?room=lobby&user=carol`"+`); } catch (e) { return "threw: " + e; } })()`, chromedp.EvalAwaitPromise))
	if err != nil || ans != "answered" {
		t.Fatalf("a page of %s posting to %s: %q %v", c.Nodes[1].HTTPAddr(), url, ans, err)
	}
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.rtt.state === "open"`, chromedp.WithPollingTimeout(settle))); err != nil {
		t.Fatalf("waiting for the t140 channel to open: %v", err)
	}
}
