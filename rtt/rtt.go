package rtt

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// DefaultMaxLines is how many completed lines a Room keeps when NewRoom is
// given no positive number.
const DefaultMaxLines = 100

// ErrState is wrapped by the errors Load and FromState return for a
// snapshot that breaks the rules every Room keeps; the snapshot's sender
// produced it wrongly or it was damaged, and the caller should not use it.
var ErrState = errors.New("rtt: invalid state")

// Line is one completed line of a conversation.
type Line struct {
	// From is the sender who typed the line.
	From string
	// Text is the line without its line end: valid UTF-8 of at most
	// MaxLineBytes bytes, without control characters, line or paragraph
	// separators or BOM.
	Text string
}

// Result says what Apply did with one chunk.
type Result struct {
	// Duplicate is set when the chunk's seq was not above the sender's last
	// applied seq: the chunk was ignored and nothing else in the Result is
	// set.
	Duplicate bool
	// Gap is set when the seq skipped one or more chunks: a U+FFFD was put
	// into the sender's current line before the chunk's text.
	Gap bool
	// Lines are the lines the chunk completed, oldest first, including
	// lines broken at MaxLineBytes. They are in the Room's history too.
	Lines []Line
	// Alerts counts the BELs in the chunk.
	Alerts int
}

// State is a snapshot of a Room. The Room does not keep or share any part
// of a State it returns or loads.
type State struct {
	// Lines are the last completed lines of all senders, oldest first.
	Lines []Line
	// Live maps every sender the Room knows to their current, unfinished
	// line ("" when they have none).
	Live map[string]string
	// Seqs maps each sender to the last seq applied from them. Senders who
	// only sent unsequenced chunks are missing.
	Seqs map[string]uint64
	// PendingCR holds the senders whose last chunk ended with a CR: an LF
	// at the start of their next chunk belongs to that CR and completes no
	// line. Missing entries are false; a snapshot carried without this
	// field costs at most one extra empty line per such sender.
	PendingCR map[string]bool
}

// Room is the text of one conversation as its participants typed it: the
// last completed lines of all senders and every sender's current line.
//
// A Room does no I/O and is not safe for concurrent use: one goroutine
// owns it and hands out the copies State returns.
type Room struct {
	max     int
	lines   []Line // the history is the last max of these
	senders map[string]*sender
}

// sender is what a Room knows about one participant.
type sender struct {
	editor
	seq uint64 // the last applied seq, 0 before the first sequenced chunk
}

// NewRoom returns an empty Room that keeps the last maxLines completed
// lines (DefaultMaxLines if maxLines <= 0).
func NewRoom(maxLines int) *Room {
	if maxLines <= 0 {
		maxLines = DefaultMaxLines
	}
	return &Room{max: maxLines, senders: make(map[string]*sender)}
}

// FromState returns a Room that keeps the last maxLines completed lines
// (DefaultMaxLines if maxLines <= 0) and holds s. It returns an error
// wrapping ErrState if s breaks the rules of a Room (see Load).
func FromState(maxLines int, s State) (*Room, error) {
	r := NewRoom(maxLines)
	if err := r.Load(s); err != nil {
		return nil, err
	}
	return r, nil
}

// Apply applies one chunk of text that from typed, numbered seq.
//
// Seqs count each sender's chunks from 1. A seq at or below the last one
// applied from the sender is a duplicate (a resend) and is ignored. A seq
// more than one above it means chunks were lost: a U+FFFD goes into the
// sender's current line before text, and Result.Gap is set. Seq 0 marks
// an unsequenced chunk, applied as it comes and not recorded.
//
// The chunk edits only from's current line; see the package documentation
// for what each character does.
func (r *Room) Apply(from string, seq uint64, text string) Result {
	s := r.senders[from]
	if seq != 0 && s != nil && seq <= s.seq {
		return Result{Duplicate: true}
	}
	if s == nil {
		s = &sender{}
		r.senders[from] = s
	}
	var res Result
	var done []string
	if seq != 0 {
		if seq > s.seq+1 {
			res.Gap = true
			done = s.put(lost, done)
		}
		s.seq = seq
	}
	done, res.Alerts = s.write(text, done)
	if len(done) > 0 {
		res.Lines = make([]Line, len(done))
		for i, t := range done {
			res.Lines[i] = Line{From: from, Text: t}
		}
		r.add(res.Lines...)
	}
	return res
}

// Seq returns the last seq applied from from (0 if none, or from is
// unknown).
func (r *Room) Seq(from string) uint64 {
	if s := r.senders[from]; s != nil {
		return s.seq
	}
	return 0
}

// Live returns from's current, unfinished line ("" if from has none or is
// unknown).
func (r *Room) Live(from string) string {
	if s := r.senders[from]; s != nil {
		return string(s.buf)
	}
	return ""
}

// Forget removes sender from the Room, as when they leave the
// conversation. Their unfinished line, if not empty, is completed: it is
// added to the history and returned with ok set. Their seq is forgotten
// too, so a sender who comes back counts from 1 again.
func (r *Room) Forget(sender string) (line Line, ok bool) {
	s := r.senders[sender]
	if s == nil {
		return Line{}, false
	}
	delete(r.senders, sender)
	if len(s.buf) == 0 {
		return Line{}, false
	}
	line = Line{From: sender, Text: string(s.buf)}
	r.add(line)
	return line, true
}

// State returns a deep copy of the Room's state.
func (r *Room) State() State {
	st := State{
		Lines:     slices.Clone(r.history()),
		Live:      make(map[string]string, len(r.senders)),
		Seqs:      make(map[string]uint64),
		PendingCR: make(map[string]bool),
	}
	if st.Lines == nil {
		st.Lines = []Line{}
	}
	for from, s := range r.senders {
		st.Live[from] = string(s.buf)
		if s.seq != 0 {
			st.Seqs[from] = s.seq
		}
		if s.cr {
			st.PendingCR[from] = true
		}
	}
	return st
}

// Load replaces the Room's whole state with s, as a client does with the
// full state it gets after a failover. The Room keeps no part of s. Only
// the last lines of s.Lines that fit the Room's limit are kept.
//
// Load returns an error wrapping ErrState, and leaves the Room unchanged,
// if any text in s is not valid UTF-8, is longer than MaxLineBytes or
// holds a character a Room never stores (a control character, a line or
// paragraph separator, a BOM).
func (r *Room) Load(s State) error {
	for i, l := range s.Lines {
		if why := checkText(l.Text); why != "" {
			return fmt.Errorf("%w: line %d from %q: %s", ErrState, i, l.From, why)
		}
	}
	for _, from := range slices.Sorted(maps.Keys(s.Live)) {
		if why := checkText(s.Live[from]); why != "" {
			return fmt.Errorf("%w: live line of %q: %s", ErrState, from, why)
		}
	}
	lines := s.Lines[max(len(s.Lines)-r.max, 0):]
	r.lines = slices.Clip(slices.Clone(lines))
	r.senders = make(map[string]*sender, len(s.Live))
	get := func(from string) *sender {
		if x := r.senders[from]; x != nil {
			return x
		}
		x := &sender{}
		r.senders[from] = x
		return x
	}
	for from, text := range s.Live {
		get(from).setLine([]byte(text))
	}
	for from, seq := range s.Seqs {
		get(from).seq = seq
	}
	for from, pending := range s.PendingCR {
		if pending {
			get(from).cr = true
		}
	}
	return nil
}

// add appends lines to the history. The slice grows to twice the limit
// before the oldest lines are dropped at once, so adding costs O(1)
// amortized.
func (r *Room) add(lines ...Line) {
	r.lines = append(r.lines, lines...)
	if len(r.lines) >= 2*r.max {
		n := copy(r.lines, r.lines[len(r.lines)-r.max:])
		clear(r.lines[n:])
		r.lines = r.lines[:n]
	}
}

// history returns the last r.max completed lines, shared with the Room.
func (r *Room) history() []Line {
	return r.lines[max(len(r.lines)-r.max, 0):]
}

// checkText says what is wrong with a line's text, or returns "".
func checkText(t string) string {
	if len(t) > MaxLineBytes {
		return fmt.Sprintf("%d bytes, more than %d", len(t), MaxLineBytes)
	}
	if !utf8.ValidString(t) {
		return "not valid UTF-8"
	}
	for _, c := range t {
		if !storable(c) {
			return fmt.Sprintf("holds %U", c)
		}
	}
	return ""
}
