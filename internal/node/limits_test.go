package node_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// rawConn is a plain TCP connection to addr from the loopback address
// from (127.0.0.x: Linux answers on all of 127/8), read line by line.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	lr   *wire.LineReader
}

// dialerFrom dials from the loopback address from (127.0.0.x: Linux
// answers on all of 127/8), so that a test can be many source addresses.
func dialerFrom(from string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
}

func dialFrom(t *testing.T, from, addr string) *rawConn {
	t.Helper()
	conn, err := dialerFrom(from).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, lr: wire.NewLineReader(conn, 0)}
}

func (c *rawConn) send(line string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next message that is not a directory, waiting up to
// settle.
func (c *rawConn) next() (wire.Message, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(settle))
	for {
		line, err := c.lr.Next()
		if err != nil {
			return wire.Message{}, err
		}
		m, err := wire.Decode(line)
		if err != nil {
			c.t.Fatalf("decoding %q: %v", line, err)
		}
		if m.Op != wire.OpDirectory {
			return m, nil
		}
	}
}

// hello says hello and waits for the directory.
func (c *rawConn) hello() {
	c.t.Helper()
	c.send(`{"op":"hello","v":1}`)
	c.ping() // answered after the directory
}

// ping expects a pong: the session is served.
func (c *rawConn) ping() {
	c.t.Helper()
	c.send(`{"op":"ping"}`)
	if m, err := c.next(); err != nil || m.Op != wire.OpPong {
		c.t.Fatalf("ping: got %+v, %v; want pong", m, err)
	}
}

// closedWith expects the fatal error code, then the end of the connection.
func (c *rawConn) closedWith(code string) {
	c.t.Helper()
	m, err := c.next()
	for err == nil && m.Op == wire.OpPong {
		m, err = c.next()
	}
	if err != nil || m.Op != wire.OpError || m.Code != code || m.Message == "" {
		c.t.Fatalf("got %+v, %v; want error %q with a message", m, err, code)
	}
	if m, err := c.next(); err == nil {
		c.t.Fatalf("after %s the connection is still open: read %+v", code, m)
	}
}

// labelled reads the counter or gauge name{label=value} from n's registry.
func labelled(t *testing.T, n *node.Node, name, label, value string) float64 {
	t.Helper()
	families, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
			if label == "" {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s=%q} on %s", name, label, value, n.ID())
	return 0
}

// waitFor polls cond until it holds or settle passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, settle)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConnectionLimits fills one address's allowance (one that is not
// the node's own: the listener is on 127.0.0.1), then the node's:
// each next connection gets too_many_connections and is closed, while the
// open sessions go on and a session from elsewhere attaches and stores
// text; a slot freed is taken again.
func TestConnectionLimits(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.MaxConns = 5
		cfg.MaxConnsPerIP = 3
	}})
	n := c.Nodes[0]
	c.WaitRoomsReady(wait)
	addr := n.Addr()

	var first []*rawConn
	for range 3 {
		rc := dialFrom(t, "127.0.0.4", addr)
		rc.hello()
		first = append(first, rc)
	}
	over := dialFrom(t, "127.0.0.4", addr)
	over.send(`{"op":"hello","v":1}`) // sent before reading: the refusal must survive it
	over.closedWith(wire.CodeTooManyConns)
	for _, rc := range first {
		rc.ping()
	}

	// Another address attaches and stores text.
	other := dialerFrom("127.0.0.2")
	bob := newPeerVia(t, other, addr, "bob")
	bob.join("lobby")
	bob.acked("lobby", bob.typeText("lobby", "hi"))
	dialFrom(t, "127.0.0.2", addr).hello() // the fifth

	full := dialFrom(t, "127.0.0.3", addr)
	full.closedWith(wire.CodeTooManyConns)

	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "per_ip"); got != 1 {
		t.Errorf("refused per_ip = %v, want 1", got)
	}
	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "total"); got != 1 {
		t.Errorf("refused total = %v, want 1", got)
	}
	if got := labelled(t, n, "switchboard_bad_input_total", "code", wire.CodeTooManyConns); got != 2 {
		t.Errorf("bad_input{too_many_connections} = %v, want 2", got)
	}

	// A closed connection frees its slot, for its address and the node.
	first[0].conn.Close()
	waitFor(t, "4 open connections", func() bool { return labelled(t, n, "switchboard_connections", "", "") == 4 })
	dialFrom(t, "127.0.0.4", addr).hello()
	bob.acked("lobby", bob.typeText("lobby", "!"))
}

// trickle writes line to rc one byte every 100 ms, in the background,
// until it is written or the connection fails; the test waits for it.
// tricklePace is the time between two bytes trickle sends: a line of n
// bytes takes at least n times it (a loaded machine only slows the
// ticker), so the trickled lines below outlast sessionDeadline.
const tricklePace = 250 * time.Millisecond

// sessionDeadline is TestSessionDeadlines' hello, attach and line
// deadline: long enough that a whole hello or attach sent at once on a
// loaded machine meets it, short against the trickled lines (14 and 21
// bytes, 3.5 s and more).
const sessionDeadline = 2 * time.Second

func trickle(t *testing.T, rc *rawConn, line string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(tricklePace)
		defer tick.Stop()
		for i := range len(line) {
			<-tick.C
			if _, err := rc.conn.Write([]byte{line[i]}); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		rc.conn.Close()
		<-done
	})
}

// TestSessionDeadlines: a hello trickled a byte at a time is cut at the
// hello deadline, a session that never attaches at the attach deadline
// (pings do not extend it), and an attached session's line trickled a
// byte at a time at the line deadline, while the idle deadline is long.
func TestSessionDeadlines(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.HelloTimeout = sessionDeadline
		cfg.AttachTimeout = sessionDeadline
		cfg.LineTimeout = sessionDeadline
		cfg.IdleTimeout = time.Hour
	}})
	n := c.Nodes[0]
	addr := n.Addr()

	t.Run("trickled hello", func(t *testing.T) {
		rc := dialFrom(t, "127.0.0.1", addr)
		trickle(t, rc, `{"op":"hello","v":1}`+"\n")
		rc.closedWith(wire.CodeHelloTimeout)
	})
	t.Run("no attach", func(t *testing.T) {
		rc := dialFrom(t, "127.0.0.1", addr)
		rc.hello()
		pings := make(chan struct{})
		go func() {
			defer close(pings)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for range 2 * sessionDeadline / (100 * time.Millisecond) { // past the attach deadline
				<-tick.C
				if _, err := rc.conn.Write([]byte(`{"op":"ping"}` + "\n")); err != nil {
					return
				}
			}
		}()
		rc.closedWith(wire.CodeAttachTimeout)
		rc.conn.Close()
		<-pings
	})
	t.Run("trickled line after attach", func(t *testing.T) {
		rc := dialFrom(t, "127.0.0.1", addr)
		rc.hello()
		rc.send(`{"op":"attach","user":"slow"}`)
		if m, err := rc.next(); err != nil || m.Op != wire.OpAttached {
			t.Fatalf("attach: got %+v, %v", m, err)
		}
		rc.ping() // a whole line at once passes
		trickle(t, rc, `{"op":"ping"}`+"\n")
		rc.closedWith(wire.CodeLineTimeout)
	})
	for _, code := range []string{wire.CodeHelloTimeout, wire.CodeAttachTimeout, wire.CodeLineTimeout} {
		if got := labelled(t, n, "switchboard_bad_input_total", "code", code); got != 1 {
			t.Errorf("bad_input{%s} = %v, want 1", code, got)
		}
	}
}

// The HTTP listener holds at most node.MaxHTTPConnsPerIP connections from
// one address and node.MaxHTTPConns in all. One past the first is closed
// at once, leaving other addresses served; so is one past the second
// when every connection is serving a request (none idle to make room,
// see TestHTTPIdleConnectionsMakeRoom). Each is counted by its reason;
// the requests under way are all answered, and a slot freed serves again.
func TestHTTPConnectionLimit(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	n := c.Nodes[0]
	addr := n.HTTPAddr()
	started := make(chan struct{}, node.MaxHTTPConns)
	release := make(chan struct{})
	n.HandleHTTP("GET /test/hold", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	var held []net.Conn
	hold := func(from string, count int) {
		t.Helper()
		d := dialerFrom(from)
		for range count {
			conn, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			if _, err := fmt.Fprintf(conn, "GET /test/hold HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(settle):
				t.Fatalf("request %d from %s not served within %v", len(held)+1, from, settle)
			}
			held = append(held, conn)
		}
	}
	closedAtAccept := func(from, reason string, want float64) {
		t.Helper()
		d := dialerFrom(from)
		over, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer over.Close()
		_ = over.SetReadDeadline(time.Now().Add(settle))
		if _, err := over.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a connection from %s past the limit: read gave %v, want it closed", from, err)
		}
		if got := labelled(t, n, "switchboard_connections_refused_total", "reason", reason); got != want {
			t.Errorf("refused %s = %v, want %v", reason, got, want)
		}
	}
	served := func(from string) bool {
		resp, err := httpFrom(from).Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}

	hold("127.0.0.20", node.MaxHTTPConnsPerIP) // not the node's own address, which is not counted
	closedAtAccept("127.0.0.20", "http_per_ip", 1)
	if !served("127.0.0.2") {
		t.Fatal("another address is not served while one holds its share of the HTTP listener")
	}
	others := node.MaxHTTPConns/node.MaxHTTPConnsPerIP - 1
	for i := range others {
		hold(fmt.Sprintf("127.0.0.%d", 2+i), node.MaxHTTPConnsPerIP)
	}
	closedAtAccept(fmt.Sprintf("127.0.0.%d", 2+others), "http", 1)
	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "http_idle"); got != 0 {
		t.Errorf("connections serving a request closed to make room: %v", got)
	}
	close(release)
	for i, conn := range held {
		_ = conn.SetReadDeadline(time.Now().Add(settle))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("held request %d: %v", i+1, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("held request %d = %d", i+1, resp.StatusCode)
		}
	}
	held[0].Close()
	waitFor(t, "an HTTP answer once a slot is free", func() bool { return served(fmt.Sprintf("127.0.0.%d", 2+others)) })
}
