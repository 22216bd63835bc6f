package localcluster

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// replicasMetric is the gauge a node sets to the copies its rooms'
// streams have (docs/metrics.md).
const replicasMetric = "switchboard_room_replicas"

// RoomReplicas reads node n's switchboard_room_replicas gauge from its
// /metrics: the copies its rooms' streams have, 0 until its rooms are
// ready.
func (n *Node) RoomReplicas(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTP+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("localcluster: asking %s for its metrics: %w", n.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("localcluster: %s's /metrics: %s", n.ID, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		value, ok := strings.CutPrefix(sc.Text(), replicasMetric+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, fmt.Errorf("localcluster: %s's %s: %w", n.ID, replicasMetric, err)
		}
		return int(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("localcluster: reading %s's metrics: %w", n.ID, err)
	}
	return 0, fmt.Errorf("localcluster: %s has no %s", n.ID, replicasMetric)
}

// WaitReplicas waits until every live node's rooms' streams have at least
// want copies. A fresh embedded cluster creates them with as many copies
// as nodes were up when the first node's rooms started, and raises them
// about a second after it sees more: a test that hurts a node before
// that may leave a stream without a quorum, by design rather than by
// fault.
func (c *Cluster) WaitReplicas(ctx context.Context, want int, timeout time.Duration) error {
	return Await(ctx, timeout, func(ctx context.Context) error {
		for _, n := range c.Nodes {
			if !n.Alive() {
				continue
			}
			got, err := n.RoomReplicas(ctx)
			if err != nil {
				return err
			}
			if got < want {
				return fmt.Errorf("%s's rooms have %d replicas, want %d", n.ID, got, want)
			}
		}
		return nil
	})
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
