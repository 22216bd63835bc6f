package rtt

import (
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// segmentation is what an editor remembers of how its line divides into
// extended grapheme clusters, so that a BACKSPACE costs work in proportion
// to what it erases and what was typed since, never to the whole line.
//
// A line only grows at its end or loses its last cluster, and whether
// uniseg puts a boundary at an offset depends only on the text before it
// and the character at it. So the clusters of the line up to the end of
// the last one that text was added after stay what they were: they are
// remembered in spans. Text typed since is segmented when a BACKSPACE
// needs it, carrying on from the remembered last cluster (see standIn),
// and a BACKSPACE then drops the last cluster. When much was typed since,
// a walk back as lastCluster's (certainStart) usually finds a boundary
// near the end that nothing before it can move; only the text after it is
// segmented then, and the rest is remembered as pending until a BACKSPACE
// reaches it.
//
// So each character is probed by a walk at most once and segmented once
// (plus a stand-in of a few characters each time segmenting resumes)
// between being typed and being erased: a chunk costs in proportion to
// its length, whatever line it follows.
//
// The zero segmentation remembers nothing, which is right for any line:
// reset makes an editor's segmentation zero whenever its line is replaced
// or emptied.
type segmentation struct {
	// spans are the clusters of line[:done], oldest first, each span
	// ending where the next starts. A pending span that has become the
	// last is reopened before anything else (see reopen).
	spans []span
	// done is how much of the line spans covers; the text after it was
	// added since.
	done int
}

// span is one extended grapheme cluster of a line, or a run of clusters
// of one character each (most text, which need not cost a span per
// character), or pending text. Offsets are below MaxLineBytes, so they fit
// 16 bits.
type span struct {
	start uint16 // the offset in the line at which the span begins
	// head is singles for a run of one-character clusters, and pending
	// for text not segmented yet that ends at a boundary certainStart
	// found. For one cluster it is the offset of its head, the last
	// character before its last that is not an Extend character (see
	// standIn), or headNone if there is none, or headUnknown until needed.
	head uint16
}

// The values of span.head that are not offsets.
const (
	singles     = 0xFFFF
	pending     = 0xFFFC
	headNone    = 0xFFFE
	headUnknown = 0xFFFD
)

// longTail is how many bytes typed since the line was last segmented make
// erase look for a boundary near the end (certainStart) before it
// segments them, and tailWalk how many characters it probes looking.
const (
	longTail = 32
	tailWalk = 8
)

// reset forgets everything: the line was emptied or replaced.
func (s *segmentation) reset() {
	s.spans, s.done = s.spans[:0], 0
}

// erase returns line without its last extended grapheme cluster (line
// unchanged if it is empty). line must be valid UTF-8 and the text s has
// followed: what it was at the last erase or reset, plus any text added
// since.
func (s *segmentation) erase(line []byte) []byte {
	n := len(line)
	s.reopen()
	if n > s.done {
		// Between two ASCII characters there is always a boundary except
		// within CR LF, whatever precedes them, so text typed since can
		// lose its last character without being segmented.
		if b := line[n-1]; b < utf8.RuneSelf {
			if n == 1 {
				return line[:0]
			}
			if a := line[n-2]; a < utf8.RuneSelf && (a != '\r' || b != '\n') {
				return line[:n-1]
			}
		}
		s.segment(line)
	}
	if len(s.spans) == 0 {
		return line // empty
	}
	top := s.spans[len(s.spans)-1]
	cut := int(top.start)
	if top.head == singles {
		_, size := decodeLast(line)
		if n-size > cut {
			cut = n - size // the run keeps its other characters
		} else {
			s.spans = s.spans[:len(s.spans)-1]
		}
	} else {
		s.spans = s.spans[:len(s.spans)-1]
	}
	s.done = cut
	return line[:cut]
}

// reopen makes pending text that everything after was erased from part
// of the text typed since: what was typed after it may join its last
// cluster.
func (s *segmentation) reopen() {
	if top := len(s.spans) - 1; top >= 0 && s.spans[top].head == pending {
		s.done = int(s.spans[top].start)
		s.spans = s.spans[:top]
	}
}

// segment extends spans over line[done:], the text added since.
//
// When that text is long, segment first looks for a boundary near its
// end that nothing before can move (certainStart). If it finds one, the
// text before it stays pending and only the text after is segmented,
// from that boundary as from the start of a line. Otherwise segment
// segments all of it with uniseg, preceded by the stand-in of the last
// remembered cluster: clusters that end within the stand-in are the
// remembered ones; one that starts within it and ends past it is the last
// remembered cluster grown; the rest are new.
func (s *segmentation) segment(line []byte) {
	s.reopen()
	if len(line)-s.done > longTail {
		if p := certainStart(line, s.done, tailWalk); p > s.done {
			s.spans = append(s.spans, span{uint16(s.done), pending})
			s.done = p
			s.scan(line, line[p:], 0)
			return
		}
	}
	if len(s.spans) == 0 {
		s.scan(line, line, 0)
		return
	}
	var buf [64]byte
	text := s.standIn(buf[:0], line)
	ctx := len(text)
	s.scan(line, append(text, line[s.done:]...), ctx)
}

// scan segments text, which is line[done:] preceded by ctx bytes of
// stand-in, and remembers its clusters.
func (s *segmentation) scan(line, text []byte, ctx int) {
	shift := s.done - ctx // offset o in text is offset o+shift in line
	off, state := 0, -1
	for rest := text; len(rest) > 0; {
		var c []byte
		c, rest, _, state = uniseg.FirstGraphemeCluster(rest, state)
		start := off
		off += len(c)
		switch {
		case off <= ctx:
			// A remembered cluster, or part of one.
		case start < ctx:
			s.grow(line, off+shift)
		default:
			s.push(line, start+shift, off+shift)
		}
	}
	s.done = len(line)
}

// push remembers a new cluster, line[start:end], after the last one.
func (s *segmentation) push(line []byte, start, end int) {
	if _, size := utf8.DecodeRune(line[start:end]); size == end-start {
		if len(s.spans) > 0 && s.spans[len(s.spans)-1].head == singles {
			return // the run of one-character clusters grows
		}
		s.spans = append(s.spans, span{uint16(start), singles})
		return
	}
	s.spans = append(s.spans, span{uint16(start), headUnknown})
}

// grow makes the last remembered cluster, which ended at done, end at end
// instead: the text added since joins it.
func (s *segmentation) grow(line []byte, end int) {
	top := &s.spans[len(s.spans)-1]
	if top.head == singles {
		// The run's last character becomes a cluster of its own.
		_, size := decodeLast(line[:s.done])
		if last := s.done - size; last > int(top.start) {
			s.spans = append(s.spans, span{uint16(last), headNone})
			top = &s.spans[len(s.spans)-1]
		} else {
			top.head = headNone
		}
	} else if top.head == headUnknown {
		top.head = headOf(line[:s.done], int(top.start))
	}
	// The head of the grown cluster: the last non-Extend character before
	// its new last one, among the characters added, then the old last
	// character, then the old head.
	_, size := decodeLast(line[:end])
	for j := end - size; j > s.done; {
		r, n := decodeLast(line[:j])
		if !isExtend(r) {
			top.head = uint16(j - n)
			return
		}
		j -= n
	}
	if r, n := decodeLast(line[:s.done]); !isExtend(r) {
		top.head = uint16(s.done - n)
	}
}

// certainStart returns the offset of a cluster boundary in line after lo
// that does not depend on anything before it, as safeStart finds one, or
// -1 if it finds none among the last walk characters. It leaves regional
// indicators, whose pairs depend on the length of their whole run, to
// segmentation.
func certainStart(line []byte, lo, walk int) int {
	b, nb := decodeLast(line)
	for j, steps := len(line)-nb, 0; j > lo && steps < walk; j, steps = j-nb, steps+1 {
		a, na := decodeLast(line[:j])
		if isRegional(a) && isRegional(b) {
			return -1
		}
		if certainBreak(line[:j-na], a, b) {
			return j
		}
		b, nb = a, na
	}
	return -1
}

// headOf returns the head of the cluster line[start:]: the offset of the
// last character before its last one that is not an Extend character, or
// headNone.
func headOf(line []byte, start int) uint16 {
	_, size := decodeLast(line)
	prev, extend := rune(-1), false // a run of marks often repeats one
	for j := len(line) - size; j > start; {
		r, n := decodeLast(line[:j])
		if r != prev {
			prev, extend = r, isExtend(r)
		}
		if !extend {
			return uint16(j - n)
		}
		j -= n
	}
	return headNone
}

// standIn appends to b a short text after which uniseg segments whatever
// follows exactly as it does after the line up to done: the last
// remembered cluster's head, if it has one, and its last character.
//
// Why that is enough: uniseg's state at a cluster boundary is the state
// it starts a text in, so only the last cluster matters. Within a
// cluster, the state uniseg (Unicode 15.0) reaches on a character depends
// on that character alone, except in three cases: an Extend character
// keeps the state of an emoji (Extended_Pictographic Extend*), a ZWJ
// after such an emoji awaits the next one (GB11), and a regional
// indicator after another makes a pair (GB12, GB13). The first two depend
// on whether the head, the last character before the run of Extend
// characters, is an emoji; the third on whether the character before is a
// regional indicator, which is then the head. A text of the head and the
// last character reaches the same state.
//
// Unicode 15.1 adds a rule of that kind that a head does not capture
// (GB9c, Indic conjuncts, which remember a virama within the run): if
// uniseg implements it, standIn appends the whole last cluster instead,
// which is always exact but costs its length.
func (s *segmentation) standIn(b, line []byte) []byte {
	top := &s.spans[len(s.spans)-1]
	_, size := decodeLast(line[:s.done])
	last := line[s.done-size : s.done]
	switch {
	case top.head == singles:
		return append(b, last...)
	case !headsSuffice:
		return append(b, line[top.start:s.done]...)
	case top.head == headUnknown:
		top.head = headOf(line[:s.done], int(top.start))
	}
	if top.head != headNone {
		h := int(top.head)
		_, n := utf8.DecodeRune(line[h:])
		b = append(b, line[h:h+n]...)
	}
	return append(b, last...)
}

// isExtend reports whether uniseg gives r the Grapheme_Cluster_Break
// property Extend: whether it keeps an emoji's state, so that a ZWJ and an
// emoji after r still join (© r ZWJ © is one cluster). ZWJ, spacing marks
// and every other character break that chain.
func isExtend(r rune) bool {
	if r < utf8.RuneSelf {
		return false
	}
	var buf [16]byte
	b := append(buf[:0], "\u00a9"...)
	b = utf8.AppendRune(b, r)
	b = append(b, "\u200d\u00a9"...)
	c, _, _, _ := uniseg.FirstGraphemeCluster(b, -1)
	return len(c) == len(b)
}

// headsSuffice is set when uniseg does not join Indic conjuncts (GB9c),
// the rule standIn's heads do not capture: KA, VIRAMA, KA are two clusters.
var headsSuffice = func() bool {
	const kaViramaKa = "\u0915\u094d\u0915"
	c, _, _, _ := uniseg.FirstGraphemeClusterInString(kaViramaKa, -1)
	return len(c) < len(kaViramaKa)
}()
