package webui_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/webui"
)

// TestBrowserComposeBoxHoldsTheLine: the compose box must hold what
// ann's line shows on every screen (her page's room model, the same
// model every client runs: TestBrowserVectors), whatever is typed or
// pasted into it, or a later BACKSPACE erases on every screen a
// character the box still shows.
//
//   - A paste holding a character the text model drops (a BOM): before,
//     the box kept it, and the two BACKSPACEs that took the box from
//     "a\uFEFFb" to "a" erased "b" and then "a" everywhere.
//   - A paste holding a line separator of its own (U+2028): everyone
//     ends the line there; the box kept the whole paste.
//   - An input method's Enter that confirms a conversion, as Safari
//     sends it (compositionend first, then keydown Enter with
//     isComposing false and keyCode 229): before, the page took it for
//     an Enter of the user's, and ended the line for everyone.
func TestBrowserComposeBoxHoldsTheLine(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	ann := page(t, newBrowser(t), c.Nodes[0].HTTPAddr(), "ann")
	setBox := func(v string) {
		eval[bool](t, ann, fmt.Sprintf(`(() => { const box = document.querySelector("#compose"); box.value = %q; box.dispatchEvent(new Event("input")); return true; })()`, v))
	}
	// lineIs waits until ann's line and the box both hold want, with
	// the lines she ended so far in the history.
	lineIs := func(what, want string, history ...string) {
		t.Helper()
		hist := `[...document.querySelectorAll("#history li")].map((li) => li.textContent).join("|")`
		poll[bool](t, ann, what, fmt.Sprintf(`window.switchboard.room.live("ann") === %q && document.querySelector("#compose").value === %q && %s === %q`,
			want, want, hist, strings.Join(history, "|")))
	}

	setBox("a\uFEFFb")
	lineIs("the BOM left out of the box", "ab")
	setBox("a")
	lineIs("one character erased", "a")

	setBox("abc\u2028def")
	lineIs("the line ended at the separator", "def", "annabc")
	setBox("")
	lineIs("the new line erased", "", "annabc")

	eval[bool](t, ann, `(() => {
  const box = document.querySelector("#compose");
  box.dispatchEvent(new CompositionEvent("compositionstart", { data: "" }));
  box.value = "かんじ"; box.dispatchEvent(new InputEvent("input", { isComposing: true }));
  box.value = "漢字"; box.dispatchEvent(new InputEvent("input", { isComposing: true }));
  box.dispatchEvent(new CompositionEvent("compositionend", { data: "漢字" }));
  box.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", keyCode: 229, isComposing: false, bubbles: true, cancelable: true }));
  box.value = "漢字!"; box.dispatchEvent(new Event("input"));
  return true;
})()`)
	lineIs("the conversion kept on the line", "漢字!", "annabc")
}

// TestBrowserJoinFormRefusesLongNames: the node takes user names of at
// most 64 bytes, and the form's maxlength counts UTF-16 code units: 22
// kana (66 bytes) passed it, and the node's refusal ended the page with
// the form hidden (TestBrowserAttachRefusedForGood shows it again).
func TestBrowserJoinFormRefusesLongNames(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(webui.Handler())
	t.Cleanup(srv.Close)
	tab := newTab(t, sharedBrowser(t), "form")
	do(t, tab, "opening the page", chromedp.Navigate(srv.URL+"/"))
	for _, tc := range []struct {
		name  string
		valid bool
	}{
		{strings.Repeat("あ", 21), true},                        // 63 bytes
		{strings.Repeat("あ", 22), false},                       // 66 bytes
		{strings.Repeat("a", node.MaxUserName), true},          // 64 bytes
		{strings.Repeat("a", node.MaxUserName-1) + "é", false}, // 65 bytes
	} {
		valid := eval[bool](t, tab, fmt.Sprintf(`(() => {
  const user = document.querySelector("#user");
  user.value = %q;
  user.dispatchEvent(new Event("input"));
  return user.checkValidity();
})()`, tc.name))
		if valid != tc.valid {
			t.Errorf("a name of %d bytes: valid %v, want %v", len(tc.name), valid, tc.valid)
		}
	}
}
