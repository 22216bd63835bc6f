package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// natsServer is a real nats-server process (this repository's binary
// runs nats-server's own main: switchboard bench nats-server) with
// JetStream on disk, that the test kills with kill -9 and starts again
// on the same storage and port.
type natsServer struct {
	t    *testing.T
	args []string
	wrap func([]string) []string // the command line in a namespace, say; nil: as it is
	url  string
	cmd  *exec.Cmd
	done chan struct{}
	out  nodetest.LockedBuffer // what it printed, every run
}

func startNATSServer(t *testing.T) *natsServer {
	t.Helper()
	port, err := localcluster.FreePort([]string{"127.0.0.1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return runNATSServer(t, "127.0.0.1", port, nil)
}

// startNATSServerIn runs the server in namespace i of nw, at its address
// there (port 4222), so that a test can cut a node off from it alone.
func startNATSServerIn(t *testing.T, nw *localcluster.Net, i int) *natsServer {
	t.Helper()
	return runNATSServer(t, nw.IP(i), 4222, func(argv []string) []string { return nw.Command(i, argv...) })
}

// runNATSServer starts the server at host:port, its command line passed
// through wrap when wrap is not nil.
func runNATSServer(t *testing.T, host string, port int, wrap func([]string) []string) *natsServer {
	t.Helper()
	hostPort := net.JoinHostPort(host, strconv.Itoa(port))
	s := &natsServer{t: t, url: "nats://" + hostPort, wrap: wrap,
		args: []string{"bench", "nats-server", "--addr", host, "--port", strconv.Itoa(port), "-js", "-sd", t.TempDir()}}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// start launches the server and waits until it accepts connections.
func (s *natsServer) start() {
	s.t.Helper()
	argv := append([]string{binary}, s.args...)
	if s.wrap != nil {
		argv = s.wrap(argv)
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	out := io.MultiWriter(&s.out, testLog(s.t))
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	addr := strings.TrimPrefix(s.url, "nats://")
	nodetest.Eventually(s.t, settle, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// kill sends SIGKILL and waits until the process is gone.
func (s *natsServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// readyz is node n's /readyz status code (0 when it does not answer).
func readyz(n *localcluster.Node) int {
	resp, err := http.Get("http://" + n.HTTP + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// steppedAside reports nil once every node of nodes answers /readyz with
// 503 and calls itself degraded.
func steppedAside(ctx context.Context, nodes []*localcluster.Node) error {
	for _, n := range nodes {
		if code := readyz(n); code != http.StatusServiceUnavailable {
			return fmt.Errorf("%s's /readyz: %d, want 503", n.ID, code)
		}
		if st, err := n.Status(ctx, n.ID); err != nil || st != directory.Degraded {
			return fmt.Errorf("%s calls itself %q (%v), want degraded", n.ID, st, err)
		}
	}
	return nil
}

// noneAttached reports nil once no session of sessions is attached.
func noneAttached(sessions []*client.Session) error {
	for i, s := range sessions {
		if s.Connected() {
			return fmt.Errorf("session %d still attached to %s", i, s.Node().ID)
		}
	}
	return nil
}

// backAndAttached reports nil once every node of nodes answers /readyz
// with 200 and every session of sessions is attached.
func backAndAttached(nodes []*localcluster.Node, sessions []*client.Session) error {
	for _, n := range nodes {
		if code := readyz(n); code != http.StatusOK {
			return fmt.Errorf("%s's /readyz: %d", n.ID, code)
		}
	}
	for i, s := range sessions {
		if !s.Connected() {
			return fmt.Errorf("session %d not attached (%v)", i, s.State())
		}
	}
	return nil
}

// attachAt says hello and attaches as user at addr, and returns the
// error code the node refused with ("" if it took the session).
func attachAt(ctx context.Context, addr, user string) (string, error) {
	c, err := client.DialConn(ctx, nil, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Hello(ctx, "chaos", ""); err != nil {
		return "", err
	}
	if err := c.Send(wire.Message{Op: wire.OpAttach, User: user}); err != nil {
		return "", err
	}
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			return "", err
		}
		switch m.Op {
		case wire.OpAttached:
			return "", nil
		case wire.OpError:
			return m.Code, nil
		}
	}
}

// The external bus lost and back: two nodes run with --bus on one real
// nats-server process (JetStream on disk), which is killed with kill -9.
// Both nodes step aside: degraded in their directories, /readyz 503, new
// attaches refused with draining; after the grace their sessions are told
// to move, and with no node up none can attach. The server is started
// again on the same storage: both nodes are up and ready again by
// themselves, every session is attached again, and text acknowledged
// before the loss is in the room once, followed by text typed after.
func TestBusLossNodesStepAsideAndHeal(t *testing.T) {
	ctx := context.Background()
	bus := startNATSServer(t)
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 2, Bus: bus.url, DNS: true, Output: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)

	sessions := dialSpread(ctx, t, c, 4)
	typist, reader := sessions[0], sessions[1]
	const room = "bus"
	joinAndType(ctx, t, typist, room, "acked before the loss; ")

	lost := time.Now()
	bus.kill()
	// Both nodes step aside, and say so.
	nodetest.Eventually(t, settle, func() error { return steppedAside(ctx, c.Nodes) })
	t.Logf("both nodes degraded %v after the bus died", time.Since(lost).Round(time.Millisecond))
	for _, n := range c.Nodes {
		actx, cancel := context.WithTimeout(ctx, settle)
		code, err := attachAt(actx, n.Addr, "late")
		cancel()
		if err != nil || code != wire.CodeDraining {
			t.Errorf("an attach at %s, degraded: code %q (%v), want %q", n.ID, code, err, wire.CodeDraining)
		}
		// The common address: no node to name, and SERVFAIL rather than
		// an answer resolvers would cache.
		if status, ips, err := digInNS(ctx, nil, -1, n.DNS, c.Service()); err != nil || status != "SERVFAIL" {
			t.Errorf("%s's DNS responder, degraded: %s %v (%v), want SERVFAIL", n.ID, status, ips, err)
		}
	}
	// After the grace the sessions are told to move; no node is up to
	// take them.
	nodetest.Eventually(t, settle, func() error { return noneAttached(sessions) })
	t.Logf("every session told to move %v after the bus died", time.Since(lost).Round(time.Millisecond))

	back := time.Now()
	bus.start()
	if err := c.WaitConverged(ctx, settle); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error { return backAndAttached(c.Nodes, sessions) })
	t.Logf("both nodes up and ready, every session attached, %v after the bus came back", time.Since(back).Round(time.Millisecond))

	// Nothing acked lost, nothing twice. A wait of its own: the streams
	// come back from the server's storage first.
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := typist.SendTextWait(wctx, room, "typed after"); err != nil {
		t.Fatal(err)
	}
	roomShows(ctx, t, reader, typist, room, "acked before the loss; typed after")
	if errors.Is(typist.Err(), client.ErrGaveUp) {
		t.Errorf("the typist's session gave up: %v", typist.Err())
	}
}

// An operator's drain and stop during a loss of the external bus: three
// nodes run on one nats-server process, which is killed. Once the nodes
// have stepped aside, n1 is drained (POST /v1/drain?within=10s: its
// sessions are asked to move, and cannot) and n3 is stopped
// with SIGTERM while its sessions are still attached. n3 cannot move
// them (no node is up) and exits cleanly, without holding its stop for
// the grace. When the server is back, n1 stays draining rather than
// coming back up: it takes no session, and every session is attached to
// n2, the one node up. Text acknowledged before the loss is in the room
// once, followed by text typed after.
func TestBusLossDrainAndStopHold(t *testing.T) {
	ctx := context.Background()
	bus := startNATSServer(t)
	logs := make([]nodetest.LockedBuffer, 3)
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 3, Bus: bus.url,
		OutputFor: func(i int) io.Writer { return io.MultiWriter(&logs[i], testLog(t)) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]

	sessions := dialSpread(ctx, t, c, 6)
	typist, reader := sessions[0], sessions[1] // on n1 and n2
	const room = "busdrain"
	joinAndType(ctx, t, typist, room, "acked before the loss; ")

	bus.kill()
	nodetest.Eventually(t, settle, func() error { return steppedAside(ctx, c.Nodes) })

	// At once: 10 s after stepping aside the nodes end their sessions,
	// and a node without sessions stops without a drain.
	if n := attachedTo(sessions, n3.ID); n == 0 {
		t.Fatalf("no session attached to %s before its stop: nothing to test", n3.ID)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- c.Terminate(2) }()
	resp, err := http.Post("http://"+n1.HTTP+"/v1/drain?within=10s", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /v1/drain to %s during the loss: %s", n1.ID, resp.Status)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(settle):
		t.Fatalf("%s did not exit within %v of SIGTERM during the loss", n3.ID, settle)
	}
	if code := n3.ExitCode(); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM during the loss, want 0", n3.ID, code)
	}
	// It closed its sessions for want of a node to move them to, rather
	// than at the grace's end.
	if !slices.ContainsFunc(strings.Split(logs[2].String(), "\n"), func(line string) bool {
		return strings.Contains(line, `msg="drain ended"`) && strings.Contains(line, "reason=alone")
	}) {
		t.Errorf("%s's log has no drain that ended with reason=alone", n3.ID)
	}

	bus.start()
	nodetest.Eventually(t, settle, func() error {
		if code := readyz(n2); code != http.StatusOK {
			return fmt.Errorf("%s's /readyz: %d", n2.ID, code)
		}
		for _, on := range []*localcluster.Node{n1, n2} {
			if st, err := on.Status(ctx, n1.ID); err != nil || st != directory.Draining {
				return fmt.Errorf("%s lists %s %q (%v), want draining", on.ID, n1.ID, st, err)
			}
		}
		for i, s := range sessions {
			if !s.Connected() || s.Node().ID != n2.ID {
				return fmt.Errorf("session %d: %v on %v, want attached to %s", i, s.State(), s.Node().ID, n2.ID)
			}
		}
		return nil
	})
	if code := readyz(n1); code != http.StatusServiceUnavailable {
		t.Errorf("%s's /readyz after the bus came back: %d, want 503 (draining)", n1.ID, code)
	}
	actx, acancel := context.WithTimeout(ctx, settle)
	defer acancel()
	if code, err := attachAt(actx, n1.Addr, "late"); err != nil || code != wire.CodeDraining {
		t.Errorf("an attach at %s after the bus came back: code %q (%v), want %q", n1.ID, code, err, wire.CodeDraining)
	}

	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := typist.SendTextWait(wctx, room, "typed after"); err != nil {
		t.Fatal(err)
	}
	roomShows(ctx, t, reader, typist, room, "acked before the loss; typed after")
}

// joinAndType joins s to room and has text acknowledged there.
func joinAndType(ctx context.Context, t *testing.T, s *client.Session, room, text string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := s.JoinWait(wctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendTextWait(wctx, room, text); err != nil {
		t.Fatal(err)
	}
}

// attachedTo counts the sessions of sessions attached to node id.
func attachedTo(sessions []*client.Session, id string) int {
	k := 0
	for _, s := range sessions {
		if s.Connected() && s.Node().ID == id {
			k++
		}
	}
	return k
}
