package t140

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
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

// MaxQueued is the most text queued for one sender while another is
// shown. A sender who keeps the caller's screen (typing mid-line, never
// idle for SwitchAfter) would otherwise let the others' text pile up for
// as long as they like; past it, a waiting sender's text is dropped and
// marked with Missing once, where it was lost.
const MaxQueued = 16 << 10

// Mixer merges several senders' text into one T.140 stream for a caller
// that shows one stream (a multiparty-unaware endpoint in RFC 9071's
// words). One sender is shown at a time; every line shown starts with the
// sender's label, "[name]: ". The sender shown changes when their line
// ends, or when they have been idle mid-line for SwitchAfter and another
// sender's text waits; the interrupted line is ended on the caller's
// screen (a new line) and continues under a new label when that sender
// is shown again. Erasure (BACKSPACE) reaches only the text shown since
// the last label: what a sender erases beyond it stays on the caller's
// screen, although the room's text (which other members see) is right.
// One goroutine owns a Mixer; it reads no clock (now is passed in).
type Mixer struct {
	switchAfter time.Duration
	current     string
	midLine     bool // the caller's screen has an unfinished line
	segment     int  // graphemes of current's text shown after the label
	senders     map[string]*mixSender
	waiting     []string // senders with queued text, in order of arrival
}

type mixSender struct {
	queued []byte
	last   time.Time // when their last text arrived
	cr     bool      // their last chunk ended with CR
	full   bool      // text was dropped, Missing queued in its place
	waits  bool      // they are in Mixer.waiting
	since  time.Time // when they joined the waiting line
	left   bool      // they left the room: dropped once their queued text is shown
	esc    escState  // where they are in an escape sequence, across chunks
}

// escState is where a sender's text is in an ISO 6429 escape sequence
// (a colour, say), which the caller's screen is not given: the mixer
// drops the whole sequence, not its control character alone.
type escState uint8

const (
	escNone  escState = iota
	escStart          // after ESC
	escCSI            // after ESC [ or CSI (U+009B), until a final byte
)

// NewMixer returns a Mixer; switchAfter 0 means DefaultSwitchAfter.
func NewMixer(switchAfter time.Duration) *Mixer {
	if switchAfter <= 0 {
		switchAfter = DefaultSwitchAfter
	}
	return &Mixer{switchAfter: switchAfter, senders: map[string]*mixSender{}}
}

// Write queues a chunk of from's text received at now. An empty chunk
// (a room takes them) shows nothing and changes nothing.
func (m *Mixer) Write(from, text string, now time.Time) {
	if text == "" {
		return
	}
	s := m.senders[from]
	if s == nil {
		s = &mixSender{}
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
	switch {
	case len(s.queued)+len(text) <= MaxQueued:
		s.queued = append(s.queued, text...)
		s.full = false
	case !s.full:
		s.queued = append(s.queued, Missing...)
		s.full = true
	}
}

// Cut says that the text taken last will not reach the caller (it could
// not be sent): it returns the mark to send in its place, Missing and a
// line end, and the next text shown starts a new labelled line, so that
// an erasure never reaches past the mark.
func (m *Mixer) Cut() []byte {
	m.midLine, m.segment = false, 0
	return []byte(Missing + LineSeparator)
}

// Forget drops a sender who left. Text of theirs still queued (their
// last words, which the room sent before their leave) is shown first, in
// its turn; then they are dropped, and a sender who left yields the
// caller's screen at once.
func (m *Mixer) Forget(from string) {
	if s := m.senders[from]; s != nil && len(s.queued) > 0 {
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

// show writes the current sender's queued text to out.
func (m *Mixer) show(out *strings.Builder, s *mixSender) {
	text := string(s.queued)
	s.queued, s.full = s.queued[:0], false
	state := -1
	for len(text) > 0 {
		var c string
		c, text, _, state = uniseg.FirstGraphemeClusterInString(text, state)
		cr := s.cr
		s.cr = false
		// Escape sequences as the text model reads them (rtt): ESC [
		// or CSI, parameter and intermediate bytes, a final byte; or ESC
		// and one byte. A character that cannot continue the sequence
		// ends it and is shown.
		switch esc := s.esc; {
		case esc == escStart && c == "[":
			s.esc = escCSI
			continue
		case esc == escStart && len(c) == 1 && c[0] >= 0x30 && c[0] <= 0x7e,
			esc == escCSI && len(c) == 1 && c[0] >= 0x40 && c[0] <= 0x7e:
			s.esc = escNone
			continue
		case esc == escCSI && len(c) == 1 && c[0] >= 0x20 && c[0] <= 0x3f:
			continue
		}
		s.esc = escNone
		switch c {
		case "\x1b":
			s.esc = escStart
			continue
		case "\u009b":
			s.esc = escCSI
			continue
		case "\t":
			c = " " // as the text model shows it (rtt)
		}
		switch c {
		case "\n":
			if cr {
				continue // the LF of a CR LF cut between two chunks
			}
			m.endLine(out)
		case "\r":
			s.cr = true
			m.endLine(out)
		case "\r\n", LineSeparator, "\u2029":
			m.endLine(out)
		case "\b":
			if m.segment > 0 {
				out.WriteString("\b")
				m.segment--
			}
		case "\uFEFF":
		case "\a":
			out.WriteString(c)
		default:
			if r, n := utf8.DecodeRuneInString(c); n == len(c) && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0) {
				continue // other controls, C0 and C1 (CSI among them), have no place on the caller's screen
			}
			if !m.midLine {
				out.WriteString("[" + label(m.current) + "]: ")
				m.midLine, m.segment = true, 0
			}
			out.WriteString(c)
			m.segment++
		}
	}
}

// label is a sender's name as its label shows it: controls, line and
// paragraph separators and format characters (bidirectional overrides
// and isolates, zero-width marks) each become U+FFFD, so that no name
// can end the label's line or turn the text after it around and pass a
// line of its own for another member's.
func label(name string) string {
	if !strings.ContainsFunc(name, hidden) {
		return name
	}
	return strings.Map(func(r rune) rune {
		if hidden(r) {
			return utf8.RuneError
		}
		return r
	}, name)
}

// hidden reports whether r is a rune label replaces. The joiners and
// tag characters emoji are built with (U+200C, U+200D, U+E0020-U+E007F)
// are format characters too, but turn nothing around: they stay.
func hidden(r rune) bool {
	if r == '\u200c' || r == '\u200d' || r >= 0xe0020 && r <= 0xe007f {
		return false
	}
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf)
}

func (m *Mixer) endLine(out *strings.Builder) {
	if m.midLine {
		out.WriteString(LineSeparator)
	}
	m.midLine, m.segment = false, 0
}
