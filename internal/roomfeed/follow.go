package roomfeed

import (
	"maps"
	"slices"
	"strings"

	"github.com/rivo/uniseg"

	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// follow is what a caller has been sent of one room: the room's text as
// the bridged session received it, each member's line as far as the
// caller has it, and who is in the room. A session that fails over joins
// the room again and receives its state: what the others typed, and who
// left, between the drop and that state came in no text or presence
// message, and the caller, who has no way to be shown a whole state,
// would never see it. follow tells what the state holds that the caller
// missed, as text in each sender's stream.
//
// It reads no clock and does no I/O; one goroutine owns it.
type follow struct {
	self     string
	room     *rtt.Room // nil until the first state
	maxLines int       // the lines room keeps
	users    map[string]bool
}

// in reports whether the caller came in: the room's first state came.
func (f *follow) in() bool { return f.room != nil }

func newFollow(self string) *follow {
	return &follow{self: self, maxLines: rtt.DefaultMaxLines, users: make(map[string]bool)}
}

// text takes a chunk of from's, numbered seq, and says what to send the
// caller: nothing for the caller's own text, nor for a chunk at or below
// a seq the caller has (one the state after a failover held already, or
// the same chunk received on both connections of a move); a chunk after
// a gap in from's seqs with the room's lost-text mark before it.
func (f *follow) text(from string, seq uint64, chunk string) (Text, bool) {
	if from == f.self {
		return Text{}, false
	}
	if f.room == nil {
		f.room = rtt.NewRoom(f.maxLines)
	}
	res := f.room.Apply(from, seq, chunk)
	if res.Duplicate {
		return Text{}, false
	}
	if res.Gap {
		// The room marked the chunks it lost (rtt.Room.Apply): so does
		// the caller's line, which stays the room's.
		chunk = "\uFFFD" + chunk
	}
	return Text{From: from, Text: chunk}, true
}

// presence takes a user coming into the room or leaving it, and says
// what to send the caller: the leaves.
func (f *follow) presence(user string, joined bool) (Text, bool) {
	if joined {
		f.users[user] = true
		return Text{}, false
	}
	delete(f.users, user)
	return Text{From: user, Leave: true}, true
}

// state takes the room's full state, the answer to a join, and returns
// what to send the caller. The first state is the room as the caller
// found it: nothing (a caller is shown the text typed after it came in).
// A later one comes after a failover: for each other sender whose seq
// in it is above the caller's, the text that turns the sender's line as
// the caller has it into the sender's lines and line in the state, and a
// leave for each user the caller has in the room and the state does not.
func (f *follow) state(st *wire.RoomState) []Text {
	var out []Text
	text := st.TextState()
	if f.room != nil {
		have := f.room.State()
		for _, from := range slices.Sorted(maps.Keys(st.Seqs)) {
			if from == f.self || st.Seqs[from] <= f.room.Seq(from) {
				continue
			}
			if t := missed(linesOf(have.Lines, from), f.room.Live(from), linesOf(text.Lines, from), st.Live[from]); t != "" {
				out = append(out, Text{From: from, Text: t})
			}
		}
		for _, user := range slices.Sorted(maps.Keys(f.users)) {
			if user != f.self && !slices.Contains(st.Users, user) {
				out = append(out, Text{From: user, Leave: true})
			}
		}
	}
	// As many lines as the state holds: the next state's are then the
	// end of the same history as the caller's.
	f.maxLines = max(f.maxLines, len(st.Lines))
	room := rtt.NewRoom(f.maxLines)
	if err := room.Load(text); err == nil {
		f.room = room
	} else if f.room == nil {
		f.room = rtt.NewRoom(f.maxLines) // a state no room holds: the text from now on
	}
	clear(f.users)
	for _, u := range st.Users {
		f.users[u] = true
	}
	return out
}

// missed returns the chunk that takes a sender's text from what the
// caller has (the sender's completed lines among the last ones the
// caller was sent, had, and the line live) to what a state has (the
// sender's lines among the last ones the room keeps, and stateLive):
// the state's lines after those the caller had, with the line the caller
// had live erased back to where the first of them (or the state's live
// line) differs from it. When the state's lines and had do not meet (the
// room moved on by more lines than its state keeps), the caller's live
// line ends as it is, and a lost-text mark (U+FFFD) on a line of its own
// says that lines may be missing before the state's.
func missed(had []string, live string, lines []string, stateLive string) string {
	p, ok := caughtUp(had, lines)
	if ok {
		return edit(live, join(lines[p:], stateLive))
	}
	var b strings.Builder
	if live != "" {
		b.WriteString(lineEnd)
	}
	b.WriteString("\uFFFD" + lineEnd)
	b.WriteString(join(lines, stateLive))
	return b.String()
}

// caughtUp returns how many of lines the caller had: the largest p such
// that lines[:p] and had agree as far back as both go. Both are the ends
// of one history of the sender's lines, which only grows at its end;
// had, from before the failover, ends at or before the state's lines do.
// A sender who typed the same line twice running can make it take one
// new line for one the caller had. With had empty, the caller had none of
// the lines (the sender is new to it, or the room's text moved on past
// what it had); with nothing agreeing, false.
func caughtUp(had, lines []string) (int, bool) {
	if len(had) == 0 || len(lines) == 0 {
		return 0, true
	}
	for p := len(lines); p > 0; p-- {
		n := min(p, len(had))
		if slices.Equal(lines[p-n:p], had[len(had)-n:]) {
			return p, true
		}
	}
	return 0, false
}

// lineEnd is the line end follow writes: T.140's LINE SEPARATOR.
const lineEnd = "\u2028"

// join returns lines as one stream of text: each line ended with a LINE
// SEPARATOR (T.140's new line), then live.
func join(lines []string, live string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString(lineEnd)
	}
	b.WriteString(live)
	return b.String()
}

// edit returns the chunk that turns a line, live, into the text target
// begins with: a BACKSPACE for each grapheme cluster of live after the
// last cluster boundary of live within the bytes the two share, then the
// rest of target.
func edit(live, target string) string {
	n := 0
	for n < len(live) && n < len(target) && live[n] == target[n] {
		n++
	}
	keep, erased := 0, 0
	for rest, state, at := live, -1, 0; rest != ""; {
		var cluster string
		cluster, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		at += len(cluster)
		if at <= n {
			keep = at
		} else {
			erased++
		}
	}
	return strings.Repeat("\b", erased) + target[keep:]
}

// linesOf returns the text of from's lines among lines.
func linesOf(lines []rtt.Line, from string) []string {
	var out []string
	for _, l := range lines {
		if l.From == from {
			out = append(out, l.Text)
		}
	}
	return out
}
