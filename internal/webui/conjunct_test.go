package webui_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// The Go package rtt segments text by Unicode 15.0 (uniseg), browsers by
// their own later version, which joins Indic conjuncts (GB9c, Unicode
// 15.1): "क्ष" (KA VIRAMA SSA) is one character to Intl.Segmenter, two to
// rtt ("क्" and "ष"). static/rtt.js (clusterStarts) splits the browser's
// clusters again where GB9c joined them, so that the page counts and
// erases what the node, the Go clients and every later joiner do. Before,
// the page erased a whole conjunct for one BACKSPACE that took only its
// last consonant everywhere else, and sent one BACKSPACE for it.

// goErasures is what rtt does with text and BACKSPACEs: the length in
// UTF-16 code units of the line holding text, and after each BACKSPACE
// until it is empty.
func goErasures(text string) []int {
	room := rtt.NewRoom(0)
	room.Apply("a", 0, text)
	var lens []int
	for {
		line := room.Live("a")
		lens = append(lens, len(utf16.Encode([]rune(line))))
		if line == "" {
			return lens
		}
		room.Apply("a", 0, "\b")
	}
}

// segmentTexts are the texts TestBrowserSegmentsAsGo segments: every
// character of the Indic blocks after a consonant and a virama of each
// script with a virama (the six of GB9c's Linkers, and three without),
// directly, with ZWJ between, and with a nukta and ZWNJ around the
// virama; then (from the index it returns) random texts of Indic letters
// and signs, marks, joiners, Prepend characters, emoji, regional
// indicators and Hangul. Only characters Unicode 15.0 assigns (Go's
// unicode tables, those of rtt's uniseg): a character assigned since has
// properties 15.0 does not know, a difference of another kind.
func segmentTexts() (texts []string, random int) {
	assigned := func(r rune) bool {
		return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs, unicode.Cf)
	}
	viramas := [][2]rune{
		{0x0915, 0x094d}, {0x0995, 0x09cd}, {0x0a95, 0x0acd}, {0x0b15, 0x0b4d}, {0x0c15, 0x0c4d}, {0x0d15, 0x0d4d},
		{0x0a15, 0x0a4d}, {0x0b95, 0x0bcd}, {0x0c95, 0x0ccd}, // Gurmukhi, Tamil, Kannada: no InCB Linker
	}
	for _, kv := range viramas {
		k, v := string(kv[0]), string(kv[1])
		for r := rune(0x0900); r < 0x0e00; r++ {
			if !assigned(r) {
				continue
			}
			c := string(r)
			texts = append(texts, k+v+c, k+v+"\u200d"+c, k+"\u093c"+v+"\u200c"+c)
		}
	}
	alphabet := []rune{
		0x0915, 0x0937, 0x0924, 0x0930, 0x0995, 0x09b7, 0x0a95, 0x0b15, 0x0c15, 0x0c37, 0x0d15, 0x0d37, // consonants
		0x094d, 0x094d, 0x09cd, 0x0acd, 0x0b4d, 0x0c4d, 0x0c4d, 0x0d4d, 0x0a4d, 0x0bcd, 0x0ccd, // viramas
		0x0c95, 0x0b95, 0x0a15, 0x0905, 0x0966, // other letters, a digit
		0x093c, 0x093f, 0x0940, 0x0941, 0x0902, 0x0903, 0x0951, 0x09be, 0x0d3e, // nukta, vowel signs, other signs
		0x200d, 0x200c, 0x0300, 0x0488, 0x034f, 0xfe0f, // marks and joiners
		0x0600, 0x0d4e, 0x11f02, // Prepend
		'a', ' ', 0x1f600, 0x1f3fb, 0x2764, 0x1f1e6, 0x1f1eb, 0x1100, 0x1161, 0x11a8, 0xac00, 0xe0041,
	}
	random = len(texts)
	rng := rand.New(rand.NewPCG(15, 1))
	for range 3000 {
		var b strings.Builder
		for range 1 + rng.IntN(12) {
			if rng.IntN(4) == 0 {
				if r := 0x0900 + rune(rng.IntN(0x0500)); assigned(r) {
					b.WriteRune(r)
					continue
				}
			}
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		texts = append(texts, b.String())
	}
	return texts, random
}

// TestBrowserSegmentsAsGo: static/rtt.js erases and counts the
// characters of each text as package rtt does: through a Room
// (BACKSPACEs one by one after the text) and graphemes() (the number of
// BACKSPACEs that empty the text, as the compose box sends them); the
// random texts also typed one code point a chunk, and by backspace().
func TestBrowserSegmentsAsGo(t *testing.T) {
	texts, random := segmentTexts()
	want := make([][]int, len(texts))
	for i, s := range texts {
		want[i] = goErasures(s)
	}
	textsJSON, err := json.Marshal(texts)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	tab := scriptPage(t, "segments")
	bad := eval[[]string](t, tab, `(async () => {
  const rtt = await import("/static/rtt.js");
  const texts = `+string(textsJSON)+`, want = `+string(wantJSON)+`, random = `+fmt.Sprint(random)+`;
  const hex = (s) => [...s].map((c) => c.codePointAt(0).toString(16).padStart(4, "0")).join(" ");
  const erasures = (room) => {
    const lens = [];
    for (;;) {
      const line = room.live("a");
      lens.push(line.length);
      if (line === "") return lens;
      room.apply("a", 0, "\b");
    }
  };
  const bad = [];
  for (let k = 0; k < texts.length && bad.length < 40; k++) {
    const s = texts[k], w = JSON.stringify(want[k]);
    const whole = new rtt.Room();
    whole.apply("a", 0, s);
    const got = { "in one chunk": JSON.stringify(erasures(whole)) };
    if (k >= random) {
      const pieces = new rtt.Room();
      for (const c of s) pieces.apply("a", 0, c);
      got["typed piece by piece"] = JSON.stringify(erasures(pieces));
      const cut = [s.length];
      for (let line = s; line !== ""; ) cut.push((line = rtt.backspace(line)).length);
      got["by backspace()"] = JSON.stringify(cut);
    }
    for (const [how, g] of Object.entries(got)) {
      if (g !== w) bad.push(hex(s) + " " + how + ": line lengths " + g + ", Go " + w);
    }
    if (rtt.graphemes(s) !== want[k].length - 1) {
      bad.push(hex(s) + ": graphemes() " + rtt.graphemes(s) + ", Go erases it in " + (want[k].length - 1));
    }
  }
  return bad;
})()`)
	for _, b := range bad {
		t.Error(b)
	}
	if len(bad) > 0 {
		t.Logf("of %d texts (the first differences, up to 40)", len(texts))
	}
}

// TestBrowserConjunctsErasedAsGo: on the real page against a node, what
// the compose box sends for erasures in Indic conjuncts leaves the node's
// copy of the line (as bob, a Go member, applies ann's chunks with
// package rtt) equal to the box and to the page's own copy; and a Go
// member's "क्ष" then BACKSPACE shows on the page as "क्", as everywhere
// else. Before, erasing "ष" from "क्ष" in the box sent a BACKSPACE and
// "क्" again ("क्क्" for everyone else), and the page showed bob's line
// empty.
func TestBrowserConjunctsErasedAsGo(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	n := c.Nodes[0]
	ann := page(t, sharedBrowser(t), n.HTTPAddr(), "ann")
	bob := joinTCP(t, n.Addr(), "bob")
	st := bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	last := st.State.Seqs["ann"]

	// What ann's compose box holds, step by step: conjuncts typed and
	// erased consonant by consonant, at the end and in the middle; in
	// Devanagari, Bengali, Telugu and Malayalam, with ZWJ, and with text
	// after the conjunct. Enter ends each group's line, so that a
	// difference in one does not carry into the next.
	groups := [][]string{
		{"क्ष", "क्", "क्षत्र", "क्ष", ""},
		{"कक्ष", "कक", "क्षa", "क्a"},
		{"ক্ষ", "ক্", "ক্ষমা", "ক্ষম"},
		{"క్ష", "క్", "క్షణం", "క్ష"},
		{"ക്ഷ", "ക"},
		{"क्\u200dष", "क्\u200d", "क्\u200dषण", "क्\u200d"},
		{"स्त्री करो", "स्त्री", "स्"},
	}
	room := rtt.NewRoom(0)
	for _, group := range groups {
		for i, box := range append(group, "") {
			enter := i == len(group) // then the box is empty, its line ended
			boxJSON, err := json.Marshal(box)
			if err != nil {
				t.Fatal(err)
			}
			seq := uint64(eval[float64](t, ann, fmt.Sprintf(`(() => {
  const box = document.querySelector("#compose");
  if (%t) {
    box.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
  } else {
    box.value = %s;
    box.dispatchEvent(new Event("input"));
  }
  return window.switchboard.room.seq("ann");
})()`, enter, boxJSON)))
			var chunks []string
			for last < seq {
				msg := bob.next(t, fmt.Sprintf("ann's chunk %d", last+1), func(m wire.Message) bool { return m.Op == wire.OpText && m.From == "ann" })
				room.Apply("ann", 0, msg.T)
				chunks = append(chunks, msg.T)
				last = msg.Seq
			}
			node := room.Live("ann")
			own := eval[string](t, ann, `window.switchboard.room.live("ann")`)
			if enter {
				if node != "" || own != "" {
					t.Errorf("after Enter: the node's line %+q, the page's own %+q", node, own)
				}
			} else if node != box || own != box {
				t.Errorf("compose box %q (%+q): sent %+q; the node's line %+q, the page's own %+q", box, box, chunks, node, own)
			}
		}
	}

	// bob, with the Go rules, types a conjunct and erases its last
	// consonant; then a Telugu one after text.
	seq := st.State.Seqs["bob"]
	for _, t1 := range []string{"क्ष", "\b", " క్ష", "\b"} {
		seq++
		bob.send(t, wire.Message{Op: wire.OpText, Room: "lobby", Seq: seq, T: t1})
	}
	want := "क् క్"
	goRoom := rtt.NewRoom(0)
	for _, t1 := range []string{"क्ष", "\b", " క్ష", "\b"} {
		goRoom.Apply("bob", 0, t1)
	}
	if got := goRoom.Live("bob"); got != want {
		t.Fatalf("package rtt makes bob's line %+q, not %+q", got, want)
	}
	poll[bool](t, ann, "bob's last chunk on ann's page", fmt.Sprintf(`window.switchboard.room.seq("bob") === %d`, seq))
	model := eval[string](t, ann, `window.switchboard.room.live("bob")`)
	shown := eval[string](t, ann, liveOf("bob"))
	if model != want || shown != want {
		t.Errorf("bob's line on ann's page: %+q (shown %+q), want %+q as package rtt has it", model, shown, want)
	}
}
