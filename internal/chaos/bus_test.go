package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
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
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := typist.JoinWait(wctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := typist.SendTextWait(wctx, room, "acked before the loss; "); err != nil {
		t.Fatal(err)
	}

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
	wctx, cancel = context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := typist.SendTextWait(wctx, room, "typed after"); err != nil {
		t.Fatal(err)
	}
	roomShows(ctx, t, reader, typist, room, "acked before the loss; typed after")
	if errors.Is(typist.Err(), client.ErrGaveUp) {
		t.Errorf("the typist's session gave up: %v", typist.Err())
	}
}
