package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"golang.org/x/term"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// lineSeparator ends a line, as T.140 prefers.
const lineSeparator = "\u2028"

// lineEnds turns the line ends of what the user types into lineSeparator:
// a CR, an LF and a CR LF each end one line, also when the CR and its LF
// come in two reads (a paste cut by the terminal; --script reads one
// character at a time). Sent as they come, a CR and an LF in two chunks
// would make one line end only for receivers that know the CR came last
// (a state from a node that predates pending_cr does not say so), and
// one U+2028 for each would double every line.
type lineEnds struct{ afterCR bool }

// end says whether r ends a line and, if it does, what to send for it:
// lineSeparator, or "" for the LF of a CR LF. Every character typed goes
// through it, so that only an LF right after a CR is taken for its LF.
func (l *lineEnds) end(r rune) (text string, ok bool) {
	afterCR := l.afterCR
	l.afterCR = r == '\r'
	switch {
	case r == '\n' && afterCR:
		return "", true
	case r == '\r' || r == '\n':
		return lineSeparator, true
	}
	return "", false
}

func runChat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("chat", "--service ADDR --user NAME [flags] ROOM",
		"Joins ROOM and shows everyone's typing as it happens; what you type travels\n"+
			"character by character. With --script, reads standard input instead of the\n"+
			"terminal and prints what arrives as lines.", stdout, stderr)
	fs := c.fs
	var cf clientFlags
	cf.register(c)
	cf.registerSecurity(c)
	user := fs.String("user", "", "user name (required)")
	script := fs.Bool("script", false, "read text from standard input at --pace and print what arrives as lines")
	pace := fs.Duration("pace", 20*time.Millisecond, "with --script: the time between two characters")
	linger := fs.Duration("linger", time.Second, "with --script: how long to keep listening after the input ends")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	switch {
	case *user == "":
		return usagef(c.name, "chat: --user is required")
	case len(pos) == 0:
		return usagef(c.name, "chat: name the ROOM to join")
	case len(pos) > 1:
		return usagef(c.name, "chat: unexpected arguments %q after the room %q", strings.Join(pos[1:], " "), pos[0])
	}
	room := pos[0]
	if why := wire.RoomNameProblem(room); why != "" {
		return usagef(c.name, "chat: room %q: %s", wire.Clip(room, wire.MaxRoomName), why)
	}
	s, err := cf.dial(ctx, *user)
	if exitCode(err) == exitUsage {
		return err // it names the command and the flag already
	}
	if err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	defer s.Close()
	if err := joinRoom(ctx, s, room, cf.timeout, stderr); err != nil {
		return err
	}
	v := &chatView{s: s, room: room, text: rtt.NewRoom(0)}
	if *script {
		return v.runScript(ctx, os.Stdin, stdout, *pace, *linger)
	}
	return v.runTerminal(ctx, stdout)
}

// joinRoom joins room and waits, at most timeout (--timeout, as for the
// attach), for the node's answer, saying on stderr that it waits: a
// refusal (a token that does not allow the room, a limit) ends the
// command here, saying why, rather than leave a screen that takes keys
// no room will get. So do a node that does not answer in time and a
// signal before the room is joined: the command failed to join.
func joinRoom(ctx context.Context, s *client.Session, room string, timeout time.Duration, stderr io.Writer) error {
	fmt.Fprintf(stderr, "chat: waiting for room %s on %s (--timeout %v)\n", room, termSafe(s.Node().ID), timeout)
	jctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := s.JoinWait(jctx, room)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("chat: stopped while joining %q", room)
	case jctx.Err() != nil:
		return fmt.Errorf("chat: joining %q: no answer within %v (--timeout)", room, timeout)
	}
	var refusal *client.ServerError
	if errors.As(err, &refusal) {
		err = refusal // the node's words, without the client's own "joining room"
	}
	return fmt.Errorf("chat: joining %q: %w", room, err)
}

// chatView is the chat client's model of its room: every participant's
// lines as this client sees them, its own included.
type chatView struct {
	s    *client.Session
	room string

	mu     sync.Mutex
	text   *rtt.Room
	users  []string
	status string
	alerts int
	// strangers are the senders of text seen that are not members as far
	// as the view knows, oldest first: at most maxStrangers, so that a
	// node sending text under ever new names cannot grow the view.
	strangers []string
	// ownStale is set when another session of the user stored text under
	// a seq this view already showed a chunk of its own under (typed,
	// then held for the node's limits and renumbered above the other
	// session's): the user's own line here is not the room's. Once the
	// session has nothing unacknowledged the view joins the room again
	// for its state (resyncing set until it comes), which puts it right.
	ownStale, resyncing bool
}

// maxStrangers bounds the senders the view follows outside its users.
const maxStrangers = 64

// handle applies one session event to the view and returns the lines it
// completed, for the script mode's output. What the node and the other
// users sent (names, text, node IDs, errors) is shown escaped (termSafe):
// the lines it returns are, as is the screen; the model and the status
// keep it as it came.
func (v *chatView) handle(e client.Event) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return safeLines(v.handleLocked(e))
}

// safeLines escapes each of lines for the terminal, in place.
func safeLines(lines []string) []string {
	for i, l := range lines {
		lines[i] = termSafe(l)
	}
	return lines
}

// handleLocked is handle, its lines not escaped yet.
func (v *chatView) handleLocked(e client.Event) []string {
	switch e.Kind {
	case client.Disconnected:
		if errors.Is(e.Err, client.ErrGaveUp) {
			// The session's last event: it stopped reattaching.
			v.status = "session ended: " + e.Err.Error()
			return []string{"* " + v.status}
		}
		v.status = fmt.Sprintf("lost %s, reconnecting", orNone(e.Node.ID))
		return []string{"* " + v.status}
	case client.Reattached:
		v.status = fmt.Sprintf("failover: now on %s", e.Node.ID)
		return []string{"* " + v.status}
	case client.Moved:
		v.status = fmt.Sprintf("moved: now on %s", e.Node.ID)
		return []string{"* " + v.status}
	case client.Received:
	default:
		return nil
	}
	m := e.Message
	if m.Room != v.room {
		if m.Op == wire.OpError {
			v.status = "error: " + m.Message
			return []string{"* error " + m.Code + ": " + m.Message}
		}
		return nil
	}
	switch m.Op {
	case wire.OpRoom:
		if m.State == nil {
			return nil
		}
		if err := v.text.Load(m.State.TextState()); err != nil {
			return []string{"* bad room state: " + err.Error()}
		}
		// What we typed and the node has not stored yet is still ours.
		for _, c := range v.s.UnackedText(v.room) {
			v.text.Apply(v.s.User(), c.Seq, c.T)
		}
		v.users = slices.Clone(m.State.Users)
		resynced := v.resyncing
		v.ownStale, v.resyncing = false, false
		if resynced {
			// Its lines were printed as they came; the screen redraws
			// from the model.
			return []string{"* own text resynchronised with " + v.room}
		}
		out := []string{fmt.Sprintf("* joined %s on %s with %s", v.room, v.s.Node().ID, strings.Join(v.users, ", "))}
		for _, l := range m.State.Lines {
			out = append(out, l.From+": "+l.Text)
		}
		return out
	case wire.OpText:
		v.noteSender(m.From)
		if v.s != nil && m.From == v.s.User() && m.Seq <= v.text.Seq(m.From) {
			v.ownStale = true
			v.resyncIfDue()
		}
		res := v.text.Apply(m.From, m.Seq, m.T)
		v.alerts += res.Alerts
		var out []string
		for _, l := range res.Lines {
			out = append(out, l.From+": "+l.Text)
		}
		return out
	case wire.OpPresence:
		v.strangers = slices.DeleteFunc(v.strangers, func(u string) bool { return u == m.User })
		if m.Event == "join" && !slices.Contains(v.users, m.User) {
			v.users = append(v.users, m.User)
		}
		if m.Event == "leave" {
			// The room keeps a leaver's line and seq, to go on with when
			// they come back; so does the view, following them among the
			// strangers, which bounds how many it keeps.
			v.users = slices.DeleteFunc(v.users, func(u string) bool { return u == m.User })
			v.noteSender(m.User)
		}
		return []string{fmt.Sprintf("* %s %s", m.User, map[string]string{"join": "joined", "leave": "left"}[m.Event])}
	case wire.OpAck:
		v.resyncIfDue()
	case wire.OpError:
		v.status = "error: " + m.Message
		if m.Seq != 0 && m.Code != wire.CodeRate && m.Code != wire.CodeUnavailable && v.s != nil &&
			!slices.ContainsFunc(v.s.UnackedText(v.room), func(c wire.Message) bool { return c.Seq == m.Seq }) {
			// A chunk refused for good (the session dropped it): the view
			// showed it as typed, and the room never stored it.
			v.ownStale = true
			v.resyncIfDue()
		}
		return []string{"* error " + m.Code + ": " + m.Message}
	}
	return nil
}

// resyncIfDue joins the room again for its state when the user's own line
// is stale and nothing the session typed waits for an ack (the state then
// holds all of it). A re-join changes nothing else in the room.
func (v *chatView) resyncIfDue() {
	if !v.ownStale || v.resyncing || len(v.s.UnackedText(v.room)) > 0 {
		return
	}
	if err := v.s.Join(v.room); err != nil {
		return // the session has ended or left the room: nothing to show right
	}
	v.resyncing = true
}

// noteSender counts from among the strangers when it is not a member,
// forgetting the oldest stranger's text past maxStrangers.
func (v *chatView) noteSender(from string) {
	if slices.Contains(v.users, from) || slices.Contains(v.strangers, from) || v.s != nil && from == v.s.User() {
		return
	}
	v.strangers = append(v.strangers, from)
	if len(v.strangers) > maxStrangers {
		v.text.Forget(v.strangers[0])
		v.strangers = v.strangers[1:]
	}
}

// typed sends text as the user typed it and shows it at once, returning
// the lines it completed, escaped for the terminal.
//
// The session sends text longer than the node's max_chunk as several
// chunks, numbered in a row up to the seq SendText returns, and the room
// applies each under its own. The view does the same in effect: the text
// under the first seq after the user's last, nothing under the others.
// Applied under the last seq alone, it would leave a gap, a U+FFFD, in
// the user's own line. Seqs that cannot all be this text's (a chunk has
// at least one byte: the session renumbered them, or the room's state has
// not come yet) take it under the last, as before; the state, or the
// resync that follows a stale own line, puts the line right.
func (v *chatView) typed(text string) ([]string, error) {
	seq, err := v.s.SendText(v.room, text)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	me := v.s.User()
	first := v.text.Seq(me) + 1
	if seq < first || seq-first >= uint64(len(text)) {
		first = seq
	}
	res := v.text.Apply(me, first, text)
	for s := first + 1; s <= seq; s++ {
		v.text.Apply(me, s, "") // the rest of the text's chunks
	}
	var out []string
	for _, l := range res.Lines {
		out = append(out, l.From+": "+l.Text)
	}
	return safeLines(out), nil
}

// runScript types stdin at pace and prints completed lines and events.
func (v *chatView) runScript(ctx context.Context, in io.Reader, out io.Writer, pace, linger time.Duration) error {
	var wmu sync.Mutex
	print := func(lines []string) {
		wmu.Lock()
		defer wmu.Unlock()
		for _, l := range lines {
			fmt.Fprintln(out, l)
		}
	}
	ended := make(chan struct{}) // closed once the session has ended
	go func() {
		defer close(ended)
		for e := range v.s.Events() {
			print(v.handle(e))
		}
	}()
	// The input is read in a goroutine of its own, as runTerminal reads
	// the terminal: a read waits for as long as the input stays open, and
	// a signal must still stop the command. The goroutine is left blocked
	// in that read; the process exits.
	chunks := make(chan string)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		script := scriptInput{r: bufio.NewReader(in)}
		for {
			text, err := script.next()
			if err != nil {
				return
			}
			select {
			case chunks <- text:
			case <-stop:
				return
			}
		}
	}()
	tick := time.NewTicker(max(pace, time.Microsecond))
	defer tick.Stop()
typing:
	for {
		select {
		case text, ok := <-chunks:
			if !ok {
				break typing
			}
			if _, err := v.typed(text); err != nil {
				return v.endErr(err)
			}
		case <-ended:
			return v.endErr(nil)
		case <-ctx.Done():
			return nil
		}
		select {
		case <-tick.C:
		case <-ended:
			return v.endErr(nil)
		case <-ctx.Done():
			return nil
		}
	}
	// Wait for the acknowledgements, then listen a little longer.
	deadline := time.Now().Add(linger)
	for v.s.Unacked(v.room) > 0 && time.Now().Before(deadline) {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ended:
			return v.endErr(nil)
		case <-ctx.Done():
			return nil
		}
	}
	select {
	case <-time.After(time.Until(deadline)):
	case <-ended:
		return v.endErr(nil)
	case <-ctx.Done():
	}
	if n := v.s.Unacked(v.room); n > 0 {
		return fmt.Errorf("chat: %d chunks not acknowledged", n)
	}
	return nil
}

// endErr is the command's error once the session has ended (its events
// closed, or err from sending): the session's reason, for exit 1. An
// error from sending while the session lives is returned as it is.
func (v *chatView) endErr(err error) error {
	if end := v.s.Err(); end != nil {
		return fmt.Errorf("chat: %w", end)
	}
	if err != nil {
		return err
	}
	return errors.New("chat: the session ended")
}

// scriptInput is --script's standard input, as the chunks to type.
type scriptInput struct {
	r    *bufio.Reader
	ends lineEnds
}

// next returns the next chunk: one character, each line end (CR, LF or
// CR LF) as one lineSeparator. It returns the reader's error at the end.
func (s *scriptInput) next() (string, error) {
	for {
		ch, _, err := s.r.ReadRune()
		if err != nil {
			return "", err
		}
		end, ok := s.ends.end(ch)
		switch {
		case !ok:
			return string(ch), nil
		case end != "":
			return end, nil
		}
	}
}

// runTerminal is the interactive client: raw mode, each keystroke sent as
// it is typed, every participant's live line redrawn as it changes.
func (v *chatView) runTerminal(ctx context.Context, out io.Writer) error {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return errors.New("chat: standard input is not a terminal (use --script for pipes)")
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("chat: raw mode: %w", err)
	}
	defer func() {
		_ = term.Restore(fd, old)
		fmt.Fprint(out, "\r\n")
	}()
	v.mu.Lock()
	v.status = "on " + v.s.Node().ID
	v.mu.Unlock()

	redraw := make(chan struct{}, 1)
	poke := func() {
		select {
		case redraw <- struct{}{}:
		default:
		}
	}
	ended := make(chan struct{}) // closed once the session has ended
	go func() {
		defer close(ended)
		for e := range v.s.Events() {
			v.handle(e)
			poke()
		}
	}()
	keys := make(chan []byte)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := os.Stdin.Read(buf)
			if err != nil {
				close(keys)
				return
			}
			keys <- append([]byte(nil), buf[:n]...)
		}
	}()
	// A terminal resized is drawn again at once, at its new size: its
	// rows and rules, drawn for the old width, rewrap into a garble.
	resized := make(chan os.Signal, 1)
	defer notifyResize(resized)()
	v.draw(out)
	var kb keyInput
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-redraw:
			v.draw(out)
		case <-resized:
			v.draw(out)
		case <-ended:
			// The status says why; the deferred restore leaves raw mode
			// before the error is printed.
			v.draw(out)
			return v.endErr(nil)
		case b, ok := <-keys:
			if !ok {
				return nil
			}
			text, quit := kb.read(b)
			if quit {
				return nil
			}
			if text != "" {
				if _, err := v.typed(text); err != nil {
					return v.endErr(err)
				}
				v.draw(out)
			}
		}
	}
}

// keyInput turns what a terminal in raw mode sends into the text to type.
type keyInput struct {
	pending []byte // the start of a character the next read completes
	ends    lineEnds
}

// read takes one read of the terminal and returns the text it types:
// Enter (CR), LF and CR LF end one line (lineSeparator), BACKSPACE and
// DEL erase (U+0008), escape sequences (arrows and the like, and the
// strings a terminal answers queries with) and other control characters
// are dropped, the rest is typed as it is. A
// character or an escape sequence cut by the read's end waits for the
// next. quit is true at
// Ctrl-C or Ctrl-D; what came before it in the read is dropped.
func (k *keyInput) read(b []byte) (text string, quit bool) {
	k.pending = append(k.pending, b...)
	var out strings.Builder
	for len(k.pending) > 0 {
		c := k.pending[0]
		if !utf8.FullRune(k.pending) {
			break
		}
		r, size := utf8.DecodeRune(k.pending)
		if end, ok := k.ends.end(r); ok {
			out.WriteString(end)
			k.pending = k.pending[size:]
			continue
		}
		switch {
		case c == 3 || c == 4: // Ctrl-C, Ctrl-D
			k.pending = nil
			return "", true
		case c == 0x7f || c == 0x08:
			out.WriteByte(0x08)
		case c == 0x1b:
			// Drop terminal escape sequences (arrows and the like); one
			// the read cut waits for the rest, which is dropped with it.
			n, whole := escapeLen(k.pending)
			if !whole {
				return out.String(), false
			}
			k.pending = k.pending[n:]
			continue
		case c < 0x20:
		default:
			out.WriteRune(r)
		}
		k.pending = k.pending[size:]
	}
	return out.String(), false
}

// maxEscape bounds an escape sequence keyInput waits for: past it, the
// ESC alone is dropped and the rest read as typed.
const maxEscape = 32

// maxTermString bounds a terminal's string keyInput waits for the end
// of: past it, what came is dropped and the rest read as typed.
const maxTermString = 4096

// escapeLen is the length of the escape sequence p starts with (p[0] is
// ESC): ESC [ and its parameter and intermediate bytes up to a final
// byte (CSI: arrows, Home, F5 and up), ESC O and one byte (SS3: F1 to
// F4, arrows in application mode), a string up to its end (termString),
// else the ESC alone. whole is false while p ends before the sequence
// does.
func escapeLen(p []byte) (n int, whole bool) {
	switch {
	case len(p) < 2:
		return 0, false
	case p[1] == ']' || p[1] == 'P' || p[1] == '_':
		return termString(p)
	case p[1] == '[':
		for i := 2; i < len(p) && i < maxEscape; i++ {
			if p[i] >= 0x40 && p[i] <= 0x7e {
				return i + 1, true
			}
		}
		if len(p) >= maxEscape {
			return 1, true
		}
		return 0, false
	case p[1] == 'O':
		if len(p) < 3 {
			return 0, false
		}
		return 3, true
	}
	return 1, true
}

// termString is the length of the terminal's string p starts with: ESC ]
// (OSC), ESC P (DCS) or ESC _ (APC) up to its BEL or ESC \ (ST), as a
// terminal answers a query (a window title reported back, a colour): it
// is dropped whole, never typed into the room. Another control ends it
// where it is (the string was cut short, or was Alt-] typed: Ctrl-C still
// quits), as do another ESC and maxTermString bytes without an end.
// whole is false while p ends before the string does.
func termString(p []byte) (n int, whole bool) {
	for i := 2; i < len(p); i++ {
		switch {
		case i >= maxTermString:
			return i, true
		case p[i] == 0x07: // BEL
			return i + 1, true
		case p[i] == 0x1b && i+1 == len(p):
			return 0, false
		case p[i] == 0x1b && p[i+1] == '\\':
			return i + 2, true
		case p[i] < 0x20: // another ESC too
			return i, true
		}
	}
	return 0, false
}

// draw repaints the screen, sized to the terminal on standard output.
func (v *chatView) draw(out io.Writer) {
	v.mu.Lock()
	defer v.mu.Unlock()
	width, height, err := term.GetSize(int(os.Stdout.Fd()))
	if err != nil || width < 1 || height < 5 {
		width, height = 80, 24
	}
	screen := v.screenLocked(v.s.User(), width, height)
	if v.alerts > 0 {
		screen += "\a"
		v.alerts = 0
	}
	_, _ = io.WriteString(out, screen)
}

// screenLocked is what draw writes for a terminal of width columns and
// height rows, with me the user: a header, the last completed lines, then
// the live lines of the members and of anyone else whose line holds text,
// the user's own last. Everything the node and the users sent is escaped
// (termSafe): the screen's own clearing is its only control. The header is cut and the rules drawn to
// the width: a row longer than the terminal would wrap onto the next and
// push the top of the screen out. For the same reason the lines shown
// are those whose wrapped rows fit, and a live line shows the end that
// fits one row.
func (v *chatView) screenLocked(me string, width, height int) string {
	state := v.text.State()
	rule := strings.Repeat("-", width) + "\r\n"
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J")
	// What the node and the users sent is escaped before the header is
	// clipped, so that clip never cuts inside an escape sequence.
	header := fmt.Sprintf("room %s as %s, %s; users: %s; Ctrl-C quits", v.room, me, v.status, strings.Join(v.users, ", "))
	b.WriteString(clip(termSafe(header), width) + "\r\n")
	b.WriteString(rule)
	// The others' live rows: a sender who left (or never joined) has one
	// while their line holds text.
	var live []string
	for _, u := range slices.Sorted(maps.Keys(state.Live)) {
		if u != me && (state.Live[u] != "" || slices.Contains(v.users, u)) {
			live = append(live, u)
		}
	}
	room := height - 4 - len(live) // the header, two rules, the live rows and the user's own
	// The last lines that fit, each in as many rows as the terminal
	// wraps it onto; when not even the last one does, its end.
	var rows []string
	for i := len(state.Lines) - 1; i >= 0 && room > 0; i-- {
		row := termSafe(state.Lines[i].From + ": " + state.Lines[i].Text)
		n := rowsOf(row, width)
		if n > room {
			if len(rows) == 0 {
				rows = append(rows, tail(row, width))
			}
			break
		}
		rows = append(rows, row)
		room -= n
	}
	slices.Reverse(rows)
	for _, row := range rows {
		b.WriteString(row + "\r\n")
	}
	b.WriteString(rule)
	// A live line keeps to one row, its end shown: what is being typed.
	for _, u := range live {
		b.WriteString(liveRow(termSafe(u+"> "), termSafe(state.Live[u]), width) + "\r\n")
	}
	b.WriteString(liveRow(termSafe(me+"> "), termSafe(state.Live[me]), width))
	return b.String()
}

// rowsOf is how many rows of a terminal width columns wide s takes, as
// the terminal wraps it: a character that does not fit at the end of a
// row goes whole to the next (a wide one leaves the last column empty).
func rowsOf(s string, width int) int {
	rows, used, state := 1, 0, -1
	for rest := s; rest != ""; {
		var w int
		_, rest, w, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if used+w > width && used > 0 {
			rows++
			used = 0
		}
		used += w
	}
	return rows
}

// tail cuts s to its end that fits in width columns, a "<" in the first
// column when something was cut (ASCII: an ellipsis is one column or
// two, as the terminal's locale has it).
func tail(s string, width int) string {
	if uniseg.StringWidth(s) <= width {
		return s
	}
	var clusters []string
	var widths []int
	state := -1
	for rest := s; rest != ""; {
		var c string
		var w int
		c, rest, w, state = uniseg.FirstGraphemeClusterInString(rest, state)
		clusters, widths = append(clusters, c), append(widths, w)
	}
	used, from := 1, len(clusters) // the "<" takes one column
	for from > 0 && used+widths[from-1] <= width {
		from--
		used += widths[from]
	}
	if width < 1 {
		return ""
	}
	return "<" + strings.Join(clusters[from:], "")
}

// liveRow is a live line's row: prefix (who) and text, and when the two
// are wider than the terminal, the end of text after as much of prefix
// as leaves it 8 columns or more.
func liveRow(prefix, text string, width int) string {
	if uniseg.StringWidth(prefix)+uniseg.StringWidth(text) <= width {
		return prefix + text
	}
	p := clip(prefix, max(width-8, 0))
	return p + tail(text, width-uniseg.StringWidth(p))
}

// clip cuts s to at most width columns of a terminal, between characters
// as the user sees them (a wide character takes two columns).
func clip(s string, width int) string {
	if uniseg.StringWidth(s) <= width {
		return s
	}
	var b strings.Builder
	used, state := 0, -1
	for rest := s; rest != ""; {
		var c string
		var w int
		c, rest, w, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if used+w > width {
			break
		}
		b.WriteString(c)
		used += w
	}
	return b.String()
}
