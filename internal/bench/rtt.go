package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/chart"
	"github.com/switchboard/switchboard/internal/web"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/wire"
)

// RTTReport is the rtt scenario: Rooms rooms of RoomSize users, member j
// of room r attached to node (r+j) mod nodes, Senders of each room typing
// Rate characters a second (one chunk a keystroke) for Seconds; every
// delivery's time from the keystroke (just before SendText) to the moment
// a receiver's session reads it.
type RTTReport struct {
	Scenario string `json:"scenario"`
	// Transport is how the sessions reached the nodes: tcp or ws.
	Transport string  `json:"transport"`
	Nodes     int     `json:"nodes"`
	Rooms     int     `json:"rooms"`
	RoomSize  int     `json:"room_size"`
	Senders   int     `json:"senders_per_room"`
	Rate      float64 `json:"chars_per_second"`
	Seconds   float64 `json:"seconds"`
	// Sent counts keystrokes; Expected the deliveries they call for
	// (each to every other member); Delivered those that arrived, and
	// PerSecond the deliveries a second while typing.
	Sent      int     `json:"sent"`
	Expected  int     `json:"expected"`
	Delivered int     `json:"delivered"`
	PerSecond float64 `json:"deliveries_per_second"`
	// AllMS, CrossMS and SameMS summarise every delivery, those between
	// sessions on different nodes and those on the same node.
	AllMS   Percentiles `json:"all_ms"`
	CrossMS Percentiles `json:"cross_node_ms"`
	SameMS  Percentiles `json:"same_node_ms"`
	// Acked counts the keystrokes acknowledged; AckMS summarises the
	// time from each keystroke to its ack (stored on a quorum).
	Acked int         `json:"acked"`
	AckMS Percentiles `json:"ack_ms"`
	// NodeCPU is the CPU time the local cluster's node processes used
	// while the typists typed, in seconds, and NodeCPUPerKey that time per
	// keystroke in milliseconds; ClientCPU the same for this process (the
	// clients). Zero for a running service, or off Linux.
	NodeCPU       float64 `json:"node_cpu_seconds,omitempty"`
	NodeCPUPerKey float64 `json:"node_cpu_ms_per_keystroke,omitempty"`
	ClientCPU     float64 `json:"client_cpu_seconds,omitempty"`
	// Errors holds the first error messages the sessions received.
	Errors []string `json:"errors,omitempty"`
	cross  []float64
	same   []float64
}

// rttKey names one keystroke.
type rttKey struct {
	room, from string
	seq        uint64
}

// rttSeen is one delivery.
type rttSeen struct {
	key  rttKey
	at   time.Time
	node string
}

// The transports rtt's sessions can use (Config.Transport).
const (
	TransportTCP = "tcp"
	TransportWS  = "ws"
)

// wsDialer is a dialer for sessions that reach the nodes of dir over their
// WebSockets: it knows each node's HTTP address by its client address.
func wsDialer(dir *wire.Directory) *web.Dialer {
	byAddr := make(map[string]string, len(dir.Nodes))
	for _, n := range dir.Nodes {
		if n.HTTP != "" {
			byAddr[n.Addr] = n.HTTP
		}
	}
	return &web.Dialer{HTTPAddr: func(addr string) (string, bool) {
		h, ok := byAddr[addr]
		return h, ok
	}}
}

// pinned is a policy that picks the node named id, or fails so that the
// client asks again.
func pinned(id string) pick.Policy {
	return pick.PolicyFunc(func(nodes []directory.Node, _ pick.Request) (pick.Result, error) {
		for _, n := range nodes {
			if n.ID == id && n.Available() {
				return pick.Result{Node: n, Reason: "bench: pinned to " + id}, nil
			}
		}
		return pick.Result{}, fmt.Errorf("%w: %s is not available", pick.ErrNoNode, id)
	})
}

func runRTT(ctx context.Context, e *env) (Report, error) {
	cfg := e.cfg
	rep := &RTTReport{Scenario: "rtt", Transport: cmp.Or(cfg.Transport, TransportTCP), Rooms: cfg.Rooms, RoomSize: cfg.RoomSize, Senders: min(cfg.Senders, cfg.RoomSize), Rate: cfg.Rate, Seconds: cfg.Duration.Seconds()}
	c, err := e.start(ctx, cfg.Nodes)
	if err != nil {
		return nil, err
	}
	defer c.stop(ctx)
	dir, err := c.directory(ctx)
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithResolver(c.resolver), client.WithClientName("switchboard-bench/1")}
	if rep.Transport == TransportWS {
		opts = append(opts, client.WithDialer(wsDialer(dir)))
	}
	var ids []string
	for _, n := range dir.Nodes {
		if n.Available() {
			ids = append(ids, n.ID)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("bench: rtt: no node up")
	}
	rep.Nodes = len(ids)

	type member struct {
		s          *client.Session
		room, user string
		node       string
		joined     chan struct{}
	}
	var (
		mu       sync.Mutex
		members  []*member
		seen     []rttSeen
		acks     []rttSeen
		wg       sync.WaitGroup
		openErrs []error
		// serverErrs holds the first error messages sessions received.
		serverErrs []string
	)
	defer func() {
		for _, m := range members {
			m.s.Close()
		}
		wg.Wait()
	}()
	n := cfg.Rooms * cfg.RoomSize
	run := time.Now().UnixMilli() % 1e8 // fresh rooms for every run
	progress, end := e.counter("joined", n)
	next := make(chan int)
	var dialers sync.WaitGroup
	var done int
	for range min(cfg.Concurrency, n) {
		dialers.Go(func() {
			for i := range next {
				r, j := i/cfg.RoomSize, i%cfg.RoomSize
				m := &member{room: fmt.Sprintf("bench-%d-%d", run, r), user: fmt.Sprintf("r%dm%d", r, j),
					node: ids[(r+j)%len(ids)], joined: make(chan struct{})}
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				s, err := client.Dial(dctx, c.target, append([]client.Option{client.WithUser(m.user), client.WithPolicy(pinned(m.node))}, opts...)...)
				cancel()
				if err == nil {
					err = s.Join(m.room)
				}
				mu.Lock()
				done++
				progress(done)
				if err != nil {
					openErrs = append(openErrs, err)
					mu.Unlock()
					if s != nil {
						s.Close()
					}
					continue
				}
				m.s = s
				members = append(members, m)
				mu.Unlock()
				wg.Go(func() {
					once := sync.OnceFunc(func() { close(m.joined) })
					for ev := range s.Events() {
						if ev.Kind != client.Received {
							continue
						}
						switch msg := ev.Message; msg.Op {
						case wire.OpRoom:
							if msg.Room == m.room {
								once()
							}
						case wire.OpError:
							mu.Lock()
							if len(serverErrs) < 3 {
								serverErrs = append(serverErrs, fmt.Sprintf("%s: %s: %s", m.user, msg.Code, msg.Message))
							}
							mu.Unlock()
						case wire.OpText:
							at := time.Now()
							mu.Lock()
							seen = append(seen, rttSeen{key: rttKey{msg.Room, msg.From, msg.Seq}, at: at, node: m.node})
							mu.Unlock()
						case wire.OpAck:
							at := time.Now()
							mu.Lock()
							acks = append(acks, rttSeen{key: rttKey{msg.Room, m.user, msg.Seq}, at: at})
							mu.Unlock()
						}
					}
				})
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	dialers.Wait()
	end()
	if len(openErrs) > 0 {
		return nil, fmt.Errorf("bench: rtt: %d of %d sessions could not attach and join: %w", len(openErrs), n, openErrs[0])
	}
	// A fresh cluster elects its JetStream leaders first, which can take
	// about ten seconds.
	e.logf("waiting for every member's room state")
	joinStart := time.Now()
	deadline := time.After(60 * time.Second)
	late := false
	for _, m := range members {
		select {
		case <-m.joined:
		case <-deadline:
			late = true
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if late {
			break
		}
	}
	e.logf("every member has its room state after %v", time.Since(joinStart).Round(time.Millisecond))
	if late {
		// Some room state never came; say so rather than measure a half.
		mu.Lock()
		defer mu.Unlock()
		return nil, fmt.Errorf("bench: rtt: not every member got its room's state within 60 s (errors: %q)", serverErrs)
	}
	mu.Lock()
	seen = seen[:0] // deliveries before the typing are not ours
	acks = acks[:0]
	mu.Unlock()

	// Type.
	e.logf("%d rooms of %d across %d nodes; %d typing at %.0f chars/s for %v", cfg.Rooms, cfg.RoomSize, len(ids), rep.Senders*cfg.Rooms, cfg.Rate, cfg.Duration)
	sent := map[rttKey]time.Time{}
	from := map[string]string{} // user -> node
	for _, m := range members {
		from[m.user] = m.node
	}
	var smu sync.Mutex
	var typers sync.WaitGroup
	tctx, tcancel := context.WithTimeout(ctx, cfg.Duration)
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	cpu0, ccpu0 := c.cpu(), processCPU()
	start := time.Now()
	for _, m := range members {
		if idx := memberIndex(m.user); idx >= rep.Senders {
			continue
		}
		typers.Go(func() {
			// Start at a random phase so that keystrokes do not come in
			// lockstep.
			if sleepCtx(tctx, time.Duration(rand.Int64N(int64(interval)))) != nil {
				return
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			text := "the quick brown fox jumps over the lazy dog\n"
			for k := 0; ; k++ {
				t0 := time.Now()
				seq, err := m.s.SendText(m.room, text[k%len(text):k%len(text)+1])
				if err == nil {
					smu.Lock()
					sent[rttKey{m.room, m.user, seq}] = t0
					smu.Unlock()
				}
				select {
				case <-tctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	typers.Wait()
	tcancel()
	typed := time.Since(start)
	if cpu0 >= 0 {
		if cpu1 := c.cpu(); cpu1 >= 0 {
			rep.NodeCPU = (cpu1 - cpu0).Seconds()
		}
	}
	if ccpu0 >= 0 {
		rep.ClientCPU = (processCPU() - ccpu0).Seconds()
	}
	// Deliveries and acks in flight: wait until all have come, or until
	// none has come for 10 s (a member that will never get its text),
	// at most a minute.
	awaitQuiet(ctx, func() (int, bool) {
		smu.Lock()
		want := len(sent)
		smu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		return len(seen) + len(acks), len(seen) >= want*(cfg.RoomSize-1) && len(acks) >= want
	}, 10*time.Second, time.Minute)
	mu.Lock()
	deliveries := slices.Clone(seen)
	acked := slices.Clone(acks)
	rep.Errors = slices.Clone(serverErrs)
	mu.Unlock()

	rep.Sent = len(sent)
	rep.Expected = rep.Sent * (cfg.RoomSize - 1)
	var all []float64
	for _, d := range deliveries {
		t0, ok := sent[d.key]
		if !ok {
			continue
		}
		v := ms(d.at.Sub(t0))
		all = append(all, v)
		if from[d.key.from] == d.node {
			rep.same = append(rep.same, v)
		} else {
			rep.cross = append(rep.cross, v)
		}
	}
	rep.Delivered = len(all)
	rep.PerSecond = float64(rep.Delivered) / typed.Seconds()
	var ackMS []float64
	for _, a := range acked {
		if t0, ok := sent[a.key]; ok {
			ackMS = append(ackMS, ms(a.at.Sub(t0)))
		}
	}
	rep.Acked, rep.AckMS = len(ackMS), summarizeMS(ackMS)
	if rep.Sent > 0 && rep.NodeCPU > 0 {
		rep.NodeCPUPerKey = 1000 * rep.NodeCPU / float64(rep.Sent)
	}
	rep.AllMS, rep.CrossMS, rep.SameMS = summarizeMS(all), summarizeMS(rep.cross), summarizeMS(rep.same)
	return rep, nil
}

// awaitQuiet polls progress every 50 ms until it reports done, until its
// count has not grown for quiet, or until limit has passed.
func awaitQuiet(ctx context.Context, progress func() (count int, done bool), quiet, limit time.Duration) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	end := time.Now().Add(limit)
	last, lastAt := -1, time.Now()
	for {
		n, done := progress()
		if done {
			return
		}
		if n != last {
			last, lastAt = n, time.Now()
		}
		if time.Since(lastAt) >= quiet || time.Now().After(end) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// memberIndex is j of a user named rRmJ.
func memberIndex(user string) int {
	var r, j int
	if _, err := fmt.Sscanf(user, "r%dm%d", &r, &j); err != nil {
		return -1
	}
	return j
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WriteTable implements Report.
func (r *RTTReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "rtt: %d rooms of %d users across %d nodes over %s, %d per room typing %.0f chars/s for %.0f s: %d keystrokes, %d of %d deliveries (%.0f/s)\n\n",
		r.Rooms, r.RoomSize, r.Nodes, cmp.Or(r.Transport, TransportTCP), r.Senders, r.Rate, r.Seconds, r.Sent, r.Delivered, r.Expected, r.PerSecond)
	row := func(name string, p Percentiles, n int) []string {
		return []string{name, fmt.Sprint(n), f1(p.P50), f1(p.P90), f1(p.P99), f1(p.Max)}
	}
	table(w, []string{"keystroke to", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"}, [][]string{
		row("delivery, sender and receiver on different nodes", r.CrossMS, len(r.cross)),
		row("delivery, on the same node", r.SameMS, len(r.same)),
		row("delivery, all", r.AllMS, len(r.cross)+len(r.same)),
		row("ack (stored on a quorum)", r.AckMS, r.Acked),
	})
	if r.NodeCPU > 0 {
		fmt.Fprintf(w, "\nCPU while typing: nodes %.1f s (%.2f ms a keystroke, %.2f cores), clients %.1f s (%.2f cores)\n",
			r.NodeCPU, r.NodeCPUPerKey, r.NodeCPU/r.Seconds, r.ClientCPU, r.ClientCPU/r.Seconds)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

// Charts implements Report.
func (r *RTTReport) Charts() []Chart {
	return []Chart{
		{"rtt", chart.Line{Title: fmt.Sprintf("rtt: keystroke to delivery, %d rooms of %d, %d typing %.0f chars/s each (CDF)", r.Rooms, r.RoomSize, r.Senders, r.Rate),
			XLabel: "ms", YLabel: "fraction of deliveries",
			Series: []chart.Series{chart.CDF("different nodes", r.cross), chart.CDF("same node", r.same)}}.Render},
	}
}
