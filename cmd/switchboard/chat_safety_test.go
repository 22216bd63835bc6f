package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// chatNode is a fake node n1 of the service chat.test for chat's tests,
// on loopback: it pongs pings, answers hello with a directory listing
// itself, and hands every other message to answer, with the number of
// its connection (1 for the first) and a function that sends on it.
// answer returns false to close the connection. It returns the node's
// address.
func chatNode(t *testing.T, answer func(conn int, m wire.Message, send func(wire.Message)) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	serve := func(c net.Conn, conn int) {
		defer wg.Done()
		defer c.Close()
		send := func(m wire.Message) {
			line, err := wire.Encode(m)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = c.Write(line)
		}
		lr := wire.NewLineReader(c, wire.MaxLine)
		for {
			line, err := lr.Next()
			if err != nil {
				return
			}
			m, err := wire.Decode(line)
			if err != nil {
				continue
			}
			switch m.Op {
			case wire.OpPing:
				send(wire.Message{Op: wire.OpPong})
			case wire.OpHello:
				send(wire.DirectoryMessage(&wire.Directory{Service: "chat.test", Self: "n1", Nodes: []directory.Node{
					{ID: "n1", Addr: addr, Status: directory.Up, Capacity: 100},
				}}))
			default:
				if !answer(conn, m, send) {
					return
				}
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for conns := 1; ; conns++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go serve(c, conns)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return addr
}

// attachedAndJoined answers attach with attached (with limits, when
// not nil) and join with the room's state, ann its only member.
func attachedAndJoined(limits *wire.Limits) func(int, wire.Message, func(wire.Message)) bool {
	return func(_ int, m wire.Message, send func(wire.Message)) bool {
		switch m.Op {
		case wire.OpAttach:
			send(wire.Message{Op: wire.OpAttached, User: m.User, Node: "n1", Session: "s1", Limits: limits})
		case wire.OpJoin:
			send(wire.Message{Op: wire.OpRoom, Room: m.Room, State: &wire.RoomState{Users: []string{"ann"}, Live: map[string]string{}}})
		}
		return true
	}
}

// annInLobby dials addr as ann and joins lobby; the session's events are
// left to the test.
func annInLobby(t *testing.T, addr string) *client.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := client.Dial(ctx, addr, client.WithUser("ann"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.JoinWait(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	return s
}

// terminalControl returns the first thing in s that acts on a terminal:
// a control character (C0, DEL, C1), a bidirectional control, a line or
// paragraph separator, or a byte that is not UTF-8; "" if none.
func terminalControl(s string) string {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return fmt.Sprintf("byte %#x", s[i])
		case unicode.IsControl(r), r == '\u061c', r == '\u200e', r == '\u200f',
			r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069', r == '\u2028', r == '\u2029':
			return fmt.Sprintf("%U", r)
		}
	}
	return ""
}

// What a hostile node sends (names, text, presence, errors, node IDs)
// and what users type through an honest one (bidirectional controls, which
// rooms keep) reach neither chat's screen nor its --script lines as
// terminal controls: they are shown escaped. They were printed raw: a
// node could retitle the window and have the terminal type into the room.
func TestChatShowsNoTerminalControls(t *testing.T) {
	s := annInLobby(t, chatNode(t, attachedAndJoined(nil)))
	v := &chatView{s: s, room: "lobby", text: rtt.NewRoom(0), status: "on n1" + hostile}
	eve, mallory := "eve"+hostile, "mallory"+hostile
	bidi := "look \u202eereh\u2066 too\u2069"
	in := func(m wire.Message) client.Event { return client.Event{Kind: client.Received, Message: m} }
	var lines []string
	for _, e := range []client.Event{
		in(wire.Message{Op: wire.OpRoom, Room: "lobby", State: &wire.RoomState{
			Users: []string{"ann", eve},
			Lines: []wire.Line{{From: eve, Text: bidi}},
			Live:  map[string]string{eve: bidi, "ann": ""},
			Seqs:  map[string]uint64{eve: 1},
		}}),
		in(wire.Message{Op: wire.OpPresence, Room: "lobby", User: mallory, Event: "join"}),
		in(wire.Message{Op: wire.OpText, Room: "lobby", From: eve, Seq: 2, T: "\u2028" + hostile + bidi}),
		in(wire.Message{Op: wire.OpText, Room: "lobby", From: mallory, Seq: 1, T: bidi + "\u2028" + bidi}),
		in(wire.Message{Op: wire.OpText, Room: "lobby", From: "stranger" + hostile, Seq: 1, T: bidi}),
		in(wire.Message{Op: wire.OpPresence, Room: "lobby", User: mallory, Event: "leave"}),
		in(wire.Message{Op: wire.OpError, Room: "lobby", Code: "limit" + hostile, Message: "no" + hostile}),
		in(wire.Message{Op: wire.OpError, Code: "busy" + hostile, Message: "go away" + hostile}),
		{Kind: client.Disconnected, Node: directory.Node{ID: "n1" + hostile}},
		{Kind: client.Reattached, Node: directory.Node{ID: "n2" + hostile}},
		{Kind: client.Moved, Node: directory.Node{ID: "n3" + hostile}},
	} {
		lines = append(lines, v.handle(e)...)
	}
	typed, err := v.typed("me " + bidi + "\u2028")
	if err != nil {
		t.Fatal(err)
	}
	lines = append(lines, typed...)
	for _, l := range lines {
		if c := terminalControl(l); c != "" {
			t.Errorf("--script line %q holds %s", l, c)
		}
	}
	v.mu.Lock()
	screen := v.screenLocked(s.User(), 200, 40)
	v.mu.Unlock()
	rows, ok := strings.CutPrefix(screen, "\x1b[H\x1b[2J")
	if !ok {
		t.Fatalf("screen %q does not start by clearing the terminal", screen)
	}
	for _, row := range strings.Split(rows, "\r\n") {
		if c := terminalControl(row); c != "" {
			t.Errorf("screen row %q holds %s", row, c)
		}
	}
	// Shown, escaped.
	all := strings.Join(lines, "\n") + rows
	for _, want := range []string{`eve\u001b]0;PWNED\u0007`, `\u202eereh\u2066`, `go away\u001b]0;PWNED`, `n1\u001b]0;PWNED`, `mallory\u001b]0;PWNED`} {
		if !strings.Contains(all, want) {
			t.Errorf("chat did not show %q:\nlines %q\nscreen %q", want, lines, rows)
		}
	}
}

// The terminal's answers to queries (a window title reported back by
// OSC, DCS and APC strings) are dropped whole, also when a read cuts
// them; they were typed into the room but for their ESC.
func TestChatTerminalDropsStringReplies(t *testing.T) {
	var k keyInput
	for _, step := range []struct {
		read, text string
		quit       bool
	}{
		{"a\x1b]l" + "PWNED\x1b\\b", "ab", false},
		{"\x1b]0;title\x07c", "c", false},
		{"\x1bP1$r0m\x1b", "", false},
		{"\\d", "d", false},
		{"\x1b_Gi=1;OK", "", false},
		{"\x1b\\e", "e", false},
		// Alt-] and typing: the string ends at a control, which counts.
		{"\x1b]f", "", false},
		{"g\rh", "\u2028h", false},
		{"\x1b]x\x03", "", true},
	} {
		text, quit := k.read([]byte(step.read))
		if text != step.text || quit != step.quit {
			t.Errorf("read %q = %q, %v; want %q, %v", step.read, text, quit, step.text, step.quit)
		}
	}
}

// A user who leaves keeps their line and seq in the view, as in the
// room: back, their next chunk goes on with it. The view used to
// complete the line into the history and count the user's seqs from 1
// again, so their next chunk showed a gap (U+FFFD) the room did not
// have. Leavers are followed as strangers: the view stays bounded.
func TestChatKeepsALeaversLine(t *testing.T) {
	v := &chatView{room: "r", text: rtt.NewRoom(0), users: []string{"ann", "bob"}}
	room := rtt.NewRoom(0) // the room's model: presence changes nothing in it
	text := func(from string, seq uint64, t string) client.Event {
		room.Apply(from, seq, t)
		return client.Event{Kind: client.Received, Message: wire.Message{Op: wire.OpText, Room: "r", From: from, Seq: seq, T: t}}
	}
	presence := func(user, event string) client.Event {
		return client.Event{Kind: client.Received, Message: wire.Message{Op: wire.OpPresence, Room: "r", User: user, Event: event}}
	}
	v.handle(text("bob", 1, "hel"))
	v.handle(presence("bob", "leave"))
	if diff := cmp.Diff(v.users, []string{"ann"}); diff != "" {
		t.Errorf("users after bob left (-got +want):\n%s", diff)
	}
	v.handle(presence("bob", "join"))
	v.handle(text("bob", 2, "lo"))
	if diff := cmp.Diff(v.text.State(), room.State()); diff != "" {
		t.Errorf("the view's text is not the room's (-view +room):\n%s", diff)
	}
	for i := range 1000 {
		u := fmt.Sprintf("u%d", i)
		v.handle(presence(u, "join"))
		v.handle(text(u, 1, "x"))
		v.handle(presence(u, "leave"))
	}
	if got := len(v.text.State().Live); got > maxStrangers+2 {
		t.Errorf("the view follows %d senders after 1000 came and left, want at most %d", got, maxStrangers+2)
	}
	if v.text.Live("bob") != "hello" {
		t.Errorf("bob's line: %q, want %q", v.text.Live("bob"), "hello")
	}
}

// Text longer than the node's max_chunk goes as several chunks; the view
// shows it in the user's line as the room has it. It applied the whole
// text under the last chunk's seq, and showed a gap (U+FFFD) before it.
func TestChatShowsOwnLongTextWhole(t *testing.T) {
	s := annInLobby(t, chatNode(t, attachedAndJoined(&wire.Limits{MaxChunk: 4, ChunkRate: 1000, ChunkBurst: 1000, ByteRate: 1e6, ByteBurst: 1 << 20})))
	v := &chatView{s: s, room: "lobby", text: rtt.NewRoom(0), users: []string{"ann"}}
	for _, typed := range []string{"hé, world", "!", "sé\u2028", "done"} {
		if _, err := v.typed(typed); err != nil {
			t.Fatal(err)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.text.Live("ann") != "done" || v.text.Seq("ann") != 7 {
		t.Errorf("ann's line %q at seq %d, want %q at seq 7 (cut in 4-byte chunks)", v.text.Live("ann"), v.text.Seq("ann"), "done")
	}
	want := []rtt.Line{{From: "ann", Text: "hé, world!sé"}}
	if diff := cmp.Diff(v.text.State().Lines, want); diff != "" {
		t.Errorf("lines (-got +want):\n%s", diff)
	}
}

// runChatArgs runs switchboard with args and ctx as main does, and
// returns its exit code and what it wrote.
func runChatArgs(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errs bytes.Buffer
	code = report(&errs, run(ctx, args, &out, &errs))
	return code, out.String(), errs.String()
}

// chat says it waits for the room, and gives up after --timeout with exit
// 1 when the node never answers the join. It waited for ever, silent.
func TestChatJoinWaitIsBounded(t *testing.T) {
	addr := chatNode(t, func(_ int, m wire.Message, send func(wire.Message)) bool {
		if m.Op == wire.OpAttach {
			send(wire.Message{Op: wire.OpAttached, User: m.User, Node: "n1", Session: "s1"})
		}
		return true // the join goes unanswered
	})
	// A bound on the test, not a wait: past it the command is stopped.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// --timeout bounds the attach too: 2 s leave a loaded machine ample
	// time for it, and the join then goes unanswered for the rest.
	code, _, stderr := runChatArgs(ctx, "chat", "--script", "--timeout", "2s", "--service", addr, "--user", "ann", "lobby")
	if code != exitFailure || ctx.Err() != nil {
		t.Errorf("exit %d (%v), want %d\n%s", code, ctx.Err(), exitFailure, stderr)
	}
	for _, want := range []string{"chat: waiting for room lobby on n1", `switchboard: chat: joining "lobby": no answer within 2s (--timeout)`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr:\n%s\nwant %q", stderr, want)
		}
	}
}

// A signal while chat waits for the room ends it with exit 1: the
// command did not join. It exited 0.
func TestChatInterruptedJoinFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := chatNode(t, func(_ int, m wire.Message, send func(wire.Message)) bool {
		switch m.Op {
		case wire.OpAttach:
			send(wire.Message{Op: wire.OpAttached, User: m.User, Node: "n1", Session: "s1"})
		case wire.OpJoin:
			cancel() // Ctrl-C while the join waits
		}
		return true
	})
	code, _, stderr := runChatArgs(ctx, "chat", "--script", "--service", addr, "--user", "ann", "lobby")
	if code != exitFailure {
		t.Errorf("exit %d, want %d\n%s", code, exitFailure, stderr)
	}
	if want := `switchboard: chat: stopped while joining "lobby"`; !strings.Contains(stderr, want) {
		t.Errorf("stderr:\n%s\nwant %q", stderr, want)
	}
}

// When the session ends for good (its node drops it and refuses it
// again), chat says why and exits 1, also with its input still open.
// It kept saying it was reconnecting and exited 0.
func TestChatEndsWithItsSession(t *testing.T) {
	addr := chatNode(t, func(conn int, m wire.Message, send func(wire.Message)) bool {
		switch {
		case m.Op == wire.OpAttach && conn == 1:
			send(wire.Message{Op: wire.OpAttached, User: m.User, Node: "n1", Session: "s1"})
		case m.Op == wire.OpAttach:
			send(wire.Message{Op: wire.OpError, Code: wire.CodeUnauthorized, Message: "token revoked"})
			return false
		case m.Op == wire.OpJoin:
			send(wire.Message{Op: wire.OpRoom, Room: m.Room, State: &wire.RoomState{Users: []string{"ann"}, Live: map[string]string{}}})
			return false // and drops the session
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, stdout, stderr := runChatArgs(ctx, "chat", "--script", "--linger", "1h", "--service", addr, "--user", "ann", "lobby")
	if code != exitFailure || ctx.Err() != nil {
		t.Errorf("exit %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", code, ctx.Err(), exitFailure, stdout, stderr)
	}
	if want := "switchboard: chat: client: session gave up: "; !strings.Contains(stderr, want) || !strings.Contains(stderr, "token revoked") {
		t.Errorf("stderr:\n%s\nwant %q and the node's reason", stderr, want)
	}
	if want := "* session ended: client: session gave up: "; !strings.Contains(stdout, want) {
		t.Errorf("stdout:\n%s\nwant %q", stdout, want)
	}
}
