package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/wire"
)

// ReadyReport is the ready scenario: how soon a cluster serves rooms after
// its last node starts, for a fresh cluster and for a full restart of the
// same cluster with its data (every node stopped gracefully, then all
// started again). From the moment the last node's process starts, each
// node's /readyz is polled and a client on each node attaches and joins a
// room, joining again after every `unavailable`. A fresh cluster is
// started twice each round: joined to the first node (the first node
// alone, the others with --join of its address) and joined as
// docs/operations.md advises (every node's --join names the others).
type ReadyReport struct {
	Scenario string `json:"scenario"`
	Nodes    int    `json:"nodes"`
	Repeat   int    `json:"repeat"`
	// RestartFloorMS is about the least a full restart can take
	// (restartFloor).
	RestartFloorMS float64 `json:"restart_floor_ms"`
	// Fresh, FreshJoined and Restart hold one run each per repetition:
	// Fresh and Restart joined to the first node, FreshJoined with every
	// node's --join naming the others.
	Fresh       []ReadyRun `json:"fresh"`
	FreshJoined []ReadyRun `json:"fresh_joined"`
	Restart     []ReadyRun `json:"restart"`
}

// ReadyRun is one start of the cluster: for the slowest node, the time
// from the last node's start until /readyz answered 200 (UpMS) and until
// a join on it was answered with the room's state (JoinMS); and the
// fewest replicas of the rooms' streams a node reported
// (switchboard_room_replicas) right after its first /readyz 200
// (Replicas).
type ReadyRun struct {
	UpMS     float64 `json:"up_ms"`
	JoinMS   float64 `json:"join_ms"`
	Replicas int     `json:"replicas"`
}

// readyTarget is issue 9's bound on the first join after the last node
// starts.
const readyTarget = 3000.0

// restartFloor is about the least a full restart can take, from the
// nodes' start, before its rooms are served. Every JetStream Raft group
// that restarts with state (the metadata group, each room stream's and
// the snapshot bucket's) waits out nats-server's election timeout, random
// between 4 and 9 s (minElectionTimeoutDefault, maxElectionTimeoutDefault
// in nats-server 2.15.3's raft.go), before one of its members campaigns:
// only a group without state campaigns at once, and no embedding option
// or API asks a stream's group to campaign sooner (docs/benchmarks.md,
// "ready").
const restartFloor = 4000.0

func runReady(ctx context.Context, e *env) (Report, error) {
	cfg := e.cfg
	rep := &ReadyReport{Scenario: "ready", Nodes: cfg.Nodes, Repeat: cfg.Repeat, RestartFloorMS: restartFloor}
	for round := range cfg.Repeat {
		c, err := localcluster.Start(ctx, localcluster.Config{Binary: cfg.Binary, Nodes: cfg.Nodes, Heartbeat: cfg.Heartbeat,
			Args: cfg.NodeArgs, Env: cfg.NodeEnv, Output: cfg.Logs, NoWait: true})
		if err != nil {
			return nil, err
		}
		fresh, err := measureReady(ctx, c, fmt.Sprintf("ready-%d-fresh", round))
		if err != nil {
			c.Stop()
			return nil, fmt.Errorf("bench: ready: fresh cluster: %w", err)
		}
		e.logf("fresh cluster: up after %.0f ms, first join after %.0f ms, replicas at ready %d", fresh.UpMS, fresh.JoinMS, fresh.Replicas)
		rep.Fresh = append(rep.Fresh, fresh)

		var wg sync.WaitGroup
		for i := range c.Nodes {
			wg.Go(func() { _ = c.Terminate(i) })
		}
		wg.Wait()
		for i := range c.Nodes {
			if err := c.Restart(i); err != nil {
				c.Stop()
				return nil, err
			}
		}
		restart, err := measureReady(ctx, c, fmt.Sprintf("ready-%d-restart", round))
		c.Stop()
		if err != nil {
			return nil, fmt.Errorf("bench: ready: restarted cluster: %w", err)
		}
		e.logf("restarted cluster: up after %.0f ms, first join after %.0f ms, replicas at ready %d", restart.UpMS, restart.JoinMS, restart.Replicas)
		rep.Restart = append(rep.Restart, restart)

		joined, err := freshJoined(ctx, e, round)
		if err != nil {
			return nil, err
		}
		e.logf("fresh cluster, --join the others: up after %.0f ms, first join after %.0f ms, replicas at ready %d", joined.UpMS, joined.JoinMS, joined.Replicas)
		rep.FreshJoined = append(rep.FreshJoined, joined)
	}
	return rep, nil
}

// freshJoined starts a fresh cluster whose every node's --join names the
// others, measures it, and stops it.
func freshJoined(ctx context.Context, e *env, round int) (ReadyRun, error) {
	cfg := e.cfg
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: cfg.Binary, Nodes: cfg.Nodes, Heartbeat: cfg.Heartbeat,
		Args: cfg.NodeArgs, Env: cfg.NodeEnv, Output: cfg.Logs, NoWait: true, Seeds: min(3, cfg.Nodes)})
	if err != nil {
		return ReadyRun{}, err
	}
	defer c.Stop()
	run, err := measureReady(ctx, c, fmt.Sprintf("ready-%d-joined", round))
	if err != nil {
		return ReadyRun{}, fmt.Errorf("bench: ready: fresh cluster, --join the others: %w", err)
	}
	return run, nil
}

// measureReady polls every node of c, just started, for readiness and for
// a room join, and returns the slowest node's times from the last start.
func measureReady(ctx context.Context, c *localcluster.Cluster, room string) (ReadyRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last time.Time
	for _, n := range c.Nodes {
		if n.Started.After(last) {
			last = n.Started
		}
	}
	var (
		mu   sync.Mutex
		run  = ReadyRun{Replicas: 99}
		errs []error
		wg   sync.WaitGroup
	)
	note := func(field *float64, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		*field = max(*field, ms(at.Sub(last)))
	}
	for _, n := range c.Nodes {
		wg.Go(func() {
			at, err := awaitReadyz(ctx, n.HTTP)
			if err == nil {
				var replicas int
				replicas, err = n.RoomReplicas(ctx)
				mu.Lock()
				run.Replicas = min(run.Replicas, replicas)
				mu.Unlock()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", n.ID, err))
				mu.Unlock()
				return
			}
			note(&run.UpMS, at)
		})
		wg.Go(func() {
			at, err := awaitJoin(ctx, n.Addr, room)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", n.ID, err))
				mu.Unlock()
				return
			}
			note(&run.JoinMS, at)
		})
	}
	wg.Wait()
	return run, errors.Join(errs...)
}

// awaitReadyz polls http://addr/readyz until it answers 200 and returns
// when it did.
func awaitReadyz(ctx context.Context, addr string) (time.Time, error) {
	hc := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			return time.Time{}, err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return time.Time{}, fmt.Errorf("never ready: %w", err)
		}
	}
}

// awaitJoin attaches to the node at addr as soon as it listens and joins
// room until the node answers with the room's state, and returns when it
// did.
func awaitJoin(ctx context.Context, addr, room string) (time.Time, error) {
	for {
		at, err := tryJoin(ctx, addr, room)
		if err == nil {
			return at, nil
		}
		if serr := sleepCtx(ctx, 10*time.Millisecond); serr != nil {
			return time.Time{}, fmt.Errorf("no join answered: %w (last: %w)", serr, err)
		}
	}
}

// tryJoin is one connection of awaitJoin: it joins again after each
// `unavailable` while the connection lasts.
func tryJoin(ctx context.Context, addr, room string) (time.Time, error) {
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	conn, err := client.DialConn(dctx, nil, addr)
	cancel()
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close()
	if _, err := conn.Hello(ctx, "switchboard-bench/1", ""); err != nil {
		return time.Time{}, err
	}
	if err := conn.Send(wire.Message{Op: wire.OpAttach, User: "ready-" + addr}); err != nil {
		return time.Time{}, err
	}
	if err := conn.Send(wire.Message{Op: wire.OpJoin, Room: room}); err != nil {
		return time.Time{}, err
	}
	for {
		m, err := conn.Recv(ctx)
		if err != nil {
			return time.Time{}, err
		}
		switch {
		case m.Op == wire.OpRoom && m.Room == room:
			return time.Now(), nil
		case m.Op == wire.OpError && m.Code == wire.CodeUnavailable:
			if err := conn.Send(wire.Message{Op: wire.OpJoin, Room: room}); err != nil {
				return time.Time{}, err
			}
		case m.Op == wire.OpError:
			return time.Time{}, fmt.Errorf("%s: %s", m.Code, m.Message)
		}
	}
}

// WriteTable implements Report.
func (r *ReadyReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "ready: %d nodes, %d runs each; ms from the last node's start to /readyz 200 and to a join answered, slowest node\n\n", r.Nodes, r.Repeat)
	row := func(name string, runs []ReadyRun, pick func(ReadyRun) float64) []string {
		v := make([]float64, len(runs))
		for i, run := range runs {
			v[i] = pick(run)
		}
		slices.Sort(v)
		if len(v) == 0 {
			return []string{name, "-", "-", "-", "-"}
		}
		verdict := "yes"
		if v[len(v)/2] > readyTarget {
			verdict = "no"
		}
		return []string{name, f1(v[len(v)/2]), f1(v[0]), f1(v[len(v)-1]), verdict}
	}
	up := func(r ReadyRun) float64 { return r.UpMS }
	join := func(r ReadyRun) float64 { return r.JoinMS }
	replicas := func(r ReadyRun) float64 { return float64(r.Replicas) }
	noVerdict := func(cells []string) []string { cells[4] = "-"; return cells }
	table(w, []string{"start", "median ms", "min ms", "max ms", "<= 3 s (median)"}, [][]string{
		row("fresh cluster: up", r.Fresh, up),
		row("fresh cluster: first join", r.Fresh, join),
		noVerdict(row("fresh cluster: replicas at ready (fewest)", r.Fresh, replicas)),
		row("fresh, --join the others: up", r.FreshJoined, up),
		row("fresh, --join the others: first join", r.FreshJoined, join),
		noVerdict(row("fresh, --join the others: replicas at ready", r.FreshJoined, replicas)),
		row("full restart: up", r.Restart, up),
		row("full restart: first join", r.Restart, join),
		noVerdict(row("full restart: replicas at ready", r.Restart, replicas)),
	})
	if len(r.Restart) > 0 {
		fmt.Fprintf(w, "\nfull restart: bounded below by nats-server, about %.0f ms after the nodes start: each Raft group restarted\n"+
			"with its state waits out a random election timeout of 4 to 9 s before it campaigns, and the embedding\n"+
			"options cannot shorten it\n", r.RestartFloorMS)
	}
}

// Charts implements Report.
func (r *ReadyReport) Charts() []Chart { return nil }
