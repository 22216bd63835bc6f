package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/leaktest"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// settle bounds a wait for something that must happen: generous, so that
// a loaded CI machine never fails a test that is only slow. How fast
// things happen is measured by the benchmarks, not asserted here.
const settle = 30 * time.Second

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

func dial(t *testing.T, addr string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.DialConn(ctx, nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *client.Conn) wire.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func send(t *testing.T, c *client.Conn, m wire.Message) {
	t.Helper()
	if err := c.Send(m); err != nil {
		t.Fatal(err)
	}
}

// recvReply receives the next message that is not a directory push.
func recvReply(t *testing.T, c *client.Conn) wire.Message {
	t.Helper()
	for {
		if m := recv(t, c); m.Op != wire.OpDirectory {
			return m
		}
	}
}

// attach says hello and attaches as user; it returns the attached message.
func attach(t *testing.T, c *client.Conn, user string) wire.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Hello(ctx, "test/1", ""); err != nil {
		t.Fatal(err)
	}
	send(t, c, wire.Message{Op: wire.OpAttach, User: user})
	m := recvReply(t, c)
	if m.Op != wire.OpAttached {
		t.Fatalf("attach as %s: got %+v, want attached", user, m)
	}
	return m
}

func TestClusterConverges(t *testing.T) {
	c := nodetest.Start(t, 5, nodetest.Options{})
	for _, n := range c.Nodes {
		conn := dial(t, n.Addr())
		// A node starved of CPU for three heartbeats is rightly seen down
		// for a moment: convergence is what the directory reaches, so the
		// hello is asked again until it shows it (or settle passes).
		nodetest.Eventually(t, settle, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			dir, err := conn.Hello(ctx, "test/1", "")
			cancel()
			if err != nil {
				return err
			}
			if dir.Self != n.ID() || dir.Service != c.Config.Service {
				return fmt.Errorf("hello at %s: self %q service %q, want %q %q", n.ID(), dir.Self, dir.Service, n.ID(), c.Config.Service)
			}
			if len(dir.Nodes) != 5 {
				return fmt.Errorf("hello at %s lists %d nodes, want 5: %+v", n.ID(), len(dir.Nodes), dir.Nodes)
			}
			for i, e := range dir.Nodes {
				want := c.Nodes[i]
				if e.ID != want.ID() || e.Addr != want.Addr() || e.HTTP != want.HTTPAddr() || e.Status != directory.Up || e.Capacity != 10000 {
					return fmt.Errorf("hello at %s: entry %d = %+v, want %s at %s up", n.ID(), i, e, want.ID(), want.Addr())
				}
				if e.AgeMS < 0 || e.AgeMS > settle.Milliseconds() {
					return fmt.Errorf("entry %s age %d ms", e.ID, e.AgeMS)
				}
			}
			return nil
		})
	}
}

func TestUsersPropagate(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	conn := dial(t, c.Nodes[0].Addr())
	attach(t, conn, "alice")
	usersEverywhere := func(want int) func() error {
		return func() error {
			for _, n := range c.Nodes {
				e, _ := nodetest.Lookup(n, "n1")
				if e.Users != want {
					return fmt.Errorf("%s sees n1 with %d users, want %d", n.ID(), e.Users, want)
				}
			}
			return nil
		}
	}
	nodetest.Eventually(t, settle, usersEverywhere(1))
	conn.Close()
	nodetest.Eventually(t, settle, usersEverywhere(0))
}

func TestHaltedNodeGoesDownThenLeaves(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		// A peer stays down this long before it is forgotten: long
		// enough for a loaded machine's polls to see both survivors
		// report it down (300 ms was not).
		cfg.RemoveAfter = 3 * time.Second
	}})
	c.Nodes[2].Halt()
	nodetest.Eventually(t, settle, func() error {
		for _, n := range c.Nodes[:2] {
			if got := nodetest.StatusOf(n, "n3"); got != directory.Down {
				return fmt.Errorf("%s sees n3 as %q, want down", n.ID(), got)
			}
		}
		return nil
	})
	nodetest.Eventually(t, settle, func() error {
		for _, n := range c.Nodes[:2] {
			if got := nodetest.StatusOf(n, "n3"); got != "" {
				return fmt.Errorf("%s still lists n3 as %q", n.ID(), got)
			}
		}
		return nil
	})
	// The survivors keep each other up (or are up again at once after a
	// stall of three heartbeats on a loaded machine).
	nodetest.Eventually(t, settle, func() error {
		for _, n := range c.Nodes[:2] {
			for _, id := range []string{"n1", "n2"} {
				if got := nodetest.StatusOf(n, id); got != directory.Up {
					return fmt.Errorf("%s sees %s as %q, want up", n.ID(), id, got)
				}
			}
		}
		return nil
	})
}

// A node that shuts down says goodbye: its peers mark it down at once, long
// before three missed heartbeats would.
func TestShutdownSaysGoodbye(t *testing.T) {
	// Peers mark a silent node down three heartbeats after its last one,
	// so never sooner than two heartbeats after it closes: only the
	// goodbye can mark it down within that.
	const heartbeat = 4 * time.Second
	c := nodetest.Start(t, 3, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Heartbeat = heartbeat
	}})
	if err := c.Nodes[2].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 2*heartbeat, func() error {
		for _, n := range c.Nodes[:2] {
			if got := nodetest.StatusOf(n, "n3"); got != directory.Down {
				return fmt.Errorf("%s sees n3 as %q, want down", n.ID(), got)
			}
		}
		return nil
	})
}

// A node restarted with the same ID (a new incarnation) replaces the old
// entry even though its sequence numbers start again from one.
//
// The nodes share an external NATS: in an embedded cluster of two the
// halt leaves the rooms' streams without a quorum, and the new node is
// up only once they have elected leaders again (5 to 15 s here), which
// is not what this test is about.
func TestRestartedNodeReplacesOldIncarnation(t *testing.T) {
	ns := externalNATS(t, t.TempDir())
	c := nodetest.Start(t, 2, nodetest.Options{Configure: onBus(ns.ClientURL(), nil)})
	old := c.Nodes[1]
	old.Halt()
	c.Add(onBus(ns.ClientURL(), func(cfg *node.Config) { cfg.ID = "n2" }))
	nodetest.Eventually(t, settle, func() error {
		e, ok := nodetest.Lookup(c.Nodes[0], "n2")
		if !ok || e.Status != directory.Up || e.Addr != c.Nodes[2].Addr() {
			return fmt.Errorf("n1 sees n2 as %+v, want up at %s", e, c.Nodes[2].Addr())
		}
		return nil
	})
}

func TestFullAndDrainingRefuseWithDirectory(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Capacity = 1
	}})
	n1 := c.Nodes[0]
	attach(t, dial(t, n1.Addr()), "alice")
	if got := n1.Status(); got != directory.Full {
		t.Fatalf("n1 status %q with 1 of 1 users, want full", got)
	}

	second := dial(t, n1.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := second.Hello(ctx, "test/1", ""); err != nil {
		t.Fatal(err)
	}
	send(t, second, wire.Message{Op: wire.OpAttach, User: "bob"})
	m := recvReply(t, second)
	if m.Op != wire.OpError || m.Code != wire.CodeFull || m.Dir == nil || len(m.Dir.Nodes) != 2 {
		t.Fatalf("attach to a full node: got %+v, want a full error with a directory of 2", m)
	}

	n2 := c.Nodes[1]
	n2.SetDraining(true)
	third := dial(t, n2.Addr())
	if _, err := third.Hello(ctx, "test/1", ""); err != nil {
		t.Fatal(err)
	}
	send(t, third, wire.Message{Op: wire.OpAttach, User: "carol"})
	m = recvReply(t, third)
	if m.Op != wire.OpError || m.Code != wire.CodeDraining || m.Dir == nil {
		t.Fatalf("attach to a draining node: got %+v, want a draining error with a directory", m)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := nodetest.StatusOf(n1, "n2"); got != directory.Draining {
			return fmt.Errorf("n1 sees n2 as %q, want draining", got)
		}
		return nil
	})
}

func TestDirectoryPushedOnMembershipChange(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	conn := dial(t, c.Nodes[0].Addr())
	attach(t, conn, "alice")
	c.Nodes[1].SetDraining(true)
	for {
		m := recv(t, conn)
		if m.Op != wire.OpDirectory {
			t.Fatalf("got %+v, want a directory push", m)
		}
		for _, e := range m.Nodes {
			if e.ID == "n2" && e.Status == directory.Draining {
				return
			}
		}
	}
}

// Each kind of bad input gets its error code; framing errors close the
// offending session; a good session on the same node never notices.
func TestBadInput(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		// Long enough for the other cases' first line to arrive on a
		// loaded machine (300 ms was not, once in twenty suite runs).
		cfg.HelloTimeout = 2 * time.Second
	}})
	n := c.Nodes[0]
	good := dial(t, n.Addr())
	attach(t, good, "good")

	tests := []struct {
		name   string
		hello  bool
		send   []byte
		code   string
		closed bool
	}{
		{name: "line too long", send: append([]byte(`{"op":"ping","x":"`+strings.Repeat("a", 70<<10)), "\"}\n"...), code: wire.CodeLineTooLong, closed: true},
		{name: "invalid JSON", send: []byte("{nope\n"), code: wire.CodeBadJSON},
		{name: "invalid UTF-8", send: []byte("{\"op\":\"ping\",\"x\":\"\xff\xfe\"}\n"), code: wire.CodeBadUTF8},
		{name: "unknown op", send: []byte(`{"op":"teleport"}` + "\n"), code: wire.CodeUnknownOp},
		{name: "no op", send: []byte(`{"user":"x"}` + "\n"), code: wire.CodeBadRequest},
		{name: "attach before hello", send: []byte(`{"op":"attach","user":"x"}` + "\n"), code: wire.CodeNoHello},
		{name: "attach without user", hello: true, send: []byte(`{"op":"attach"}` + "\n"), code: wire.CodeBadRequest},
		{name: "server op from client", hello: true, send: []byte(`{"op":"pong"}` + "\n"), code: wire.CodeBadRequest},
		{name: "newer protocol", send: []byte(`{"op":"hello","v":9}` + "\n"), code: wire.CodeVersion},
		{name: "no hello in time", send: nil, code: wire.CodeHelloTimeout, closed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", n.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if tt.hello {
				fmt.Fprintf(raw, `{"op":"hello","v":1}`+"\n")
			}
			if _, err := raw.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			_ = raw.SetReadDeadline(time.Now().Add(20 * time.Second))
			lr := wire.NewLineReader(raw, 0)
			var m wire.Message
			for m.Op != wire.OpError {
				line, err := lr.Next()
				if err != nil {
					t.Fatalf("reading the answer: %v", err)
				}
				if m, err = wire.Decode(line); err != nil {
					t.Fatal(err)
				}
			}
			if m.Code != tt.code || m.Message == "" {
				t.Errorf("got error %q (%q), want code %q with a message", m.Code, m.Message, tt.code)
			}
			// A framing error closes the session; otherwise it goes on.
			fmt.Fprintf(raw, `{"op":"ping"}`+"\n")
			line, err := lr.Next()
			if tt.closed {
				if err == nil {
					t.Errorf("session still open after %s: read %q", tt.code, line)
				}
			} else if err != nil || !strings.Contains(string(line), `"pong"`) {
				t.Errorf("session after %s: got %q, %v; want a pong", tt.code, line, err)
			}
			// The good session is untouched.
			send(t, good, wire.Message{Op: wire.OpPing})
			if m := recvReply(t, good); m.Op != wire.OpPong {
				t.Errorf("good session got %+v, want pong", m)
			}
		})
	}
	if got := n.Users(); got != 1 {
		t.Errorf("users = %d after the bad sessions, want 1", got)
	}
}

func TestHTTP(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	n := c.Nodes[0]
	base := "http://" + n.HTTPAddr()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/v1/directory")
	var m wire.Message
	if err := json.Unmarshal([]byte(body), &m); err != nil || code != 200 || m.Op != wire.OpDirectory || len(m.Nodes) != 2 {
		t.Errorf("GET /v1/directory = %d %s (%v), want a directory of 2", code, body, err)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("GET /healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("GET /readyz = %d, want 200", code)
	}
	// Eventually: a stall of n2 past three heartbeats (100 ms each here)
	// has it rightly counted down for a moment.
	nodetest.Eventually(t, wait, func() error {
		code, body := get("/metrics")
		for _, want := range []string{"switchboard_users 0", "switchboard_capacity 10000", `switchboard_nodes{status="up"} 2`, "switchboard_directory_updates_received_total", "switchboard_directory_entry_age_seconds{node=\"n2\"}"} {
			if code != 200 || !strings.Contains(body, want) {
				return fmt.Errorf("GET /metrics lacks %q", want)
			}
		}
		return nil
	})
	resp, err := http.Post(base+"/v1/drain", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("GET /readyz while draining = %d %s, want 503 draining", code, body)
	}
}

// A heartbeat that read the node's status just before Shutdown began, and
// took its sequence number after the goodbye's, still says down: said up,
// it would bring the node back on every peer until its heartbeats stopped
// for good.
func TestNoHeartbeatUndoesTheGoodbye(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{})
	if e := c.Nodes[1].HeartbeatWhileLeaving(); e.Status != directory.Down {
		t.Errorf("an entry published while leaving says %q, want down", e.Status)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := nodetest.StatusOf(c.Nodes[0], "n2"); got != directory.Down {
			return fmt.Errorf("n1 sees n2 as %q, want down", got)
		}
		return nil
	})
}
