package webui_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// wait bounds a wait for something the browser must do: generous, so a
// loaded machine fails nothing that is only slow.
const wait = 30 * time.Second

// newBrowser starts a headless Chromium for the test. Chromium missing
// is a failure, not a skip: CI installs it (.ci/run).
//
// The tests with nodes and a browser of their own call t.Parallel: they
// mostly wait on the page's timers and the nodes', and side by side the
// package takes about half the time. Those that type against the node's
// rate limits do not, since how many chunks are refused there depends on
// how evenly the page's sends reach the node.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	bctx, stop, err := startBrowser()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return bctx
}

// startBrowser starts a headless Chromium and returns its context and
// the function that stops it.
func startBrowser() (context.Context, func(), error) {
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		return nil, nil, errors.New("no Chromium to run the browser tests: install it (apt-get install chromium; .ci/run does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // Debian's chromium as root
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1100, 900),
		// Every tab is a user at a screen: none may have its timers slowed.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		// A name of an attacker's that resolves to the node, for the
		// DNS-rebinding test (TestBrowserRebindingPageIsRefused).
		chromedp.Flag("host-resolver-rules", "MAP rebind.test 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	stop := func() {
		cancelBrowser()
		cancelAlloc()
	}
	if err := chromedp.Do(bctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return bctx, stop, nil
}

// shared is the one Chromium of the scripted tests (sharedBrowser),
// started by the first of them and stopped after the package's tests.
var shared struct {
	once sync.Once
	ctx  context.Context
	stop func()
	err  error
}

// sharedBrowser is a Chromium that tests share, each in a tab of its
// own: for the scripted tests (scriptPage), whose pages talk to stand-ins
// inside the page and whose origins (each test's own server) keep their
// storage apart. A browser of their own cost each about a second of CPU
// to start, some twenty of them at once.
func sharedBrowser(t testing.TB) context.Context {
	t.Helper()
	shared.once.Do(func() { shared.ctx, shared.stop, shared.err = startBrowser() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.ctx
}

// stopSharedBrowser wraps the package's tests: once they have run, it
// stops the shared Chromium, before the check for goroutines left over.
type stopSharedBrowser struct{ m *testing.M }

func (s stopSharedBrowser) Run() int {
	code := s.m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	return code
}

// newTab opens a tab that logs its console and its uncaught errors.
func newTab(t testing.TB, browser context.Context, name string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening tab %s: %v", name, err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value))
			}
			t.Logf("%s console.%s: %s", name, ev.Type, strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			t.Errorf("%s: uncaught %s at %s:%d", name, msg, d.URL, d.LineNumber)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// poll waits until expr is truthy in the tab, and returns its value.
func poll[T any](t testing.TB, tab context.Context, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Poll[T](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(wait)))
	if err != nil {
		// The page's own account of what happened, if it keeps one.
		log, _ := chromedp.Run(tab, chromedp.Evaluate[string](`[...document.querySelectorAll("#log li, #events li")].map((li) => li.textContent).join("\n") + "\n" + ((document.querySelector("#conn, #stream") || {}).textContent || "")`))
		t.Fatalf("waiting for %s (%s): %v\nthe page says:\n%s", what, expr, err, log)
	}
	return v
}

func eval[T any](t testing.TB, tab context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func do(t testing.TB, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestBrowserVectors runs static/rtt.js, static/pick.js and
// static/failover.js, as a node serves them, over the vectors the Go
// packages pass (TestVectors).
func TestBrowserVectors(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	tab := newTab(t, newBrowser(t), "vectors")
	rttJSON, err := os.ReadFile(filepath.Join("testdata", "rtt.json"))
	if err != nil {
		t.Fatal(err)
	}
	pickJSON, err := os.ReadFile(filepath.Join("testdata", "pick.json"))
	if err != nil {
		t.Fatal(err)
	}
	failoverJSON, err := os.ReadFile(filepath.Join("testdata", "failover.json"))
	if err != nil {
		t.Fatal(err)
	}
	do(t, tab, "loading the page", chromedp.Navigate("http://"+c.Nodes[0].HTTPAddr()+"/"))
	bad := eval[[]string](t, tab, `(async () => {
  const rtt = await import("/static/rtt.js");
  const pick = await import("/static/pick.js");
  const failover = await import("/static/failover.js");
  const R = `+string(rttJSON)+`, P = `+string(pickJSON)+`, F = `+string(failoverJSON)+`;
  const canon = (v) => JSON.stringify(v, (k, x) =>
    x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x);
  const bad = [];
  for (const c of R.cases) {
    const room = new rtt.Room(c.max_lines || 0);
    const results = [];
    for (const s of c.steps) {
      if (s.load) {
        room.load(s.load);
        results.push({ duplicate: false, gap: false, alerts: 0, lines: [] });
        continue;
      }
      const r = room.apply(s.from || "", s.seq || 0, s.t || "");
      results.push({ duplicate: r.duplicate, gap: r.gap, alerts: r.alerts, lines: r.lines.map((l) => l.text) });
    }
    const got = { results, state: room.state() };
    if (canon(got) !== canon(c.want)) bad.push("rtt " + c.name + ": got " + canon(got) + ", want " + canon(c.want));
  }
  for (const c of P.cases) {
    let i = 0;
    const r = { intN: (n) => (i < (c.rand || []).length ? c.rand[i++] % n : 0) };
    const policy = pick.byName(c.policy, r);
    const ex = new Set(c.exclude || []);
    let got = "";
    try {
      got = policy(c.nodes, { group: c.group || "", self: c.self || "", ageMs: c.age_ms || 0, exclude: (id) => ex.has(id) }).node.id;
    } catch (e) {
      if (!(e instanceof pick.NoNodeError)) throw e;
    }
    if (got !== c.want) bad.push("pick " + c.name + ": got " + JSON.stringify(got) + ", want " + JSON.stringify(c.want));
  }
  for (const c of F.cases) {
    let i = 0;
    const m = new failover.Machine({ intN: (n) => (i < (c.rand || []).length ? c.rand[i++] % n : 0) });
    const got = [];
    for (const s of c.steps) {
      const now = s.at_ms || 0;
      const a = m.next({ kind: s.kind, node: s.node || "", held: !!s.held, deadline: s.deadline_ms || 0 }, now);
      let line = a.step;
      if (a.node) line += " " + a.node;
      if (a.after > 0) line += " after " + Math.round(a.after * 1000) + "us";
      const cooling = c.nodes.filter((id) => m.excluded(id, now));
      if (cooling.length > 0) line += " | excluded " + cooling.join(" ");
      got.push(line);
    }
    if (canon(got) !== canon(c.want)) bad.push("failover " + c.name + ": got " + canon(got) + ", want " + canon(c.want));
  }
  return bad;
})()`)
	for _, b := range bad {
		t.Error(b)
	}
}

// screenshot saves the tab as NAME.png in $SWITCHBOARD_SCREENSHOTS, when
// that is set (docs/web.md's pictures come from there).
func screenshot(t testing.TB, tab context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SWITCHBOARD_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// page opens the room page of a node for a user.
func page(t testing.TB, browser context.Context, httpAddr, user string) context.Context {
	t.Helper()
	tab := newTab(t, browser, user)
	do(t, tab, "opening "+user+"'s page", chromedp.Navigate(fmt.Sprintf("http://%s/?user=%s&room=lobby&policy=least-users", httpAddr, user)))
	poll[bool](t, tab, user+" in the room", `window.switchboard && window.switchboard.room !== null && document.querySelector("#conn").dataset.state === "attached"`)
	return tab
}

// nodeOf is the ID of the node a page is attached to.
func nodeOf(t testing.TB, tab context.Context) string {
	t.Helper()
	return eval[string](t, tab, `document.querySelector("#conn").dataset.node`)
}

// liveOf is the expression of a participant's live line on a page.
func liveOf(user string) string {
	return `(document.querySelector('#live li[data-live="` + user + `"] .text') || {}).textContent`
}

func index(t *testing.T, id string) int {
	t.Helper()
	i, err := strconv.Atoi(strings.TrimPrefix(id, "n"))
	if err != nil {
		t.Fatalf("node ID %q", id)
	}
	return i - 1
}

// TestBrowserFailover runs a cluster of switchboard processes and three
// browser pages: ann types, bob (on another node) sees each character,
// cat joins late and gets the state; ann's node is killed (kill -9) while
// she types, her page fails over and nothing she typed is lost; the
// dashboard shows the node down, and then a drain of another node.
func TestBrowserFailover(t *testing.T) {
	t.Parallel()
	c, ctx := processCluster(t, 90*time.Second)
	browser := newBrowser(t)

	ann := page(t, browser, c.Nodes[0].HTTP, "ann")
	annNode := nodeOf(t, ann)
	// Bob picks the least loaded node: wait until every node counts ann,
	// so that it is another one.
	if err := localcluster.Await(ctx, wait, func(ctx context.Context) error {
		d, err := c.Nodes[0].Directory(ctx)
		if err != nil {
			return err
		}
		for _, n := range d.Nodes {
			if n.ID == annNode && n.Users == 1 {
				return nil
			}
		}
		return fmt.Errorf("the directory does not count ann on %s yet", annNode)
	}); err != nil {
		t.Fatal(err)
	}
	bob := page(t, browser, c.Nodes[0].HTTP, "bob")
	bobNode := nodeOf(t, bob)
	if bobNode == annNode {
		t.Fatalf("ann and bob are both on %s; least-users should have spread them", annNode)
	}
	// The dashboard, from the third node.
	var third int
	for i := range c.Nodes {
		if id := c.Nodes[i].ID; id != annNode && id != bobNode {
			third = i
		}
	}
	dash := newTab(t, browser, "dashboard")
	do(t, dash, "opening the dashboard", chromedp.Navigate("http://"+c.Nodes[third].HTTP+"/dashboard"))
	poll[bool](t, dash, "three nodes up on the dashboard", `document.querySelectorAll('#nodes tbody tr[data-status="up"]').length === 3`)

	// Bob records ann's line after every chunk he receives.
	eval[bool](t, bob, `(() => {
  window.seen = [];
  window.switchboard.session.addEventListener("text", (e) => { if (e.detail.from === "ann") window.seen.push(window.switchboard.room.live("ann")); });
  return true;
})()`)
	do(t, ann, "typing", chromedp.SendKeys(chromedp.CSS("#compose"), "hello"))
	poll[bool](t, bob, "ann's line on bob's page", liveOf("ann")+` === "hello"`)
	seen := eval[[]string](t, bob, `window.seen`)
	if want := []string{"h", "he", "hel", "hell", "hello"}; strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("bob saw ann's line go %q, want %q: one character at a time", seen, want)
	}

	// A late joiner gets the state.
	cat := page(t, browser, c.Nodes[third].HTTP, "cat")
	poll[bool](t, cat, "ann's line on cat's page", liveOf("ann")+` === "hello"`)

	// Kill ann's node while she types.
	if err := c.Kill(index(t, annNode)); err != nil {
		t.Fatal(err)
	}
	do(t, ann, "typing during the failover", chromedp.SendKeys(chromedp.CSS("#compose"), " world"))
	poll[bool](t, ann, "ann's page on another node", `(() => { const c = document.querySelector("#conn"); return c.dataset.state === "attached" && c.dataset.node !== "`+annNode+`"; })()`)
	poll[bool](t, bob, "all of ann's line on bob's page", liveOf("ann")+` === "hello world"`)
	do(t, ann, "ending the line", chromedp.SendKeys(chromedp.CSS("#compose"), "\n"))
	for name, tab := range map[string]context.Context{"bob": bob, "cat": cat} {
		poll[bool](t, tab, "ann's line in "+name+"'s history", `[...document.querySelectorAll("#history li")].some((li) => li.textContent === "annhello world")`)
	}
	poll[bool](t, ann, "every chunk of ann's acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)
	t.Logf("ann's page: %s", eval[string](t, ann, `document.querySelector("#conn").textContent + " " + document.querySelector("#why").textContent`))

	// The dashboard shows the node down, and says so in its events.
	poll[bool](t, dash, annNode+" down on the dashboard", `!!document.querySelector('#nodes tbody tr[data-node="`+annNode+`"][data-status="down"]')`)
	poll[bool](t, dash, "the down event", `!!document.querySelector('#events li[data-node="`+annNode+`"][data-what="down"]')`)
	// A drain shows too.
	resp, err := http.Post("http://"+c.Nodes[third].HTTP+"/v1/drain", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/drain: %s", resp.Status)
	}
	drained := c.Nodes[third].ID
	poll[bool](t, dash, drained+" draining on the dashboard", `!!document.querySelector('#nodes tbody tr[data-node="`+drained+`"][data-status="draining"]') && !!document.querySelector('#events li[data-node="`+drained+`"][data-what="draining"]')`)
	// Bob's page was pushed these changes alone (the second at least: it
	// had the push before it) and holds every node, ann's down and the
	// drained one draining.
	poll[bool](t, bob, "both changes in bob's directory", `(() => {
  const s = window.switchboard.session, status = (id) => (s.dir.nodes.find((n) => n.id === id) || {}).status;
  return s.deltas > 0 && s.dir.nodes.length === 3 && status("`+annNode+`") === "down" && status("`+drained+`") === "draining";
})()`)
	screenshot(t, bob, "web-room")
	screenshot(t, dash, "web-dashboard")
}
