package t140

import (
	"slices"
	"strings"
	"time"

	"github.com/rivo/uniseg"

	"github.com/switchboard/switchboard/rtt"
)

// LineSeparator is the new line T.140 recommends (U+2028).
const LineSeparator = "\u2028"

// DefaultSwitchAfter is how long the sender being shown may be idle
// mid-line before another sender's waiting text is shown.
const DefaultSwitchAfter = 2 * time.Second

// MaxWait is the longest a sender's text waits while another sender,
// busy mid-line, is shown: then the one shown yields even though still
// typing, and waits in turn. Without it a sender who never paused for
// SwitchAfter and never ended a line would hold the caller's screen for
// as long as they typed.
const MaxWait = 10 * time.Second

// MaxQueued bounds the text queued for one sender, in bytes, each change
// to their line counting a few more (a chunk's text that ends no line and
// erases nothing is one change; every line end and BEL is another). A
// chunk that finds nothing of its sender's queued is queued whole,
// however much it counts (a paste of short lines counts far more than
// its bytes); one that would take what is queued past MaxQueued is
// dropped. So a sender's queue counts at most MaxQueued, or one chunk
// when that chunk alone counts more. Take empties the queue of the sender
// shown, so the bound holds back mostly the ones waiting: a sender who
// keeps the caller's screen (typing mid-line, never idle for SwitchAfter)
// would otherwise let the others' text pile up for as long as they like.
// A waiting sender's text past it is dropped and marked with Missing
// once, where it was lost, and what they type next shows on a new
// labelled line (which no BACKSPACE of theirs can reach past).
const MaxQueued = 16 << 10

// Mixer merges several senders' text into one T.140 stream for a caller
// that shows one stream (a multiparty-unaware endpoint in RFC 9071's
// words). One sender is shown at a time; every line shown starts with the
// sender's label, "[name]: " (see label for how a name shows). The sender
// shown changes when their line ends, or when they have been idle
// mid-line for SwitchAfter and another sender's text waits; the
// interrupted line is ended on the caller's screen (a new line) and
// continues under a new label when that sender is shown again.
//
// A Mixer reads each sender's text as the room does: it applies every
// chunk to an rtt.Room it keeps and sends the caller what the chunk
// changed in the sender's line, so the caller's screen shows the text the
// room has (escape sequences, controls, tabs, line ends, erasure by
// grapheme cluster and the line broken at rtt.MaxLineBytes all as package
// rtt says), but for the bidirectional embedding, override and isolate
// controls, each sent as a ZERO WIDTH SPACE (see unbidi). What the caller
// is sent for a chunk is its net effect: text typed and erased within one
// chunk is not sent. Erasure (BACKSPACE)
// reaches only the text shown since the last label: what a sender erases
// beyond it stays on the caller's screen, although the room's text (which
// other members see) is right.
//
// One goroutine owns a Mixer; it reads no clock (now is passed in).
type Mixer struct {
	switchAfter time.Duration
	room        *rtt.Room // every sender's line, as the room has it
	current     string
	midLine     bool // the caller's screen has an unfinished line
	// from is where, in current's line, the text shown after the label
	// of the caller's unfinished line begins: clusters of the line that
	// end at or before it are not on that line of the caller's screen.
	from    int
	senders map[string]*mixSender
	waiting []string // senders with queued text, in order of arrival
}

// mixSender is what a Mixer holds for one sender.
type mixSender struct {
	prefix string    // what starts each line of theirs: their label, "[name]: "
	line   string    // their unfinished line as last applied (a copy of the room's)
	queued []edit    // what their text changed, not shown yet
	size   int       // what queued edits count against MaxQueued
	last   time.Time // when their last text arrived
	full   bool      // edits were dropped, a lost edit queued in their place
	waits  bool      // they are in Mixer.waiting
	since  time.Time // when they joined the waiting line
	left   bool      // they left the room: dropped once their queued text is shown
}

// edit is one change to a sender's line, as the caller is to be shown it.
type edit struct {
	kind editKind
	// at is the offset in the line where text goes (editText), or the
	// length of the line after an erasure (editErase).
	at   int
	text string // editText: what is appended to the line
	// ends holds, for editErase, where each erased grapheme cluster
	// ended in the line, last first: one BACKSPACE each.
	// Lines are at most rtt.MaxLineBytes long, so a uint16 holds an end.
	ends []uint16
}

// editKind says what an edit does.
type editKind uint8

const (
	editText  editKind = iota // text appended to the line
	editErase                 // the line's last clusters erased
	editEnd                   // the line completed
	editAlert                 // a BEL
	editLost                  // edits dropped here (MaxQueued): Missing, then a new line
)

// cost is what e counts against MaxQueued: the bytes it holds, and some
// for the edit itself, so that many small edits count the memory they
// take.
func (e edit) cost() int {
	const overhead = 32
	return overhead + len(e.text) + 2*len(e.ends)
}

// NewMixer returns a Mixer; switchAfter 0 means DefaultSwitchAfter.
func NewMixer(switchAfter time.Duration) *Mixer {
	if switchAfter <= 0 {
		switchAfter = DefaultSwitchAfter
	}
	return &Mixer{switchAfter: switchAfter, room: rtt.NewRoom(1), senders: map[string]*mixSender{}}
}

// Write queues a chunk of from's text received at now. An empty chunk
// (a room takes them) shows nothing and changes nothing.
func (m *Mixer) Write(from, text string, now time.Time) {
	if text == "" {
		return
	}
	s := m.senders[from]
	if s == nil {
		s = &mixSender{prefix: "[" + label(from) + "]: "}
		m.senders[from] = s
	}
	s.left = false // back in the room
	if !s.waits && from != m.current {
		// In the waiting line once: a sender listed twice would stay
		// listed after Forget, and Take would look them up.
		m.waiting = append(m.waiting, from)
		s.waits, s.since = true, now
	}
	s.last = now
	edits := m.apply(s, from, text)
	size := 0
	for _, e := range edits {
		size += e.cost()
	}
	switch {
	case len(s.queued) == 0 || s.size+size <= MaxQueued:
		s.queued = append(s.queued, edits...)
		s.size += size
		s.full = false
	case !s.full:
		s.queued = append(s.queued, edit{kind: editLost})
		s.full = true
	}
}

// apply applies text to from's line in the Mixer's room and returns what
// it changed. A BEL is an edit of its own, where it came: a chunk is
// applied in pieces between its BELs, which reads it as the room does,
// since no sequence, character or CR LF of rtt's spans a BEL. s.line
// is from's line before and after (one copy of the room's line a chunk).
func (m *Mixer) apply(s *mixSender, from, text string) []edit {
	var edits []edit
	for {
		piece, rest, bel := strings.Cut(text, "\a")
		if piece != "" {
			for _, l := range m.room.Apply(from, 0, piece).Lines {
				edits = change(edits, s.line, l.Text)
				edits = append(edits, edit{kind: editEnd})
				s.line = ""
			}
			after := m.room.Live(from)
			edits = change(edits, s.line, after)
			s.line = after
		}
		if !bel {
			return edits
		}
		edits = append(edits, edit{kind: editAlert})
		text = rest
	}
}

// change appends to edits the edits that turn line a into line b: the
// clusters of a after the text they share erased, then the rest of b.
func change(edits []edit, a, b string) []edit {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	if n < len(a) {
		// Back to a cluster boundary of a, as its BACKSPACEs erase it: a
		// few clusters by rtt.Backspace, which usually reads only the end
		// of a, and any more by segmenting what is left of a once, since
		// on a line crafted against its walk back rtt.Backspace reads the
		// whole line for every cluster.
		var ends []uint16
		for range quickBackspaces {
			if len(a) <= n {
				break
			}
			ends = append(ends, uint16(len(a)))
			a = rtt.Backspace(a)
		}
		if len(a) > n {
			var start int
			ends, start = appendEnds(ends, a, n)
			a = a[:start]
		}
		n = len(a)
		edits = append(edits, edit{kind: editErase, at: n, ends: ends})
	}
	if n < len(b) {
		// A copy: b is the whole line, which a queued edit must not keep.
		edits = append(edits, edit{kind: editText, at: n, text: unbidi(b[n:])})
	}
	return edits
}

// unbidi returns a copy of text with each bidirectional embedding,
// override and isolate control (U+202A-U+202E, U+2066-U+2069), which the
// room keeps as text, made a ZERO WIDTH SPACE. The caller's lines end
// with LINE SEPARATOR, which ends no paragraph and so none of these
// (UAX #9): one left open in a sender's line would turn the lines after
// it around on the caller's screen, other senders' labels and all. A ZERO
// WIDTH SPACE shows nothing and has no direction; like them it is three
// bytes of UTF-8 and a grapheme cluster of its own, so offsets in the
// line and the clusters a BACKSPACE erases stay the room's.
func unbidi(text string) string {
	if !strings.ContainsFunc(text, isBidiControl) {
		return strings.Clone(text)
	}
	return strings.Map(func(r rune) rune {
		if isBidiControl(r) {
			return '\u200B'
		}
		return r
	}, text)
}

// isBidiControl reports whether r opens or closes a bidirectional
// embedding, override or isolate.
func isBidiControl(r rune) bool {
	return r >= '\u202A' && r <= '\u202E' || r >= '\u2066' && r <= '\u2069'
}

// quickBackspaces is how many clusters change erases one by one with
// rtt.Backspace before it segments the rest of the line.
const quickBackspaces = 4

// appendEnds appends to ends, last first, where each grapheme cluster of
// a that ends past n ends, and returns where the first of them starts:
// the clusters BACKSPACEs erase from a, one after another, to reach n. A
// prefix of a line that ends at one of its cluster boundaries has the
// line's clusters, so segmenting a from its start finds the clusters
// rtt.Backspace erases, in one pass over a.
func appendEnds(ends []uint16, a string, n int) ([]uint16, int) {
	from := len(ends)
	off, start, state := 0, -1, -1
	for rest := a; rest != ""; {
		var c string
		c, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if off+len(c) > n {
			if start < 0 {
				start = off
			}
			ends = append(ends, uint16(off+len(c)))
		}
		off += len(c)
	}
	slices.Reverse(ends[from:])
	return ends, start
}

// Cut says that the text taken last will not reach the caller (it could
// not be sent): it returns the mark to send in its place, Missing and a
// line end, and the next text shown starts a new labelled line, so that
// an erasure never reaches past the mark.
func (m *Mixer) Cut() []byte {
	m.midLine = false
	return []byte(Missing + LineSeparator)
}

// Forget drops a sender who left; their line is complete, as in the
// room. Text of theirs still queued (their last words, which the room
// sent before their leave) is shown first, in its turn; then they are
// dropped, and a sender who left yields the caller's screen at once.
func (m *Mixer) Forget(from string) {
	_, ended := m.room.Forget(from)
	if s := m.senders[from]; s != nil && len(s.queued) > 0 {
		s.line = "" // completed in the room
		if ended {
			s.queued = append(s.queued, edit{kind: editEnd})
		}
		s.left = true
		return
	}
	m.drop(from)
}

// drop removes from and any text of theirs.
func (m *Mixer) drop(from string) {
	delete(m.senders, from)
	for i, w := range m.waiting {
		if w == from {
			m.waiting = append(m.waiting[:i], m.waiting[i+1:]...)
			break
		}
	}
	if m.current == from {
		m.current = ""
	}
}

// Take returns the text to send to the caller at now (empty when none).
func (m *Mixer) Take(now time.Time) []byte {
	var out strings.Builder
	for {
		if s := m.senders[m.current]; s != nil {
			if len(s.queued) > 0 {
				m.show(&out, s)
			}
			if s.left {
				m.drop(m.current)
			}
		}
		if len(m.waiting) == 0 {
			break
		}
		cur := m.senders[m.current]
		next := m.waiting[0]
		if cur != nil && m.midLine && now.Sub(cur.last) < m.switchAfter && now.Sub(m.senders[next].since) < MaxWait {
			break
		}
		m.waiting = m.waiting[1:]
		m.senders[next].waits = false
		if m.midLine {
			out.WriteString(LineSeparator)
			m.midLine = false
		}
		m.current = next
	}
	return []byte(out.String())
}

// show writes the current sender's queued edits to out.
func (m *Mixer) show(out *strings.Builder, s *mixSender) {
	for _, e := range s.queued {
		switch e.kind {
		case editText:
			if !m.midLine {
				out.WriteString(s.prefix)
				m.midLine, m.from = true, e.at
			}
			out.WriteString(e.text)
		case editErase:
			if !m.midLine {
				break // nothing of the line after a label yet
			}
			for _, end := range e.ends {
				if int(end) > m.from {
					out.WriteByte('\b')
				}
			}
			m.from = min(m.from, e.at)
		case editEnd:
			m.endLine(out)
		case editAlert:
			out.WriteByte('\a')
		case editLost:
			if !m.midLine {
				out.WriteString(s.prefix)
			}
			out.WriteString(Missing)
			m.midLine = true
			m.endLine(out)
		}
	}
	clear(s.queued)
	s.queued, s.size, s.full = s.queued[:0], 0, false
}

func (m *Mixer) endLine(out *strings.Builder) {
	if m.midLine {
		out.WriteString(LineSeparator)
	}
	m.midLine = false
}
