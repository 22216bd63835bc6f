package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/promtext"
)

// The gauges of a node's rooms' streams (docs/metrics.md).
const (
	replicasMetric = "switchboard_room_replicas"
	streamsMetric  = "switchboard_room_streams"
	caughtUpMetric = "switchboard_room_streams_caught_up"
)

// RoomReplicas reads node n's switchboard_room_replicas gauge from its
// /metrics: the copies its rooms' streams have, 0 until its rooms are
// ready.
func (n *Node) RoomReplicas(ctx context.Context) (int, error) {
	m, err := n.gauges(ctx, replicasMetric)
	if err != nil {
		return 0, err
	}
	got, ok := m[replicasMetric]
	if !ok {
		return 0, fmt.Errorf("localcluster: %s has no %s", n.ID, replicasMetric)
	}
	return got, nil
}

// gauges reads the named unlabelled gauges from node n's /metrics; a
// gauge the node does not export is absent from the map.
func (n *Node) gauges(ctx context.Context, names ...string) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTP+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("localcluster: asking %s for its metrics: %w", n.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("localcluster: %s's /metrics: %s", n.ID, resp.Status)
	}
	values, err := promtext.Values(resp.Body, names...)
	if err != nil {
		return nil, fmt.Errorf("localcluster: %s's metrics: %w", n.ID, err)
	}
	got := make(map[string]int, len(values))
	for name, v := range values {
		got[name] = int(v)
	}
	return got, nil
}

// WaitReplicas waits until every live node's rooms' streams have at least
// want copies, and every stream has a leader with all its copies caught
// up (the nodes' switchboard_room_streams_caught_up add up to
// switchboard_room_streams). A fresh embedded cluster creates the
// streams with as many copies as nodes were up when the first node's
// rooms started, and raises them about a second after it sees more; the
// new copies then join their streams' Raft groups and catch up. A test
// that hurts a node before that may leave a stream without a quorum, by
// design rather than by fault.
func (c *Cluster) WaitReplicas(ctx context.Context, want int, timeout time.Duration) error {
	return Await(ctx, timeout, func(ctx context.Context) error {
		streams, caughtUp := 0, 0
		for _, n := range c.Nodes {
			if !n.Alive() {
				continue
			}
			m, err := n.gauges(ctx, replicasMetric, streamsMetric, caughtUpMetric)
			if err != nil {
				return err
			}
			if got := m[replicasMetric]; got < want {
				return fmt.Errorf("localcluster: %s's rooms have %d replicas, want %d", n.ID, got, want)
			}
			streams = max(streams, m[streamsMetric])
			caughtUp += m[caughtUpMetric]
		}
		if streams == 0 {
			return errors.New("localcluster: no live node says how many streams the rooms have")
		}
		if caughtUp < streams {
			return fmt.Errorf("localcluster: %d of the rooms' %d streams have a leader and every copy caught up", caughtUp, streams)
		}
		return nil
	})
}

// WaitCaughtUp waits, on an embedded cluster that chooses its own
// replicas, until the rooms' streams have their full copies and every
// copy has caught up (WaitReplicas); at once elsewhere. A rolling restart
// waits for it before it stops the next node.
func (c *Cluster) WaitCaughtUp(ctx context.Context, timeout time.Duration) error {
	if want := c.fullReplicas(); want > 0 {
		return c.WaitReplicas(ctx, want, timeout)
	}
	return nil
}

// fullReplicas is how many copies Start waits for the rooms' streams to
// have: min(3, nodes) for an embedded cluster that chooses them itself
// (0: do not wait).
func (c *Cluster) fullReplicas() int {
	if c.cfg.Bus != "" || c.cfg.Standalone || slices.ContainsFunc(c.cfg.Args, func(a string) bool {
		return a == "--replicas" || a == "-replicas" || strings.HasPrefix(a, "--replicas=") || strings.HasPrefix(a, "-replicas=")
	}) {
		return 0
	}
	return min(3, c.cfg.Nodes)
}
