package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/sipcall"
	"github.com/switchboard/switchboard/internal/sipfront"
)

// RTPConfig configures the rtp scenario.
type RTPConfig struct {
	// Binary is the switchboard executable the local cluster runs.
	Binary string
	// Nodes is the local cluster's size (default 3, at least 2).
	Nodes int
	// Samples is how many keystrokes each direction sends (default 100).
	Samples int
	// Rate is keystrokes a second (default 3, a typist's pace, so that
	// each keystroke leaves in a packet of its own).
	Rate float64
	// Interval is the T.140 transmission interval of the front and the
	// caller (default 300 ms, RFC 4103's recommendation).
	Interval time.Duration
	// Output receives the nodes' logs (default: discarded).
	Output io.Writer
}

// RTPRow is one direction's keystroke latencies.
type RTPRow struct {
	Path     string      `json:"path"`
	Sent     int         `json:"sent"`
	Received int         `json:"received"`
	MS       Percentiles `json:"ms"`
}

// RTPReport is the rtp scenario: a SIP caller bridged on node 1 and a TCP
// member on node 2 type to each other, next to two TCP members on nodes
// 1 and 2; each keystroke's time from the sender's hand to the
// receiver's read.
type RTPReport struct {
	Nodes    int      `json:"nodes"`
	Rate     float64  `json:"chars_per_second"`
	Interval string   `json:"t140_interval"`
	Rows     []RTPRow `json:"rows"`
}

// RunRTP runs the rtp scenario.
func RunRTP(ctx context.Context, cfg RTPConfig) (*RTPReport, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	cfg.Nodes = max(cfg.Nodes, 2)
	if cfg.Samples <= 0 {
		cfg.Samples = 100
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 3
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 300 * time.Millisecond
	}
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: cfg.Binary, Nodes: cfg.Nodes, Output: cfg.Output})
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	n1, n2 := c.Nodes[0], c.Nodes[1]
	dir, err := n1.Directory(ctx)
	if err != nil {
		return nil, err
	}
	// The front runs here, as serve --sip runs it in the node: a client of
	// node 1 over loopback.
	front, err := sipfront.Listen("127.0.0.1:0", sipfront.Config{
		Service: c.Service(), NodeID: n1.ID, NodeAddr: n1.Addr,
		Nodes:    func() []directory.Node { return dir.Nodes },
		Interval: cfg.Interval,
	})
	if err != nil {
		return nil, err
	}
	go front.Serve()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		front.Shutdown(sctx)
	}()
	rep := &RTPReport{Nodes: cfg.Nodes, Rate: cfg.Rate, Interval: cfg.Interval.String()}

	dial := func(n *localcluster.Node, user, room string) (*client.Session, error) {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := client.Dial(dctx, n.Addr, client.WithUser(user), client.WithPolicy(pinned(n.ID)))
		if err != nil {
			return nil, err
		}
		if _, err := s.JoinWait(dctx, room); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}

	// TCP to TCP: alice on node 1 to bob on node 2.
	alice, err := dial(n1, "alice", "tcp")
	if err != nil {
		return nil, err
	}
	defer alice.Close()
	bob, err := dial(n2, "bob", "tcp")
	if err != nil {
		return nil, err
	}
	defer bob.Close()
	row, err := typeAndTime(ctx, cfg, "tcp (node 1) → tcp (node 2)",
		func(ch string) error { _, err := alice.SendText("tcp", ch); return err },
		sessionDigits(bob, "tcp", "alice"))
	if err != nil {
		return nil, err
	}
	rep.Rows = append(rep.Rows, row)

	// RTP to TCP and back: the caller on node 1's front, carol on node 2.
	carol, err := dial(n2, "carol", "rtp")
	if err != nil {
		return nil, err
	}
	defer carol.Close()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	call, err := sipcall.Dial(dctx, fmt.Sprintf("sip:rtp@%s", front.Addr()), sipcall.Config{User: "dan", Interval: cfg.Interval})
	cancel()
	if err != nil {
		return nil, err
	}
	defer call.Close()
	row, err = typeAndTime(ctx, cfg, "rtp (sip front on node 1) → tcp (node 2)",
		func(ch string) error { call.Send(ch); return nil },
		sessionDigits(carol, "rtp", "sip:dan@127.0.0.1"))
	if err != nil {
		return nil, err
	}
	rep.Rows = append(rep.Rows, row)
	row, err = typeAndTime(ctx, cfg, "tcp (node 2) → rtp (sip front on node 1)",
		func(ch string) error { _, err := carol.SendText("rtp", ch); return err },
		func(ctx context.Context) (string, error) {
			select {
			case t := <-call.Text():
				return t, nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		})
	if err != nil {
		return nil, err
	}
	rep.Rows = append(rep.Rows, row)
	return rep, nil
}

// sessionDigits returns the text of from's chunks as s receives them.
func sessionDigits(s *client.Session, room, from string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		for {
			select {
			case e, ok := <-s.Events():
				if !ok {
					return "", errors.New("bench: the session ended")
				}
				if re, ok := e.Room(); ok && re.Kind == client.TextEvent && re.Room == room && re.From == from {
					return re.Text, nil
				}
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
	}
}

// typeAndTime types cfg.Samples digits with send at cfg.Rate and times
// each digit's arrival in what recv returns (anything but digits, such
// as the mixer's labels, is skipped).
func typeAndTime(ctx context.Context, cfg RTPConfig, path string, send func(string) error, recv func(context.Context) (string, error)) (RTPRow, error) {
	row := RTPRow{Path: path, Sent: cfg.Samples}
	sentAt := make([]time.Time, cfg.Samples)
	arrived := make(chan time.Time, cfg.Samples)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for n := 0; n < cfg.Samples; {
			t, err := recv(rctx)
			if err != nil {
				return
			}
			now := time.Now()
			for _, r := range t {
				if r >= '0' && r <= '9' && n < cfg.Samples {
					arrived <- now
					n++
				}
			}
		}
	}()
	gap := time.Duration(float64(time.Second) / cfg.Rate)
	next := time.Now()
	for i := range cfg.Samples {
		time.Sleep(time.Until(next))
		sentAt[i] = time.Now()
		if err := send(string(rune('0' + i%10))); err != nil {
			return row, fmt.Errorf("bench: rtp: sending on %s: %w", path, err)
		}
		next = next.Add(gap)
	}
	var ms []float64
	deadline := time.After(10 * time.Second)
	for len(ms) < cfg.Samples {
		select {
		case at := <-arrived:
			ms = append(ms, float64(at.Sub(sentAt[len(ms)]))/float64(time.Millisecond))
		case <-deadline:
			row.Received = len(ms)
			return row, fmt.Errorf("bench: rtp: %s: %d of %d keystrokes arrived", path, len(ms), cfg.Samples)
		}
	}
	row.Received = len(ms)
	slices.Sort(ms)
	row.MS = summarizeMS(ms)
	return row, nil
}

// WriteText prints the report as a table.
func (r *RTPReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "rtp: %d nodes, %.1f keystrokes/s, T.140 interval %s\n\n", r.Nodes, r.Rate, r.Interval)
	fmt.Fprintf(w, "%-44s %5s %8s %8s %8s %8s\n", "path", "keys", "p50 ms", "p90 ms", "p99 ms", "max ms")
	for _, row := range r.Rows {
		fmt.Fprintf(w, "%-44s %5d %8.1f %8.1f %8.1f %8.1f\n", row.Path, row.Received, row.MS.P50, row.MS.P90, row.MS.P99, row.MS.Max)
	}
}
