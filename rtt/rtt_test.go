package rtt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// chunk is one Apply call.
type chunk struct {
	from string
	seq  uint64
	text string
}

// run applies chunks to r and returns their results.
func run(r *Room, chunks ...chunk) []Result {
	var out []Result
	for _, c := range chunks {
		out = append(out, r.Apply(c.from, c.seq, c.text))
	}
	return out
}

// texts returns the texts of lines.
func texts(lines []Line) []string {
	out := []string{}
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

var x4095 = strings.Repeat("x", MaxLineBytes-1)
var x4096 = strings.Repeat("x", MaxLineBytes)

// TestApplyText feeds one sender's chunks, numbered from 1, and checks the
// completed lines and the current line.
func TestApplyText(t *testing.T) {
	tests := []struct {
		name  string
		in    []string
		lines []string
		live  string
	}{
		{name: "plain", in: []string{"hello"}, live: "hello"},
		{name: "empty chunk", in: []string{"a", "", "b"}, live: "ab"},
		{name: "backspace ascii", in: []string{"abc\b"}, live: "ab"},
		{name: "backspace per chunk", in: []string{"abc", "\b", "\b", "d"}, live: "ad"},
		{name: "backspace past start", in: []string{"ab\b\b\b\b"}, live: ""},
		{name: "backspace then text", in: []string{"\b\bok"}, live: "ok"},
		{name: "backspace stops at completed line", in: []string{"hi\n\b\b", "\b"}, lines: []string{"hi"}, live: ""},
		{name: "backspace after crlf", in: []string{"hi\r\n", "\b"}, lines: []string{"hi"}, live: ""},
		{name: "combining acute", in: []string{"cafe\u0301\b"}, live: "caf"},
		{name: "precomposed", in: []string{"caf\u00e9\b"}, live: "caf"},
		{name: "stacked marks", in: []string{"xa\u0323\u0302\b"}, live: "x"},
		{name: "mark in its own chunk", in: []string{"xe", "\u0301", "\b"}, live: "x"},
		{name: "spacing mark", in: []string{"a\u0915\u093f\b"}, live: "a"},
		{name: "keycap", in: []string{"a1\ufe0f\u20e3\b"}, live: "a"},
		{name: "variation selector", in: []string{"a\u263a\ufe0f\b"}, live: "a"},
		{name: "skin tone", in: []string{"a\U0001F44D\U0001F3FD\b"}, live: "a"},
		{name: "zwj family", in: []string{"a👨‍👩‍👧‍👦\b"}, live: "a"},
		{name: "zwj with skin tone", in: []string{"a👩🏽‍💻\b"}, live: "a"},
		{name: "zwj rainbow flag", in: []string{"a🏳️‍🌈\b"}, live: "a"},
		{name: "zwj family twice", in: []string{"👨‍👩‍👧👨‍👩‍👧\b"}, live: "👨‍👩‍👧"},
		{name: "zwj between letters joins nothing", in: []string{"a\u200db\b"}, live: "a\u200d"},
		{name: "trailing zwj", in: []string{"a\U0001F468\u200d\b"}, live: "a"},
		{name: "flag", in: []string{"x🇸🇪\b"}, live: "x"},
		{name: "two flags", in: []string{"🇸🇪🇫🇮\b"}, live: "🇸🇪"},
		{name: "two flags erased", in: []string{"🇸🇪🇫🇮\b\b"}, live: ""},
		{name: "odd indicator", in: []string{"🇸🇪🇫\b"}, live: "🇸🇪"},
		{name: "subdivision flag", in: []string{"a🏴󠁧󠁢󠁳󠁣󠁴󠁿\b"}, live: "a"},
		{name: "cjk", in: []string{"日本語\b"}, live: "日本"},
		{name: "cjk typed", in: []string{"日", "本", "\b", "語"}, live: "日語"},
		{name: "hangul jamo", in: []string{"a\u1112\u1161\u11ab\b"}, live: "a"},
		{name: "hangul syllable", in: []string{"한국\b"}, live: "한"},
		{name: "lone marks at start", in: []string{"\u0301\u0301\b"}, live: ""},
		{name: "replacement character", in: []string{"a\ufffd\b"}, live: "a"},

		{name: "lf", in: []string{"a\nb"}, lines: []string{"a"}, live: "b"},
		{name: "crlf", in: []string{"a\r\nb"}, lines: []string{"a"}, live: "b"},
		{name: "lone cr", in: []string{"a\rb"}, lines: []string{"a"}, live: "b"},
		{name: "crlf split", in: []string{"a\r", "\nb"}, lines: []string{"a"}, live: "b"},
		{name: "crlf split, lf alone", in: []string{"a\r", "\n", "b"}, lines: []string{"a"}, live: "b"},
		{name: "cr cr lf", in: []string{"a\r\r\n"}, lines: []string{"a", ""}, live: ""},
		{name: "lf lf", in: []string{"a\n\n"}, lines: []string{"a", ""}, live: ""},
		{name: "lf cr", in: []string{"a\n\rb"}, lines: []string{"a", ""}, live: "b"},
		{name: "cr, text, lf", in: []string{"a\r", "b\n"}, lines: []string{"a", "b"}, live: ""},
		{name: "cr, backspace, lf", in: []string{"a\r", "\b\n"}, lines: []string{"a", ""}, live: ""},
		{name: "line and paragraph separators", in: []string{"a\u2028b\u2029c"}, lines: []string{"a", "b"}, live: "c"},
		{name: "empty line", in: []string{"\u2028"}, lines: []string{""}, live: ""},
		// A separator after a CR is a line end of its own, and an LF after
		// it another: before, the CR still claimed the LF, and "a\r\u2028\nb"
		// ended one line fewer than "a\n\u2028\nb".
		{name: "cr, line separator, lf", in: []string{"a\r\u2028\nb"}, lines: []string{"a", "", ""}, live: "b"},
		{name: "cr, paragraph separator, lf", in: []string{"a\r\u2029\nb"}, lines: []string{"a", "", ""}, live: "b"},
		{name: "cr, line separator, lf in the next chunk", in: []string{"a\r\u2028", "\nb"}, lines: []string{"a", "", ""}, live: "b"},

		{name: "bom at start", in: []string{"\ufeffhi"}, live: "hi"},
		{name: "bom anywhere", in: []string{"h\ufeffi", "\ufeff"}, live: "hi"},
		{name: "bel", in: []string{"a\ab\a"}, live: "ab"},
		{name: "c0 dropped", in: []string{"a\x00\x01\x0b\x0c\x1c\x1fb"}, live: "ab"},
		{name: "del and c1 dropped", in: []string{"a\x7f\u0080\u0085\u009fb"}, live: "ab"},
		{name: "tab is a space", in: []string{"a\tb"}, live: "a b"},
		{name: "dropped between cr and lf", in: []string{"a\r\x00\ufeff\a", "\n"}, lines: []string{"a"}, live: ""},
		{name: "sgr dropped", in: []string{"\x1b[1;31mred\x1b[0m!"}, live: "red!"},
		{name: "int dropped", in: []string{"a\x1bab"}, live: "ab"},
		{name: "c1 csi dropped", in: []string{"\u009b31mx"}, live: "x"},
		{name: "esc alone", in: []string{"a\x1b\u00e9"}, live: "a\u00e9"},
		{name: "esc at chunk end", in: []string{"a\x1b", "b"}, live: "ab"},
		{name: "csi cut by a character", in: []string{"\x1b[31\u00e9"}, live: "\u00e9"},
		{name: "csi cut by chunk end", in: []string{"\x1b[3", "1mx"}, live: "1mx"},

		{name: "invalid byte", in: []string{"a\xffb"}, live: "a\ufffdb"},
		{name: "invalid run", in: []string{"a\xff\xfe\xfdb"}, live: "a\ufffdb"},
		{name: "cut character", in: []string{"\xe6\x97"}, live: "\ufffd"},
		{name: "character cut across chunks", in: []string{"\xe6", "\x97\xa5"}, live: "\ufffd\ufffd"},
		{name: "surrogate", in: []string{"a\xed\xa0\x80"}, live: "a\ufffd"},
		{name: "overlong", in: []string{"\xc0\xaf"}, live: "\ufffd"},
		{name: "invalid then backspace", in: []string{"a\xff\b"}, live: "a"},

		{name: "line at the limit", in: []string{x4096}, live: x4096},
		{name: "line over the limit", in: []string{x4096 + "y"}, lines: []string{x4096}, live: "y"},
		{name: "limit typed", in: []string{x4096, "y"}, lines: []string{x4096}, live: "y"},
		{name: "limit never splits a character", in: []string{x4095 + "é"}, lines: []string{x4095}, live: "é"},
		{name: "backspace after forced break", in: []string{x4096 + "y\b\b"}, lines: []string{x4096}, live: ""},
		{name: "paste of two limits", in: []string{x4096 + x4096 + x4096}, lines: []string{x4096, x4096}, live: x4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRoom(0)
			var got []Line
			for i, text := range tt.in {
				got = append(got, r.Apply("ann", uint64(i+1), text).Lines...)
			}
			if diff := cmp.Diff(texts(got), append([]string{}, tt.lines...)); diff != "" {
				t.Errorf("completed lines (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(texts(r.State().Lines), append([]string{}, tt.lines...)); diff != "" {
				t.Errorf("history (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(r.Live("ann"), tt.live); diff != "" {
				t.Errorf("live line (-got +want):\n%s", diff)
			}
		})
	}
}

// TestApplyResult checks the Result of every chunk.
func TestApplyResult(t *testing.T) {
	tests := []struct {
		name string
		in   []chunk
		want []Result
		st   State
	}{
		{
			name: "line ends",
			in:   []chunk{{"ann", 1, "a\r"}, {"ann", 2, "\nb\u2028c"}},
			want: []Result{
				{Lines: []Line{{"ann", "a"}}},
				{Lines: []Line{{"ann", "b"}}},
			},
			st: State{
				Lines:     []Line{{"ann", "a"}, {"ann", "b"}},
				Live:      map[string]string{"ann": "c"},
				Seqs:      map[string]uint64{"ann": 2},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "pending cr kept",
			in:   []chunk{{"ann", 1, "a\r"}},
			want: []Result{{Lines: []Line{{"ann", "a"}}}},
			st: State{
				Lines:     []Line{{"ann", "a"}},
				Live:      map[string]string{"ann": ""},
				Seqs:      map[string]uint64{"ann": 1},
				PendingCR: map[string]bool{"ann": true},
			},
		},
		{
			// Before, the CR was still pending after the separator.
			name: "no pending cr after a separator",
			in:   []chunk{{"ann", 1, "a\r\u2028"}},
			want: []Result{{Lines: []Line{{"ann", "a"}, {"ann", ""}}}},
			st: State{
				Lines:     []Line{{"ann", "a"}, {"ann", ""}},
				Live:      map[string]string{"ann": ""},
				Seqs:      map[string]uint64{"ann": 1},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "alerts",
			in:   []chunk{{"ann", 1, "\a"}, {"ann", 2, "hey\a\a"}},
			want: []Result{{Alerts: 1}, {Alerts: 2}},
			st: State{
				Lines:     []Line{},
				Live:      map[string]string{"ann": "hey"},
				Seqs:      map[string]uint64{"ann": 2},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "in order",
			in:   []chunk{{"ann", 1, "a"}, {"ann", 2, "b"}, {"ann", 3, "c"}},
			want: []Result{{}, {}, {}},
			st: State{
				Lines:     []Line{},
				Live:      map[string]string{"ann": "abc"},
				Seqs:      map[string]uint64{"ann": 3},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "duplicate dropped",
			in:   []chunk{{"ann", 1, "a\n"}, {"ann", 1, "a\n"}, {"ann", 2, "b"}, {"ann", 1, "a\n"}, {"ann", 2, "b"}},
			want: []Result{{Lines: []Line{{"ann", "a"}}}, {Duplicate: true}, {}, {Duplicate: true}, {Duplicate: true}},
			st: State{
				Lines:     []Line{{"ann", "a"}},
				Live:      map[string]string{"ann": "b"},
				Seqs:      map[string]uint64{"ann": 2},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "gap",
			in:   []chunk{{"ann", 1, "a"}, {"ann", 4, "d"}, {"ann", 5, "e"}},
			want: []Result{{}, {Gap: true}, {}},
			st: State{
				Lines:     []Line{},
				Live:      map[string]string{"ann": "a\ufffdde"},
				Seqs:      map[string]uint64{"ann": 5},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "gap before the first chunk",
			in:   []chunk{{"ann", 2, "b"}},
			want: []Result{{Gap: true}},
			st: State{
				Lines:     []Line{},
				Live:      map[string]string{"ann": "\ufffdb"},
				Seqs:      map[string]uint64{"ann": 2},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "gap marker erased",
			in:   []chunk{{"ann", 1, "a"}, {"ann", 3, "\b"}},
			want: []Result{{}, {Gap: true}},
			st: State{
				Lines:     []Line{},
				Live:      map[string]string{"ann": "a"},
				Seqs:      map[string]uint64{"ann": 3},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "gap marker in a line",
			in:   []chunk{{"ann", 1, "a"}, {"ann", 3, "\n"}},
			want: []Result{{}, {Gap: true, Lines: []Line{{"ann", "a\ufffd"}}}},
			st: State{
				Lines:     []Line{{"ann", "a\ufffd"}},
				Live:      map[string]string{"ann": ""},
				Seqs:      map[string]uint64{"ann": 3},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "gap marker at the limit",
			in:   []chunk{{"ann", 1, x4096}, {"ann", 3, ""}},
			want: []Result{{}, {Gap: true, Lines: []Line{{"ann", x4096}}}},
			st: State{
				Lines:     []Line{{"ann", x4096}},
				Live:      map[string]string{"ann": "\ufffd"},
				Seqs:      map[string]uint64{"ann": 3},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "unsequenced",
			in:   []chunk{{"ann", 0, "a"}, {"ann", 0, "a"}},
			want: []Result{{}, {}},
			st: State{
				Lines:     []Line{},
				Live:      map[string]string{"ann": "aa"},
				Seqs:      map[string]uint64{},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "unsequenced between sequenced",
			in:   []chunk{{"ann", 1, "a"}, {"ann", 0, "b"}, {"ann", 2, "c"}, {"ann", 0, "d"}},
			want: []Result{{}, {}, {}, {}},
			st: State{
				Lines:     []Line{},
				Live:      map[string]string{"ann": "abcd"},
				Seqs:      map[string]uint64{"ann": 2},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "seqs are per sender",
			in:   []chunk{{"ann", 1, "a"}, {"bob", 1, "b"}, {"bob", 2, "c"}, {"ann", 2, "d"}},
			want: []Result{{}, {}, {}, {}},
			st: State{
				Lines:     []Line{},
				Live:      map[string]string{"ann": "ad", "bob": "bc"},
				Seqs:      map[string]uint64{"ann": 2, "bob": 2},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "erasure isolation",
			in: []chunk{
				{"ann", 1, "hello"},
				{"bob", 1, "wor"},
				{"ann", 2, "\b\b\b\b\b\b\b\b"},
				{"bob", 2, "ld\n"},
				{"ann", 3, "hi"},
				{"bob", 3, "\b\b\b"},
			},
			want: []Result{{}, {}, {}, {Lines: []Line{{"bob", "world"}}}, {}, {}},
			st: State{
				Lines:     []Line{{"bob", "world"}},
				Live:      map[string]string{"ann": "hi", "bob": ""},
				Seqs:      map[string]uint64{"ann": 3, "bob": 3},
				PendingCR: map[string]bool{},
			},
		},
		{
			name: "line ends isolated",
			in: []chunk{
				{"ann", 1, "one\r"},
				{"bob", 1, "\ntwo"},
				{"ann", 2, "\nthree\n"},
			},
			want: []Result{
				{Lines: []Line{{"ann", "one"}}},
				{Lines: []Line{{"bob", ""}}},
				{Lines: []Line{{"ann", "three"}}},
			},
			st: State{
				Lines:     []Line{{"ann", "one"}, {"bob", ""}, {"ann", "three"}},
				Live:      map[string]string{"ann": "", "bob": "two"},
				Seqs:      map[string]uint64{"ann": 2, "bob": 1},
				PendingCR: map[string]bool{},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRoom(0)
			got := run(r, tt.in...)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("results (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(r.State(), tt.st); diff != "" {
				t.Errorf("state (-got +want):\n%s", diff)
			}
		})
	}
}

func TestHistoryCap(t *testing.T) {
	tests := []struct {
		name     string
		maxLines int
		lines    int
		want     int // the number of the oldest line kept
	}{
		{name: "default under", maxLines: 0, lines: 99, want: 0},
		{name: "default at", maxLines: 0, lines: 100, want: 0},
		{name: "default over", maxLines: 0, lines: 150, want: 50},
		{name: "default far over", maxLines: -1, lines: 1001, want: 901},
		{name: "three", maxLines: 3, lines: 7, want: 4},
		{name: "one", maxLines: 1, lines: 5, want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRoom(tt.maxLines)
			for i := range tt.lines {
				from := []string{"ann", "bob"}[i%2]
				r.Apply(from, 0, fmt.Sprintf("line %d\n", i))
			}
			var want []string
			for i := tt.want; i < tt.lines; i++ {
				want = append(want, fmt.Sprintf("line %d", i))
			}
			if diff := cmp.Diff(texts(r.State().Lines), append([]string{}, want...)); diff != "" {
				t.Errorf("history (-got +want):\n%s", diff)
			}
		})
	}
}

func TestHistoryCapOneChunk(t *testing.T) {
	r := NewRoom(2)
	res := r.Apply("ann", 1, "a\nb\nc\nd\ne")
	if diff := cmp.Diff(texts(res.Lines), []string{"a", "b", "c", "d"}); diff != "" {
		t.Errorf("completed lines (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(texts(r.State().Lines), []string{"c", "d"}); diff != "" {
		t.Errorf("history (-got +want):\n%s", diff)
	}
}

func TestForget(t *testing.T) {
	r := NewRoom(0)
	run(r, chunk{"ann", 1, "done\nhalf"}, chunk{"bob", 1, "bob's"}, chunk{"eve", 5, "x\b\b"})

	line, ok := r.Forget("ann")
	if diff := cmp.Diff(line, Line{"ann", "half"}); diff != "" || !ok {
		t.Errorf("Forget(ann) = %v, %v; want {ann half}, true (-got +want):\n%s", line, ok, diff)
	}
	if line, ok := r.Forget("eve"); ok {
		t.Errorf("Forget(eve) with an empty line = %v, true; want false", line)
	}
	if line, ok := r.Forget("nobody"); ok {
		t.Errorf("Forget(nobody) = %v, true; want false", line)
	}
	if line, ok := r.Forget("ann"); ok {
		t.Errorf("second Forget(ann) = %v, true; want false", line)
	}
	want := State{
		Lines:     []Line{{"ann", "done"}, {"ann", "half"}},
		Live:      map[string]string{"bob": "bob's"},
		Seqs:      map[string]uint64{"bob": 1},
		PendingCR: map[string]bool{},
	}
	if diff := cmp.Diff(r.State(), want); diff != "" {
		t.Errorf("state after Forget (-got +want):\n%s", diff)
	}
	// A sender who comes back counts from 1 again.
	if res := r.Apply("ann", 1, "back"); res.Duplicate || res.Gap {
		t.Errorf("Apply(ann, 1) after Forget = %+v; want neither duplicate nor gap", res)
	}
}

func TestForgetPendingCR(t *testing.T) {
	r := NewRoom(0)
	r.Apply("ann", 1, "a\r")
	r.Forget("ann")
	r.Apply("ann", 1, "\nb")
	if diff := cmp.Diff(texts(r.State().Lines), []string{"a", ""}); diff != "" {
		t.Errorf("history (-got +want):\n%s", diff)
	}
}

func TestStateIsACopy(t *testing.T) {
	r := NewRoom(0)
	run(r, chunk{"ann", 1, "one\ntwo"}, chunk{"bob", 1, "\r"})
	st := r.State()
	want := r.State()

	st.Lines[0].Text = "changed"
	st.Lines = append(st.Lines, Line{"eve", "added"})
	st.Live["ann"] = "changed"
	st.Live["eve"] = "added"
	st.Seqs["ann"] = 99
	st.PendingCR["bob"] = false
	if diff := cmp.Diff(r.State(), want); diff != "" {
		t.Errorf("state changed through a copy (-got +want):\n%s", diff)
	}
}

func TestLoadIsACopy(t *testing.T) {
	st := State{
		Lines: []Line{{"ann", "one"}},
		Live:  map[string]string{"ann": "two"},
		Seqs:  map[string]uint64{"ann": 1},
	}
	r, err := FromState(0, st)
	if err != nil {
		t.Fatal(err)
	}
	want := r.State()
	st.Lines[0].Text = "changed"
	st.Live["ann"] = "changed"
	st.Seqs["ann"] = 9
	if diff := cmp.Diff(r.State(), want); diff != "" {
		t.Errorf("state changed through the loaded snapshot (-got +want):\n%s", diff)
	}
}

func TestRestore(t *testing.T) {
	// The room a server had before it died.
	old := NewRoom(5)
	run(old,
		chunk{"ann", 1, "hello\nwor"},
		chunk{"bob", 1, "hi\r"},
		chunk{"eve", 0, "unsequenced"},
	)
	snap := old.State()

	got, err := FromState(5, snap)
	if err != nil {
		t.Fatalf("FromState: %v", err)
	}
	if diff := cmp.Diff(got.State(), snap); diff != "" {
		t.Fatalf("restored state (-got +want):\n%s", diff)
	}

	// The restored room goes on exactly as the old one would.
	next := []chunk{
		{"ann", 1, "hello\n"}, // a resend: dropped
		{"ann", 2, "ld\n"},
		{"bob", 2, "\nthere"}, // the LF of bob's CR LF
		{"eve", 0, "!"},
		{"bob", 4, "?"}, // a gap
	}
	if diff := cmp.Diff(run(got, next...), run(old, next...)); diff != "" {
		t.Errorf("results after restore (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(got.State(), old.State()); diff != "" {
		t.Errorf("state after restore (-got +want):\n%s", diff)
	}
	want := State{
		Lines:     []Line{{"ann", "hello"}, {"bob", "hi"}, {"ann", "world"}},
		Live:      map[string]string{"ann": "", "bob": "there\ufffd?", "eve": "unsequenced!"},
		Seqs:      map[string]uint64{"ann": 2, "bob": 4},
		PendingCR: map[string]bool{},
	}
	if diff := cmp.Diff(got.State(), want); diff != "" {
		t.Errorf("state (-got +want):\n%s", diff)
	}
}

func TestLoadReplacesWholesale(t *testing.T) {
	r := NewRoom(3)
	run(r, chunk{"ann", 7, "old\nstuff\r"}, chunk{"zed", 3, "gone"})
	snap := State{
		Lines: []Line{{"a", "1"}, {"b", "2"}, {"a", "3"}, {"b", "4"}, {"a", "5"}},
		Live:  map[string]string{"a": "six"},
		Seqs:  map[string]uint64{"a": 6, "b": 4},
	}
	if err := r.Load(snap); err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := State{
		Lines:     []Line{{"a", "3"}, {"b", "4"}, {"a", "5"}}, // trimmed to the room's limit
		Live:      map[string]string{"a": "six", "b": ""},
		Seqs:      map[string]uint64{"a": 6, "b": 4},
		PendingCR: map[string]bool{},
	}
	if diff := cmp.Diff(r.State(), want); diff != "" {
		t.Errorf("state after Load (-got +want):\n%s", diff)
	}
	// ann's seq 7 and pending CR are gone with the old state.
	if res := r.Apply("ann", 1, "\nnew"); res.Duplicate || len(res.Lines) != 1 {
		t.Errorf("Apply(ann, 1, LF) after Load = %+v; want one empty line", res)
	}
	if res := r.Apply("a", 6, "x"); !res.Duplicate {
		t.Errorf("Apply(a, 6) after Load = %+v; want a duplicate", res)
	}
}

func TestLoadPendingCR(t *testing.T) {
	for _, carried := range []bool{true, false} {
		t.Run(fmt.Sprintf("carried=%v", carried), func(t *testing.T) {
			old := NewRoom(0)
			old.Apply("ann", 1, "a\r")
			snap := old.State()
			if !carried {
				snap.PendingCR = nil
			}
			r, err := FromState(0, snap)
			if err != nil {
				t.Fatal(err)
			}
			r.Apply("ann", 2, "\nb")
			want := []string{"a"}
			if !carried {
				want = []string{"a", ""} // the documented cost of dropping it
			}
			if diff := cmp.Diff(texts(r.State().Lines), want); diff != "" {
				t.Errorf("history (-got +want):\n%s", diff)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		st   State
		want string
	}{
		{
			name: "invalid utf-8 in a line",
			st:   State{Lines: []Line{{"ann", "ok"}, {"bob", "a\xffb"}}},
			want: `rtt: invalid state: line 1 from "bob": not valid UTF-8`,
		},
		{
			name: "control character in a line",
			st:   State{Lines: []Line{{"ann", "a\nb"}}},
			want: `rtt: invalid state: line 0 from "ann": holds U+000A`,
		},
		{
			name: "line separator in a live line",
			st:   State{Live: map[string]string{"ann": "a\u2028b"}},
			want: `rtt: invalid state: live line of "ann": holds U+2028`,
		},
		{
			name: "bom in a live line",
			st:   State{Live: map[string]string{"ann": "\ufeffa"}},
			want: `rtt: invalid state: live line of "ann": holds U+FEFF`,
		},
		{
			name: "c1 control",
			st:   State{Live: map[string]string{"ann": "\u009b"}},
			want: `rtt: invalid state: live line of "ann": holds U+009B`,
		},
		{
			name: "live line too long",
			st:   State{Live: map[string]string{"ann": x4096 + "y"}},
			want: `rtt: invalid state: live line of "ann": 4097 bytes, more than 4096`,
		},
		{
			name: "completed line too long",
			st:   State{Lines: []Line{{"ann", x4096 + "y"}}},
			want: `rtt: invalid state: line 0 from "ann": 4097 bytes, more than 4096`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRoom(0)
			run(r, chunk{"ann", 1, "keep\nme"})
			before := r.State()
			err := r.Load(tt.st)
			if err == nil {
				t.Fatalf("Load succeeded; want %q", tt.want)
			}
			if !errors.Is(err, ErrState) {
				t.Errorf("Load error %v does not wrap ErrState", err)
			}
			if diff := cmp.Diff(err.Error(), tt.want); diff != "" {
				t.Errorf("Load error (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(r.State(), before); diff != "" {
				t.Errorf("Load changed the room on error (-got +want):\n%s", diff)
			}
			if _, err := FromState(0, tt.st); !errors.Is(err, ErrState) {
				t.Errorf("FromState error = %v; want ErrState", err)
			}
		})
	}
}

func TestLoadAccepts(t *testing.T) {
	st := State{
		Lines: []Line{{"ann", x4096}, {"bob", "\ufffd\u200d👨‍👩‍👧 \u0301"}, {"", ""}},
		Live:  map[string]string{"ann": x4096, "": "nameless"},
	}
	r, err := FromState(0, st)
	if err != nil {
		t.Fatalf("FromState: %v", err)
	}
	st.Seqs, st.PendingCR = map[string]uint64{}, map[string]bool{}
	if diff := cmp.Diff(r.State(), st); diff != "" {
		t.Errorf("state (-got +want):\n%s", diff)
	}
}

func TestEmptyRoom(t *testing.T) {
	want := State{
		Lines:     []Line{},
		Live:      map[string]string{},
		Seqs:      map[string]uint64{},
		PendingCR: map[string]bool{},
	}
	if diff := cmp.Diff(NewRoom(0).State(), want); diff != "" {
		t.Errorf("empty state (-got +want):\n%s", diff)
	}
	r, err := FromState(0, State{})
	if err != nil {
		t.Fatalf("FromState(empty): %v", err)
	}
	if diff := cmp.Diff(r.State(), want); diff != "" {
		t.Errorf("state from an empty snapshot (-got +want):\n%s", diff)
	}
	if got := r.Live("nobody"); got != "" {
		t.Errorf("Live(nobody) = %q; want empty", got)
	}
}

// BenchmarkApply measures typing (one character per chunk, a line every
// 60 characters) and a paste of 1 KiB of text in one chunk.
func BenchmarkApply(b *testing.B) {
	b.Run("type", func(b *testing.B) {
		const text = "The quick brown fox jumps over the lazy dog. Hello, 世界! 👍🏽\b"
		var chars []string
		for _, c := range text {
			chars = append(chars, string(c))
		}
		r := NewRoom(0)
		var seq uint64
		b.ReportAllocs()
		for b.Loop() {
			seq++
			r.Apply("ann", seq, chars[int(seq)%len(chars)])
			if seq%60 == 0 {
				r.Apply("ann", 0, "\n")
			}
		}
	})
	b.Run("paste1KiB", func(b *testing.B) {
		var sb strings.Builder
		for sb.Len() < 1024 {
			sb.WriteString("Lorem ipsum dolor sit amet, café naïve 日本語 👨‍👩‍👧\b.\r\n")
		}
		paste := sb.String()[:1024]
		for !utf8.ValidString(paste) {
			paste = paste[:len(paste)-1] // do not cut a character
		}
		r := NewRoom(0)
		var seq uint64
		b.SetBytes(int64(len(paste)))
		b.ReportAllocs()
		for b.Loop() {
			seq++
			r.Apply("ann", seq, paste)
		}
	})
}

// SequenceLen measures the sequence a line drops whole: ESC with a
// control sequence or a final byte, C1 CSI with its control sequence, a
// sequence cut short by another character or by the end; 0 before
// anything else.
func TestSequenceLen(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int
	}{
		{"\x1b[31mred", 5},
		{"\x1b[3", 3},
		{"\x1bared", 2},
		{"\x1b\x01", 1},
		{"\u009b31mred", 5},
		{"\u009b", 2},
		{"red", 0},
		{"", 0},
	} {
		if got := SequenceLen(tc.s); got != tc.want {
			t.Errorf("SequenceLen(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}
