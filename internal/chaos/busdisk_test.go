//go:build linux

package chaos

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// busServer is one nats-server of an external bus, run from a
// configuration file (so that SIGHUP reloads it, as its operator would
// after freeing its disk), with JetStream stored in store.
type busServer struct {
	*natsServer
	store   string
	monitor string // its monitoring address, host:port
}

// startBusServers starts n nats-server processes routed to each other as
// a cluster named bus, each with JetStream in dirs[i] (which the caller
// may have mounted small), and waits until each accepts connections.
func startBusServers(t *testing.T, dirs []string) []*busServer {
	t.Helper()
	port, err := localcluster.FreePort([]string{"127.0.0.1"}, 3*len(dirs))
	if err != nil {
		t.Fatal(err)
	}
	return runBusServers(t, dirs, func(i, off int) string { return "127.0.0.1:" + strconv.Itoa(port+3*i+off) }, nil)
}

// startBusServersIn starts them as startBusServers does, server i in
// namespace first+i of nw at its address there, so that a test can cut
// one off from the others (Net.CutFrom).
func startBusServersIn(t *testing.T, nw *localcluster.Net, first int, dirs []string) []*busServer {
	t.Helper()
	return runBusServers(t, dirs,
		func(i, off int) string { return net.JoinHostPort(nw.IP(first+i), strconv.Itoa(4222+off)) },
		func(i int) func([]string) []string {
			return func(argv []string) []string { return nw.Command(first+i, argv...) }
		})
}

// runBusServers starts len(dirs) servers, server i with its client,
// cluster and monitoring listeners at addr(i, 0), addr(i, 1) and
// addr(i, 2), its command line passed through wrap(i) when wrap is not
// nil.
func runBusServers(t *testing.T, dirs []string, addr func(i, off int) string, wrap func(i int) func([]string) []string) []*busServer {
	t.Helper()
	n := len(dirs)
	conf := t.TempDir()
	var servers []*busServer
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, strconv.Quote("nats://"+addr(j, 1)))
			}
		}
		cluster := ""
		if n > 1 {
			cluster = fmt.Sprintf("cluster { name: bus, listen: %q, routes: [%s] }\n", addr(i, 1), strings.Join(routes, ", "))
		}
		file := filepath.Join(conf, "b"+strconv.Itoa(i+1)+".conf")
		text := fmt.Sprintf("server_name: b%d\nlisten: %q\nhttp: %q\njetstream { store_dir: %q }\n%s",
			i+1, addr(i, 0), addr(i, 2), dirs[i], cluster)
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &busServer{
			natsServer: &natsServer{t: t, url: "nats://" + addr(i, 0), args: []string{"bench", "nats-server", "-c", file}},
			store:      dirs[i],
			monitor:    addr(i, 2),
		}
		if wrap != nil {
			s.wrap = wrap(i)
		}
		s.start()
		t.Cleanup(s.kill)
		servers = append(servers, s)
	}
	return servers
}

// jetStream reports whether the server has marked its JetStream disabled
// (its monitoring endpoint says it is not enabled), and whether it has
// also stopped it (it logged the end of its shutdown). The first comes
// before the second: the meta leader first hands its leadership over, for
// up to 2 s, and a stream the server still leads meanwhile stores what it
// is sent, and acknowledges it.
func (s *busServer) jetStream() (disabled, stopped bool, err error) {
	resp, err := metricsClient.Get("http://" + s.monitor + "/healthz?js-enabled-only=true")
	if err != nil {
		return false, false, err
	}
	resp.Body.Close()
	disabled = resp.StatusCode != http.StatusOK
	return disabled, disabled && strings.Contains(s.out.String(), "[INF] JetStream Shutdown\n"), nil
}

// fillUntilJetStreamStops fills the store of each server (a filler file
// in it) and writes a chunk longer than a page through writer into room
// bulk, again and again, until each server has disabled its JetStream;
// then it waits for each to have stopped it. It writes nothing once
// every server has disabled it: more would only be refused by the
// session's text rate, and the writer's client would resend it all,
// every second, long after.
func fillUntilJetStreamStops(t *testing.T, writer *client.Session, servers []*busServer) {
	t.Helper()
	stores := make([]string, len(servers))
	for i, s := range servers {
		stores[i] = s.store
	}
	nodetest.FillUntil(t, settle, stores, writer, func() error {
		for _, s := range servers {
			if disabled, _, err := s.jetStream(); err != nil || !disabled {
				return fmt.Errorf("%s: JetStream runs (%v)", s.url, err)
			}
		}
		return nil
	})
	nodetest.Eventually(t, settle, func() error {
		for _, s := range servers {
			if _, stopped, err := s.jetStream(); err != nil || !stopped {
				return fmt.Errorf("%s: JetStream disabled, not stopped yet (%v)", s.url, err)
			}
		}
		return nil
	})
}

// busChecksOf is busChecks of each node of c.
func busChecksOf(t *testing.T, c *localcluster.Cluster) []int {
	t.Helper()
	checked := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		var err error
		if checked[i], err = busChecks(n); err != nil {
			t.Fatal(err)
		}
	}
	return checked
}

// awaitBusChecks waits until each node of c has asked its bus more times
// since it had asked checked[i] (busChecksOf).
func awaitBusChecks(t *testing.T, c *localcluster.Cluster, checked []int, more int) {
	t.Helper()
	nodetest.Eventually(t, settle, func() error {
		for i, n := range c.Nodes {
			if got, err := busChecks(n); err != nil || got < checked[i]+more {
				return fmt.Errorf("%s asked its bus %d times since (%v), want %d", n.ID, got-checked[i], err, more)
			}
		}
		return nil
	})
}

// busChecks is how many times node n has asked its bus's JetStream
// whether it runs (switchboard_bus_checks_total, every result).
func busChecks(n *localcluster.Node) (int, error) {
	resp, err := metricsClient.Get("http://" + n.HTTP + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, "switchboard_bus_checks_total{") {
			continue
		}
		_, v, _ := strings.Cut(strings.TrimSpace(line), "} ")
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", n.ID, line, err)
		}
		total += int(f)
	}
	return total, nil
}

// busDirs are the store directories of a three-server bus, b1 to b3, in
// one temporary directory.
func busDirs(t *testing.T) []string {
	data := t.TempDir()
	var dirs []string
	for i := range 3 {
		dirs = append(dirs, filepath.Join(data, "b"+strconv.Itoa(i+1)))
	}
	return dirs
}

// twoNodesOnBus starts two nodes on a three-server bus, n1 given only
// b3's URL and n2 only b1's (each finds the others by the servers'
// gossip), with a typist on n1 and a reader on n2 who have stored
// "acked before; " in room; and the nodes' logs.
func twoNodesOnBus(ctx context.Context, t *testing.T, bus []*busServer, room string) (*localcluster.Cluster, []nodetest.LockedBuffer, *client.Session, *client.Session) {
	t.Helper()
	var urls []string
	for _, s := range bus {
		urls = append(urls, s.url)
	}
	logs := make([]nodetest.LockedBuffer, 2)
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 2, Bus: strings.Join(urls, ","),
		OutputFor: func(i int) io.Writer { return io.MultiWriter(&logs[i], testLog(t)) },
		ArgsFor: func(i int) []string {
			if i == 0 {
				return []string{"--bus", bus[2].url}
			}
			return []string{"--bus", bus[0].url}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	sessions := dialSpread(ctx, t, c, 2)
	typist, reader := sessions[0], sessions[1]
	if typist.Node().ID != c.Nodes[0].ID {
		t.Fatalf("the typist attached to %s, want %s", typist.Node().ID, c.Nodes[0].ID)
	}
	typeBefore(ctx, t, typist, reader, room)
	return c, logs, typist, reader
}

// One server of a three-server bus fills its disk, the one the typist's
// node is connected to: nats-server stops that server's JetStream, the
// two others keep a quorum of every stream, and nothing changes for the
// users: both nodes stay up, also after asking the bus long enough to
// have stepped aside, and text typed then is acknowledged and shown once.
func TestBusServerFullDiskChangesNothing(t *testing.T) {
	ctx := context.Background()
	dirs := busDirs(t)
	nodetest.SmallDisk(t, dirs[2], 64<<20)
	bus := startBusServers(t, dirs)
	const room = "busdisk"
	c, logs, typist, reader := twoNodesOnBus(ctx, t, bus, room) // n1 on b3, whose disk fills

	fillUntilJetStreamStops(t, reader, bus[2:])
	checked := busChecksOf(t, c)
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := typist.SendTextWait(wctx, room, "typed while b3 was full; "); err != nil {
		t.Fatal(err)
	}
	// Long enough for the nodes' bus watch to step aside if it were
	// going to: 15 s without an answer, of questions every 2 s, after
	// the last record stored (which counts as an answer), and a
	// heartbeat: twelve more questions each.
	awaitBusChecks(t, c, checked, 12)
	for i, n := range c.Nodes {
		if code := readyz(n); code != http.StatusOK {
			t.Errorf("%s's /readyz: %d, want 200", n.ID, code)
		}
		if strings.Contains(logs[i].String(), "cannot store text and steps aside") {
			t.Errorf("%s stepped aside for its bus's JetStream at some point", n.ID)
		}
		if v, err := gauge(n, "switchboard_storage_stopped"); err != nil || v != "0" {
			t.Errorf("%s: switchboard_storage_stopped %q (%v), want 0", n.ID, v, err)
		}
	}
	if typist.Node().ID != c.Nodes[0].ID {
		t.Errorf("the typist moved to %s", typist.Node().ID)
	}
	roomShows(ctx, t, reader, typist, room, "acked before; typed while b3 was full; ")
}

// Every server of a three-server bus fills its disk: nats-server stops
// JetStream on each, and nothing can be stored. Both nodes notice, step
// aside (degraded, /readyz 503 with the reason, attaches refused with
// draining) and tell their sessions to attach elsewhere; the typist holds
// its text. The operator frees the disks and reloads the servers
// (SIGHUP), which starts JetStream again: both nodes are up by
// themselves, every session is attached again, and the typist's text is
// stored once.
func TestBusFullDisksNodesStepAsideAndHeal(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	var dirs []string
	for i := range 3 {
		dir := filepath.Join(data, "b"+strconv.Itoa(i+1))
		nodetest.SmallDisk(t, dir, 64<<20)
		dirs = append(dirs, dir)
	}
	bus := startBusServers(t, dirs)
	var urls []string
	for _, s := range bus {
		urls = append(urls, s.url)
	}
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 2, Bus: strings.Join(urls, ","), Output: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	sessions := dialSpread(ctx, t, c, 3)
	typist, writer, reader := sessions[0], sessions[1], sessions[2]
	const room = "busdisk"
	typeBefore(ctx, t, typist, writer, room)

	fillUntilJetStreamStops(t, writer, bus)
	stopped := time.Now()
	if _, err := typist.SendText(room, "typed while full; "); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error { return steppedAside(ctx, c.Nodes) })
	t.Logf("both nodes degraded %v after the bus's last JetStream stopped", time.Since(stopped).Round(time.Millisecond))
	for _, n := range c.Nodes {
		if why, err := readyzReason(n); err != nil || !strings.Contains(why, "bus's JetStream does not answer") {
			t.Errorf("%s's /readyz gives the reason %q (%v), want one that says its bus's JetStream does not answer", n.ID, why, err)
		}
		if v, err := gauge(n, "switchboard_storage_stopped"); err != nil || v != "1" {
			t.Errorf("%s: switchboard_storage_stopped %q (%v), want 1", n.ID, v, err)
		}
		actx, acancel := context.WithTimeout(ctx, settle)
		code, err := attachAt(actx, n.Addr, "late")
		acancel()
		if err != nil || code != wire.CodeDraining {
			t.Errorf("an attach at %s: code %q (%v), want %q", n.ID, code, err, wire.CodeDraining)
		}
	}
	nodetest.Eventually(t, settle, func() error { return noneAttached(sessions) })
	if n := typist.Unacked(room); n == 0 {
		t.Errorf("the typist holds nothing unacknowledged: text was acknowledged while the bus could not store it")
	}

	for _, s := range bus {
		if err := os.Remove(filepath.Join(s.store, "filler")); err != nil {
			t.Fatal(err)
		}
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	reloaded := time.Now()
	nodetest.Eventually(t, settle, func() error {
		if err := backAndAttached(c.Nodes, sessions); err != nil {
			return err
		}
		if n := typist.Unacked(room); n > 0 {
			return fmt.Errorf("%d chunks of the typist unacknowledged", n)
		}
		return nil
	})
	t.Logf("both nodes ready, every session attached and the typist's text acknowledged %v after the reloads", time.Since(reloaded).Round(time.Millisecond))
	roomShows(ctx, t, reader, typist, room, "acked before; typed while full; ")
}
