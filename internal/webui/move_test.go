package webui_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// tcpMember is a protocol v1 session over TCP in room lobby: what it
// received, in order, from its reader goroutine.
type tcpMember struct {
	conn net.Conn
	got  chan wire.Message
}

// annAndBob starts one node, configured by configure when it is not
// nil, opens ann's page on it in a browser of its own, and joins bob to
// lobby over TCP: it returns ann's tab, bob, and the room's state bob
// got.
func annAndBob(t *testing.T, configure func(int, *node.Config)) (context.Context, *tcpMember, wire.Message) {
	t.Helper()
	c := nodetest.Start(t, 1, nodetest.Options{Configure: configure})
	c.WaitRoomsReady(60 * time.Second)
	n := c.Nodes[0]
	ann := page(t, newBrowser(t), n.HTTPAddr(), "ann")
	bob := joinTCP(t, n.Addr(), "bob")
	st := bob.next(t, "bob's room state", func(m wire.Message) bool { return m.Op == wire.OpRoom && m.State != nil })
	return ann, bob, st
}

func joinTCP(t *testing.T, addr, user string) *tcpMember {
	t.Helper()
	return joinTCPAs(t, addr, wire.Message{Op: wire.OpAttach, User: user})
}

// joinTCPAs is joinTCP attaching with attach (a device, say).
func joinTCPAs(t *testing.T, addr string, attach wire.Message) *tcpMember {
	t.Helper()
	user := attach.User
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := &tcpMember{conn: conn, got: make(chan wire.Message, 1024)}
	t.Cleanup(func() { conn.Close() })
	for _, msg := range []wire.Message{
		{Op: wire.OpHello, V: 1, Client: "move-test/1"},
		attach,
		{Op: wire.OpJoin, Room: "lobby"},
	} {
		b, err := wire.Encode(msg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatalf("%s: sending %s: %v", user, msg.Op, err)
		}
	}
	go func() {
		defer close(m.got)
		sc := bufio.NewScanner(conn)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			msg, err := wire.Decode(sc.Bytes())
			if err != nil {
				continue
			}
			m.got <- msg
		}
	}()
	return m
}

// TestBrowserMove drains the node a browser page is attached to while
// its user types: the page moves make-before-break (client.js, "move"),
// ends on the other node with its text intact and every chunk
// acknowledged, and a TCP member on the other node receives every chunk
// exactly once, in order, and sees no leave or join of the user who
// moved.
func TestBrowserMove(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	browser := newBrowser(t)
	ann := page(t, browser, c.Nodes[0].HTTPAddr(), "ann")
	annNode := nodeOf(t, ann)
	from, to := c.Nodes[0], c.Nodes[1]
	if from.ID() != annNode {
		from, to = to, from
	}
	bob := joinTCP(t, to.Addr(), "bob")

	// Ann types one character every 25 ms through the compose box, as a
	// keyboard would, while her node drains.
	const text = "make before break: not one character lost or shown twice"
	typeSlowly(t, ann, text, 25*time.Millisecond)
	poll[bool](t, ann, "the first characters typed", `document.querySelector("#compose").value.length >= 5`)
	drained := from.Drain(20 * time.Second)

	poll[bool](t, ann, "ann's page on "+to.ID(), `(() => { const c = document.querySelector("#conn"); return c.dataset.state === "attached" && c.dataset.node === "`+to.ID()+`"; })()`)
	poll[bool](t, ann, "the whole line typed", `window.typed`)
	poll[bool](t, ann, "every chunk acknowledged", `window.switchboard.session.unacked("lobby").length === 0`)
	t.Logf("ann's page:\n%s", eval[string](t, ann, `[...document.querySelectorAll("#log li")].map((li) => li.textContent).join("\n")`))
	if got := eval[string](t, ann, liveOf("ann")); got != text {
		t.Errorf("ann's own line on her page is %q, want %q", got, text)
	}
	if got := eval[int](t, ann, `window.switchboard.session.moves || 0`); got != 1 {
		t.Errorf("ann's session moved %d times, want 1", got)
	}
	select {
	case <-drained:
	case <-time.After(wait):
		t.Fatalf("the drain of %s did not end: %+v", from.ID(), from.DrainStatus())
	}
	if st := from.DrainStatus(); !st.Empty || st.Closed != 0 {
		t.Errorf("the drain of %s ended %+v, want empty with no session closed", from.ID(), st)
	}

	bob.readsWholeLine(t, ann, text)
}

// readsWholeLine checks member m's account of the line ann's page, tab,
// typed: every chunk of ann's once, in seq order, making up text, with no
// presence change of ann's. One more character typed on the page after
// the line is the next chunk m gets of ann's: nothing came twice in
// between.
func (m *tcpMember) readsWholeLine(t *testing.T, tab context.Context, text string) {
	t.Helper()
	var line strings.Builder
	var last uint64
	deadline := time.After(wait)
	for line.Len() < len(text) {
		select {
		case msg, ok := <-m.got:
			if !ok {
				t.Fatalf("bob's connection ended; he had %q", line.String())
			}
			switch {
			case msg.Op == wire.OpPresence && msg.User == "ann":
				t.Errorf("bob saw ann %s (presence): she only moved or failed over", msg.Event)
			case msg.Op == wire.OpRoom && msg.State != nil:
				last = msg.State.Seqs["ann"]
				line.Reset()
				line.WriteString(msg.State.Live["ann"])
			case msg.Op == wire.OpText && msg.From == "ann":
				if msg.Seq != last+1 {
					t.Errorf("bob got ann's chunk %d after %d: each chunk once, in order", msg.Seq, last)
				}
				last = msg.Seq
				line.WriteString(msg.T)
			}
		case <-deadline:
			t.Fatalf("bob has %q of ann's line, want %q", line.String(), text)
		}
	}
	if line.String() != text {
		t.Errorf("bob has ann's line as %q, want %q", line.String(), text)
	}
	eval[bool](t, tab, `(() => { const box = document.querySelector("#compose"); box.value += "!"; box.dispatchEvent(new Event("input")); return true; })()`)
	for {
		select {
		case msg, ok := <-m.got:
			if !ok {
				t.Fatal("bob's connection ended before ann's last character")
			}
			if msg.Op == wire.OpPresence && msg.User == "ann" {
				t.Errorf("bob saw ann %s (presence): she only moved or failed over", msg.Event)
			}
			if msg.Op == wire.OpText && msg.From == "ann" {
				if msg.Seq != last+1 || msg.T != "!" {
					t.Errorf("bob got ann's chunk %d %q after %d, want %d \"!\"", msg.Seq, msg.T, last, last+1)
				}
				return
			}
		case <-deadline:
			t.Fatal("bob did not get ann's last character")
		}
	}
}

// TestBrowserMoveThatFindsNoNode drains the only node: the page's move
// finds no other node and stays on its connection. What that connection
// carried during the search (here Bob's first chunk) is read then, not
// lost: Ann's page shows his whole line. Before, the page dropped it and
// showed the gap as U+FFFD.
func TestBrowserMoveThatFindsNoNode(t *testing.T) {
	t.Parallel()
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	browser := newBrowser(t)
	n := c.Nodes[0]
	ann := page(t, browser, n.HTTPAddr(), "ann")
	bob := joinTCP(t, n.Addr(), "bob")
	poll[bool](t, ann, "bob in the room", `document.querySelector("#users").textContent.includes("bob")`)
	n.Drain(time.Minute)
	poll[bool](t, ann, "the move under way", `window.switchboard.session.moving !== null`)
	bob.send(t, wire.Message{Op: wire.OpText, Room: "lobby", Seq: 1, T: "hello"})
	bob.next(t, "the ack of bob's first chunk", func(m wire.Message) bool { return m.Op == wire.OpAck && m.Seq == 1 })
	poll[bool](t, ann, "the move given up", `window.switchboard.session.moving === null`)
	bob.send(t, wire.Message{Op: wire.OpText, Room: "lobby", Seq: 2, T: "!"})
	poll[bool](t, ann, `bob's line "hello!" on ann's page`, liveOf("bob")+` === "hello!"`)
}

// TestBrowserMoveDeadlineEndsTheStep drains the only node while the
// page's directory also lists eight nodes that take connections and
// never answer. The move's search asks them for a directory, ATTEMPT_MS
// (2 s) each, the draining node last: sixteen seconds of one step
// against the move's 10 s. The deadline ends the step under way, so the
// move gives up before it has asked all eight. Before, the machine only
// looked at the deadline between steps and the page asked every one.
func TestBrowserMoveDeadlineEndsTheStep(t *testing.T) {
	t.Parallel()
	const silentNodes = 8
	var addrs, quoted []string
	for range silentNodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			// Takes connections and never answers; closes them once
			// the listener is closed.
			defer close(done)
			var held []net.Conn
			for {
				c, err := ln.Accept()
				if err != nil {
					break
				}
				held = append(held, c)
			}
			for _, c := range held {
				c.Close()
			}
		}()
		t.Cleanup(func() {
			ln.Close()
			<-done
		})
		addrs = append(addrs, ln.Addr().String())
		quoted = append(quoted, strconv.Quote(ln.Addr().String()))
	}
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	browser := newBrowser(t)
	n := c.Nodes[0]
	ann := page(t, browser, n.HTTPAddr(), "ann")
	// Every directory the page takes lists the silent nodes too, starting
	// (never picked, but asked for a directory). The page asks them one
	// at a time (a stagger far longer than a fetch's timeout: the next
	// fetch starts when one fails): with the default stagger it would
	// have asked all eight within the move's time.
	eval[bool](t, ann, `(() => {
  const s = window.switchboard.session;
  s.staggerMs = 60000; // beyond ATTEMPT_MS
  const set = s.setDirectory.bind(s);
  s.setDirectory = (d) => { set(d); [`+strings.Join(quoted, ",")+`].forEach((a, i) => s.dir.nodes.push({ id: "silent" + i, http: a, status: "starting" })); };
  return true;
})()`)
	n.Drain(time.Minute)
	poll[bool](t, ann, "the move under way", `window.switchboard.session.moving !== null`)
	poll[bool](t, ann, "the move given up", `window.switchboard.session.moving === null`)
	lines := connLog(t, ann)
	asked := 0
	for _, a := range addrs {
		asked += count(lines, "no directory from http://"+a)
	}
	if asked == 0 || asked >= silentNodes {
		t.Errorf("the move asked %d of the %d silent nodes, want some but not all: its deadline must end the step\n%s", asked, silentNodes, strings.Join(lines, "\n"))
	}
}

// TestBrowserMoveAskedAgainOnArrival: the node a move attaches to asks
// the session to move as well, as its attach is answered (it began to
// drain just then). The page moves again once the first move is done,
// to the third node. Before, a move asked for while one was under way was
// dropped, and the page stayed on a draining node until its deadline. No
// node sends that move at a moment a test can choose, so the page is
// handed it on the new connection, as if that node had sent it.
func TestBrowserMoveAskedAgainOnArrival(t *testing.T) {
	t.Parallel()
	c, ann, first := pageInLobby(t, 3)
	eval[bool](t, ann, `(() => {
  const s = window.switchboard.session;
  const attached = s.attached.bind(s);
  s.attached = (ws, node, reason, m) => {
    attached(ws, node, reason, m);
    if (node.id !== "`+first+`" && !window.askedAgain) {
      window.askedAgain = node.id;
      s.handle(ws, { op: "move", message: node.id + " is draining" });
    }
  };
  return true;
})()`)
	nodeWithID(c, first).Drain(time.Minute)
	poll[bool](t, ann, "the second move asked for", `!!window.askedAgain`)
	second := eval[string](t, ann, `window.askedAgain`)
	poll[bool](t, ann, "the page moved twice", `window.switchboard.session.moves === 2`)
	if got := nodeOf(t, ann); got == first || got == second {
		t.Errorf("the page ended on %s; want the node that was asked neither time (not %s, not %s)", got, first, second)
	}
}

// TestBrowserCloseAsAMoveAttaches: the page's close(), called by a
// listener as the move's attach is answered, closes the connection the
// move leaves as well. Before, the move carried on once its attach was
// answered: the old connection was kept to retire RETIRE_AFTER_MS later,
// and the draining node held the closed session that long.
func TestBrowserCloseAsAMoveAttaches(t *testing.T) {
	t.Parallel()
	c, ann, first := pageInLobby(t, 2)
	eval[bool](t, ann, `(() => {
  const s = window.switchboard.session;
  window.oldWs = s.ws;
  s.addEventListener("status", (ev) => {
    if (ev.detail.state === "attached" && ev.detail.node.id !== "`+first+`" && s.moving) {
      window.closedAtMove = true;
      s.close();
    }
  });
  return true;
})()`)
	nodeWithID(c, first).Drain(time.Minute)
	poll[bool](t, ann, "the move done after close()", `window.closedAtMove === true && window.switchboard.session.moving === null`)
	if left := eval[string](t, ann, `(() => {
  const s = window.switchboard.session;
  return "retiring " + (s.retiring !== null) + ", old connection state " + window.oldWs.readyState;
})()`); left != "retiring false, old connection state 3" && left != "retiring false, old connection state 2" {
		t.Errorf("after close() as the move attached: %s; want nothing retiring and the old connection closing or closed (2 or 3)", left)
	}
}

// nodeWithID is c's node with id (nil if none).
func nodeWithID(c *nodetest.Cluster, id string) *node.Node {
	for _, n := range c.Nodes {
		if n.ID() == id {
			return n
		}
	}
	return nil
}

// typeSlowly starts the page typing text into its compose box, one
// character every 'every', as a keyboard would; window.typed turns true
// after the last.
func typeSlowly(t *testing.T, tab context.Context, text string, every time.Duration) {
	t.Helper()
	eval[bool](t, tab, `(() => {
  const box = document.querySelector("#compose");
  const text = `+fmt.Sprintf("%q", text)+`;
  let i = 0;
  window.typed = false;
  const timer = setInterval(() => {
    box.value += text[i++];
    box.dispatchEvent(new Event("input"));
    if (i === text.length) { clearInterval(timer); window.typed = true; }
  }, `+strconv.Itoa(int(every.Milliseconds()))+`);
  return true;
})()`)
}

// pageInLobby starts a cluster of n nodes and a page for ann, and waits
// until the page has the lobby's state. It returns the cluster, the page
// and the ID of the node the page attached to.
func pageInLobby(t *testing.T, n int) (*nodetest.Cluster, context.Context, string) {
	t.Helper()
	c := nodetest.Start(t, n, nodetest.Options{})
	c.WaitRoomsReady(60 * time.Second)
	ann := page(t, newBrowser(t), c.Nodes[0].HTTPAddr(), "ann")
	poll[bool](t, ann, "the room synced", `window.switchboard.session.rooms.get("lobby")?.synced === true`)
	return c, ann, nodeOf(t, ann)
}
