package client_test

import (
	"cmp"
	"net"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// fakeNode is a scripted node on a loopback port, for the client's
// behaviour where a real node cannot be made to misbehave on cue: it
// answers hello with a directory (itself, or what dir returns), attach
// with attached, and ping with pong, and hands every other message of an
// attached session to the test on got, which answers with fakeConn.send.
// Pause makes it a paused process: it reads what arrives and answers
// nothing. stallJoins makes it a node whose session waits for storage: a
// join stops that session's reader until unstall, while other
// connections are served.
type fakeNode struct {
	t   *testing.T
	id  string
	ln  net.Listener
	got chan fakeMsg
	// probes receives one value per ping answered on a connection that
	// said no hello (the client's second opinion).
	probes chan struct{}

	mu      sync.Mutex
	conns   map[*fakeConn]bool
	dir     func() []directory.Node
	paused  chan struct{} // closed: running
	stalled chan struct{} // closed: joins go through
	// connGone is closed, and replaced, whenever a connection of conns
	// ends (awaitNoConns).
	connGone chan struct{}
	// service is the service name the fake's directories carry
	// ("": fake.test).
	service string
	// attaches counts the attaches answered.
	attaches int
	// refuseNew makes the fake answer a connection's first ping before
	// hello as a node at its connection limit: too_many_connections, then
	// close.
	refuseNew bool
	// beforeAttached is sent ahead of every attached answer, as a node
	// that pushes in the moment between counting the session attached
	// and saying so.
	beforeAttached []wire.Message
	// limits go with every attached answer (none when nil).
	limits *wire.Limits
	// closeNext is how many connections still to close as soon as they
	// are accepted, as a node that fails a dial would.
	closeNext int
	// accepted counts the connections accepted.
	accepted int
	// hellos counts the hellos answered.
	hellos int
	// sessionPings counts the pings answered on connections that said
	// hello.
	sessionPings int
	wg           sync.WaitGroup
}

// fakeConn is one connection to a fakeNode.
type fakeConn struct {
	n  *fakeNode
	c  net.Conn
	mu sync.Mutex
}

// fakeMsg is a message an attached session sent, and its connection.
type fakeMsg struct {
	conn *fakeConn
	m    wire.Message
}

// closedChan is a closed channel: not paused, not stalled.
func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// newFakeNode starts a fake node with the ID id on 127.0.0.1:0; it stops
// when the test ends.
func newFakeNode(t *testing.T, id string) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{t: t, id: id, ln: ln, got: make(chan fakeMsg, 1000), probes: make(chan struct{}, 1000),
		conns: map[*fakeConn]bool{}, connGone: make(chan struct{}), paused: closedChan(), stalled: closedChan()}
	n.wg.Add(1)
	go n.accept()
	t.Cleanup(n.stop)
	return n
}

// Addr is the fake's client address.
func (n *fakeNode) Addr() string { return n.ln.Addr().String() }

// entry is the fake's directory entry: up, with room.
func (n *fakeNode) entry() directory.Node {
	return directory.Node{ID: n.id, Addr: n.Addr(), Status: directory.Up, Capacity: 100}
}

// setDirectory makes the fake answer hello with the nodes f returns.
func (n *fakeNode) setDirectory(f func() []directory.Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dir = f
}

// sendBeforeAttached makes the fake send ms ahead of every attached
// answer.
func (n *fakeNode) sendBeforeAttached(ms ...wire.Message) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.beforeAttached = ms
}

// helloCount returns how many hellos the fake answered.
func (n *fakeNode) helloCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hellos
}

// pause makes the fake read and answer nothing, as a stopped process.
func (n *fakeNode) pause() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.paused = make(chan struct{})
}

// stallJoins makes every join stop its session's reader until unstall.
func (n *fakeNode) stallJoins() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stalled = make(chan struct{})
}

// unstall lets stalled joins through.
func (n *fakeNode) unstall() {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.stalled:
	default:
		close(n.stalled)
	}
}

// dropAll closes every connection, as a node that restarts.
func (n *fakeNode) dropAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for fc := range n.conns {
		fc.c.Close()
	}
}

// stop closes the listener and every connection, lets paused and stalled
// readers go, and waits for the fake's goroutines.
func (n *fakeNode) stop() {
	n.ln.Close()
	n.mu.Lock()
	select {
	case <-n.paused:
	default:
		close(n.paused)
	}
	n.mu.Unlock()
	n.unstall()
	n.dropAll()
	n.wg.Wait()
}

func (n *fakeNode) accept() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		fc := &fakeConn{n: n, c: c}
		n.mu.Lock()
		n.accepted++
		if n.closeNext > 0 {
			n.closeNext--
			n.mu.Unlock()
			c.Close()
			continue
		}
		n.conns[fc] = true
		n.mu.Unlock()
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer func() {
				c.Close()
				n.mu.Lock()
				delete(n.conns, fc)
				close(n.connGone)
				n.connGone = make(chan struct{})
				n.mu.Unlock()
			}()
			fc.serve()
		}()
	}
}

// gate returns the channels a reader waits on: pause and join stalls.
func (n *fakeNode) gate() (paused, stalled chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused, n.stalled
}

func (fc *fakeConn) serve() {
	n := fc.n
	lr := wire.NewLineReader(fc.c, wire.MaxLine)
	hello := false
	for {
		line, err := lr.Next()
		if err != nil {
			return
		}
		m, err := wire.Decode(line)
		if err != nil {
			continue
		}
		paused, stalled := n.gate()
		<-paused
		switch m.Op {
		case wire.OpPing:
			n.mu.Lock()
			refuse := n.refuseNew && !hello
			n.mu.Unlock()
			if refuse {
				fc.send(wire.Message{Op: wire.OpError, Code: wire.CodeTooManyConns, Message: "too many connections"})
				n.probes <- struct{}{}
				return
			}
			fc.send(wire.Message{Op: wire.OpPong})
			if !hello {
				n.probes <- struct{}{}
			} else {
				n.mu.Lock()
				n.sessionPings++
				n.mu.Unlock()
			}
		case wire.OpHello:
			hello = true
			n.mu.Lock()
			n.hellos++
			nodes := []directory.Node{n.entry()}
			if n.dir != nil {
				nodes = n.dir()
			}
			service := cmp.Or(n.service, "fake.test")
			n.mu.Unlock()
			fc.send(wire.DirectoryMessage(&wire.Directory{Service: service, Self: n.id, Nodes: nodes}))
		case wire.OpAttach:
			n.mu.Lock()
			n.attaches++
			before, limits := n.beforeAttached, n.limits
			n.mu.Unlock()
			for _, b := range before {
				fc.send(b)
			}
			fc.send(wire.Message{Op: wire.OpAttached, User: m.User, Node: n.id, Session: "s1", Limits: limits})
		default:
			if m.Op == wire.OpJoin {
				<-stalled
			}
			n.got <- fakeMsg{conn: fc, m: m}
		}
	}
}

// send writes m to the client; a failure means the client went away.
func (fc *fakeConn) send(m wire.Message) {
	line, err := wire.Encode(m)
	if err != nil {
		fc.n.t.Error(err)
		return
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	_, _ = fc.c.Write(line)
}
