package webui_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/wire"
)

// receivedLine reads a member's deliveries of from's chunks until they
// make up n bytes; each chunk must come once, in order, after last.
func receivedLine(t *testing.T, m *tcpMember, from string, last uint64, n int) string {
	t.Helper()
	var b strings.Builder
	for b.Len() < n {
		msg := m.next(t, fmt.Sprintf("%s's text (%d of %d bytes so far)", from, b.Len(), n), func(msg wire.Message) bool {
			return msg.Op == wire.OpText && msg.From == from
		})
		if msg.Seq != last+1 {
			t.Errorf("%s's chunk %d after %d: each chunk once, in order", from, msg.Seq, last)
		}
		last = msg.Seq
		b.WriteString(msg.T)
	}
	return b.String()
}

// TestBrowserPasteKeepsCharacters: a paste longer than one chunk is
// cut into chunks of at most the chunk limit the node says with
// attached (here 1,000 bytes, below the default); a character outside
// the BMP (an emoji: two UTF-16 code units, four bytes) at a cut must
// reach the others whole, not as two halves that each become U+FFFD on
// the wire.
func TestBrowserPasteKeepsCharacters(t *testing.T) {
	t.Parallel()
	ann, bob, st := annAndBob(t, func(i int, cfg *node.Config) { cfg.MaxChunk = 1000 })

	// 999 ASCII characters, then emoji across the 1,000-byte cut.
	text := strings.Repeat("a", 999) + strings.Repeat("😀", 600)
	eval[bool](t, ann, fmt.Sprintf(`(() => { const box = document.querySelector("#compose"); box.value = %q; box.dispatchEvent(new Event("input")); return true; })()`, text))
	if got := receivedLine(t, bob, "ann", st.State.Seqs["ann"], len(text)); got != text {
		i := 0
		for i < len(got) && i < len(text) && got[i] == text[i] {
			i++
		}
		t.Errorf("bob got ann's paste as %d bytes, want %d; first difference at byte %d: %q", len(got), len(text), i, got[max(i-4, 0):min(i+8, len(got))])
	}
}

// TestBrowserPastePastTheRate: a paste larger than the node's byte
// burst (ByteBurst, 64 KiB) is refused in part (rate, then unavailable
// for every chunk behind it while the room is held). The page must join
// the room again once per refusal, after a pause, as the Go client does,
// not once per refused chunk: its re-joins would pass the node's join
// rate themselves, be refused for it, and be retried in turn, hundreds
// of them for one paste. Every character still reaches the others once,
// in order. The page here ignores the limits the node says (as with
// nodes older than them), or it would keep the paste within the burst
// and nothing would be refused.
func TestBrowserPastePastTheRate(t *testing.T) {
	ann, bob, st := annAndBob(t, nil)
	eval[bool](t, ann, `(() => {
  window.switchboard.session.ignoreLimits = true; // or the page keeps within the burst
  window.refusals = { text: 0, join: 0 };
  window.switchboard.session.addEventListener("error", (e) => {
    const m = e.detail;
    if (m.code === "rate" || m.code === "unavailable") window.refusals[m.seq ? "text" : "join"]++;
  });
  return true;
})()`)

	text := strings.Repeat("0123456789abcdef", 80<<10/16)
	eval[bool](t, ann, fmt.Sprintf(`(() => { const box = document.querySelector("#compose"); box.value = %q; box.dispatchEvent(new Event("input")); return true; })()`, text))
	if got := receivedLine(t, bob, "ann", st.State.Seqs["ann"], len(text)); got != text {
		t.Errorf("bob got ann's paste as %d bytes, want %d", len(got), len(text))
	}
	poll[bool](t, ann, "every chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)
	refusals := eval[map[string]int](t, ann, `window.refusals`)
	t.Logf("refusals: %v", refusals)
	if refusals["text"] == 0 {
		t.Errorf("no chunk of the paste was refused: the test does not pass the node's byte burst")
	}
	if refusals["join"] != 0 {
		t.Errorf("the node refused %d of the page's re-joins for their rate: the page re-joined once per refused chunk", refusals["join"])
	}
}

// TestBrowserRateRefusedTextIsPaced: text typed faster than the node's
// chunk rate, to a node whose limits the page does not know (as with
// nodes older than them), is refused in part; the page holds it, joins
// the room again and paces what it resends as the Go client does
// (client/pace.go, client/resend_test.go TestRefusedTextIsResentInOrder):
// rounds of what passed, a second apart, not everything held after each
// re-join, which would have most of it refused again at every one. The
// others still receive every chunk once, in order.
func TestBrowserRateRefusedTextIsPaced(t *testing.T) {
	typed, refused, resent := typeFasterThanTheRate(t, true)
	if refused == 0 {
		t.Fatal("the node refused nothing; the test needs a rate limit below the typing")
	}
	// Resending everything after each re-join would have about
	// len(typed)²/10 refused here.
	if resent > len(typed)/2 {
		t.Errorf("%d chunks refused after the first re-join; want at most %d: the resends are not paced", resent, len(typed)/2)
	}
}

// TestBrowserTextKeepsWithinTheNodesLimits: the page keeps its text
// within the limits the node says with attached, holding what is typed
// faster until they allow it, rather than having it refused (ignoring
// them, the node refuses 41 of these 43 chunks). The others receive every
// chunk once, in order.
func TestBrowserTextKeepsWithinTheNodesLimits(t *testing.T) {
	typed, refused, _ := typeFasterThanTheRate(t, false)
	// Jitter between the page's sends and the node's reads may still
	// cost a refusal now and then (the budget keeps a margin for it).
	if refused > len(typed)/4 {
		t.Errorf("%d of %d chunks refused; want at most %d: the page does not keep to the node's limits", refused, len(typed), len(typed)/4)
	}
}

// typeFasterThanTheRate has ann's page send a line, a chunk a character,
// all at once, to a node that takes 20 chunks a second in bursts of 5,
// its limits ignored when ignoreLimits, and checks that bob receives it
// whole, each chunk once, in order. It returns the line and the chunks
// refused: in all, and after the room's first state that followed a
// refusal.
func typeFasterThanTheRate(t *testing.T, ignoreLimits bool) (typed string, refused, resent int) {
	t.Helper()
	ann, bob, st := annAndBob(t, func(i int, cfg *node.Config) {
		cfg.ChunkRate = 20
		cfg.ChunkBurst = 5
	})
	eval[bool](t, ann, fmt.Sprintf(`(() => {
  const s = window.switchboard.session;
  s.ignoreLimits = %t;
  window.paced = { refused: 0, resent: 0, rejoined: false };
  s.addEventListener("room", (e) => {
    if (e.detail.room === "lobby" && window.paced.refused > 0) window.paced.rejoined = true;
  });
  s.addEventListener("error", (e) => {
    const m = e.detail;
    if (m.room !== "lobby" || !m.seq || (m.code !== "rate" && m.code !== "unavailable")) return;
    window.paced.refused++;
    if (window.paced.rejoined) window.paced.resent++;
  });
  return true;
})()`, ignoreLimits))

	typed = "the quick brown fox jumps over the lazy dog"
	eval[bool](t, ann, fmt.Sprintf(`(() => { for (const ch of %q) window.switchboard.session.sendText("lobby", ch); return true; })()`, typed))
	if got := receivedLine(t, bob, "ann", st.State.Seqs["ann"], len(typed)); got != typed {
		t.Errorf("bob got %q, want %q", got, typed)
	}
	poll[bool](t, ann, "every chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)
	counts := eval[map[string]any](t, ann, `window.paced`)
	refused, resent = int(counts["refused"].(float64)), int(counts["resent"].(float64))
	t.Logf("%d chunks typed, %d refused in all, %d after the first re-join", len(typed), refused, resent)
	return typed, refused, resent
}
