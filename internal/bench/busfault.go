package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/localcluster"
)

// FaultBus is the loss of the external bus: the nodes run with --bus on
// external nats-server processes (JetStream on disk), which are killed
// with SIGKILL, all of them, for Config.Pause, then started again on the
// same storage. It is a fault of the failover and rtt-fault scenarios.
const FaultBus = "bus"

// busServers is how many nats-server processes make the external bus.
const busServers = 3

// extBus is the external NATS of the bus fault: nats-server processes
// routed to each other, each with JetStream on a directory of its own,
// that can be killed and started again on the same storage and ports.
type extBus struct {
	exe   []string
	args  [][]string // each server's flags, the same at every start
	procs []*exec.Cmd
	done  []chan struct{}
	urls  []string
	dir   string
	logs  io.Writer
}

// busIP is the address of the bus's nats-server i: 127.0.2.x, apart from
// the nodes' 127.0.0.x and the scale scenario's 127.0.1.x.
func busIP(i int) string { return "127.0.2." + strconv.Itoa(i+1) }

// startBus starts n nats-server processes with JetStream, routed to each
// other, and waits until JetStream answers.
func (e *env) startBus(ctx context.Context, n int) (*extBus, error) {
	ips := make([]string, n)
	for i := range ips {
		ips[i] = busIP(i)
	}
	port, err := localcluster.FreePort(ips, 3)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "switchboard-bus-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	b := &extBus{exe: e.natsCommand(), dir: dir, logs: e.cfg.Logs}
	if b.logs == nil {
		b.logs = io.Discard
	}
	route := func(i int) string { return "nats://" + net.JoinHostPort(ips[i], strconv.Itoa(port+1)) }
	for i := range n {
		args := append(slices.Clone(b.exe[1:]),
			"--server_name", "b"+strconv.Itoa(i+1), "--addr", ips[i], "--port", strconv.Itoa(port),
			"--cluster_name", "bus", "--cluster", route(i), "--cluster_advertise", net.JoinHostPort(ips[i], strconv.Itoa(port+1)),
			"--http_port", strconv.Itoa(port+2), "-js", "-sd", filepath.Join(dir, "b"+strconv.Itoa(i+1)))
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, route(j))
			}
		}
		b.args = append(b.args, append(args, "--routes", strings.Join(routes, ",")))
		b.urls = append(b.urls, "nats://"+net.JoinHostPort(ips[i], strconv.Itoa(port)))
		b.procs = append(b.procs, nil)
		b.done = append(b.done, nil)
	}
	if err := b.startAll(ctx); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

// URL is the bus for serve --bus: every server's URL.
func (b *extBus) URL() string { return strings.Join(b.urls, ",") }

// startAll launches every server that is not running and waits until
// JetStream answers through them.
func (b *extBus) startAll(ctx context.Context) error {
	for i := range b.args {
		if b.procs[i] != nil {
			continue
		}
		cmd := exec.Command(b.exe[0], b.args[i]...)
		cmd.Stdout, cmd.Stderr = b.logs, b.logs
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("bench: starting the bus's nats-server %d: %w", i+1, err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		b.procs[i], b.done[i] = cmd, done
	}
	err := localcluster.Await(ctx, 60*time.Second, jetStreamAnswers(b.URL()))
	if err != nil {
		return fmt.Errorf("bench: waiting for JetStream on the bus's nats-servers: %w", err)
	}
	return nil
}

// killAll sends SIGKILL to every server and waits until they are gone.
func (b *extBus) killAll() error {
	var errs []error
	for i, p := range b.procs {
		if p == nil {
			continue
		}
		if err := p.Process.Kill(); err != nil {
			errs = append(errs, fmt.Errorf("bench: kill -9 of the bus's nats-server %d: %w", i+1, err))
		}
		<-b.done[i]
		b.procs[i] = nil
	}
	return errors.Join(errs...)
}

// stop kills every server and removes their storage.
func (b *extBus) stop() {
	_ = b.killAll()
	_ = os.RemoveAll(b.dir)
}

// awaitReadiness waits until every node's /readyz says ready (want true:
// 200) or not (false: anything else), and returns when that was first
// seen.
func awaitReadiness(ctx context.Context, hc *http.Client, nodes []*localcluster.Node, want bool, timeout time.Duration) (time.Time, error) {
	err := localcluster.Await(ctx, timeout, func(ctx context.Context) error {
		for _, n := range nodes {
			ready := false
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTP+"/readyz", nil)
			if err != nil {
				return err
			}
			if resp, err := hc.Do(req); err == nil {
				ready = resp.StatusCode == http.StatusOK
				resp.Body.Close()
			}
			if ready != want {
				return fmt.Errorf("%s ready %v", n.ID, ready)
			}
		}
		return nil
	})
	return time.Now(), err
}

// failoverBus is the failover scenario's bus fault: every node loses its
// external bus for the pause. Every session is on a hurt node: those the
// nodes tell to move (after the nodes' grace) reattach once some node is
// up again.
func (e *env) failoverBus(ctx context.Context, policy string) (FailoverRow, error) {
	row := FailoverRow{Policy: policy, Killed: fmt.Sprintf("bus (%d nats-server)", busServers)}
	b, err := e.startBus(ctx, busServers)
	if err != nil {
		return row, err
	}
	defer b.stop()
	e.bus = b.URL()
	c, err := e.start(ctx, e.cfg.Nodes)
	e.bus = ""
	if err != nil {
		return row, err
	}
	defer c.stop(ctx)
	run, err := e.open(ctx, c, policy, e.cfg.Clients, "u")
	if err != nil {
		return row, err
	}
	defer run.Close()
	row.Failed = run.Snapshot().Failed
	row.Held = e.cfg.Clients - row.Failed
	if err := c.awaitUsers(ctx, row.Held); err != nil {
		return row, err
	}
	e.logf("[%s] %s; kill -9 the bus (%d nats-server)", policy, perNode(run.Snapshot().PerNode), busServers)
	killed := time.Now()
	if err := b.killAll(); err != nil {
		return row, err
	}
	pause := e.failoverPause()
	// Every node steps aside: /readyz 503, before the bus is back.
	aside, err := awaitReadiness(ctx, c.http, c.local.Nodes, false, pause+30*time.Second)
	if err != nil {
		return row, fmt.Errorf("bench: the nodes did not step aside without their bus: %w", err)
	}
	row.DegradedMS = ms(aside.Sub(killed))
	if wait := time.Until(killed.Add(pause)); wait > 0 {
		time.Sleep(wait)
	}
	back := time.Now()
	if err := b.startAll(ctx); err != nil {
		return row, err
	}
	e.logf("[%s] bus back after %v", policy, time.Since(killed).Round(time.Millisecond))
	if err := c.local.WaitConverged(ctx, 120*time.Second); err != nil {
		return row, fmt.Errorf("after the bus came back: %w", err)
	}
	if _, err := awaitReadiness(ctx, c.http, c.local.Nodes, true, 120*time.Second); err != nil {
		return row, fmt.Errorf("after the bus came back: %w", err)
	}
	row.HealMS = ms(time.Since(back))
	// The sessions told to move reattach once a node is up.
	_ = awaitFor(ctx, 30*time.Second, func(context.Context) error {
		_, pending := run.ReattachDelays(killed)
		if pending > 0 {
			return fmt.Errorf("%d pending", pending)
		}
		return nil
	})
	delays, pending := run.ReattachDelays(killed)
	row.Reattach = SummarizeReattach(delays, pending)
	row.delays = millis(delays)
	after := run.Snapshot()
	row.Stranded = len(run.Sessions()) - row.Failed - after.Attached
	row.Survivors = after.PerNode
	row.MaxMean = MaxMeanOf(row.Survivors, nil)
	return row, nil
}

// hurtBus is rtt-fault's bus fault: once after has passed, it kills every
// server of the nodes' external bus, and starts them again on the same
// storage after pause.
func (r *faultRun) hurtBus(ctx context.Context, b *extBus, after, pause time.Duration) error {
	if err := sleepCtx(ctx, after); err != nil {
		return err
	}
	r.e.logf("%s: kill -9 every nats-server of the bus (%d)", FaultBus, len(b.args))
	r.mu.Lock()
	r.rep.Hurt, r.rep.Leader = "every node", "-"
	r.faultAt = time.Now()
	for _, t := range r.typists {
		t.mu.Lock()
		t.seqAtFault = t.typed
		t.mu.Unlock()
	}
	r.mu.Unlock()
	if err := b.killAll(); err != nil {
		return err
	}
	sleepErr := sleepCtx(ctx, pause) // the fault itself: no bus this long
	if err := b.startAll(ctx); err != nil {
		return err
	}
	r.e.logf("the bus is back after %v", time.Since(r.faultAt).Round(time.Millisecond))
	return sleepErr
}

// jetStreamAnswers is a readiness check for localcluster.Await: the
// nats-servers at urls (comma-separated) accept a connection and their
// JetStream answers an account request.
func jetStreamAnswers(urls string) func(context.Context) error {
	return func(context.Context) error {
		nc, err := nats.Connect(urls, nats.Timeout(2*time.Second), nats.MaxReconnects(0))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := nc.JetStream()
		if err != nil {
			return err
		}
		_, err = js.AccountInfo(nats.MaxWait(2 * time.Second))
		return err
	}
}
