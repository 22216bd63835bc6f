package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// TestProbe: probe exits 0 with the node's status while the node is up,
// 1 with the status and reason once it drains (while --live still says
// the process serves), and 1 when nothing answers or what answers is not
// an HTTP API.
func TestProbe(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitAllUp(settle)
	n1 := c.Nodes[0]
	if code, stdout, stderr := runArgs(t, "probe", "--http", n1.HTTPAddr()); code != exitOK || !strings.Contains(stdout, "up") {
		t.Fatalf("probe of an up node: exit %d\n%s%s", code, stdout, stderr)
	}
	// The node's client port answers with a protocol line, not HTTP:
	// probe says which address it wants, not Go's "malformed HTTP".
	if code, _, stderr := runArgs(t, "probe", "--http", n1.Addr()); code != exitFailure || !strings.Contains(stderr, "probe: "+n1.Addr()+" is not an HTTP API: give serve's --http address") || strings.Contains(stderr, "malformed") {
		t.Errorf("probe of the client port: exit %d, stderr %q; want 1, not an HTTP API", code, stderr)
	}
	n1.SetDraining(true)
	if code, _, stderr := runArgs(t, "probe", "--http", n1.HTTPAddr()); code != exitFailure || !strings.Contains(stderr, "503") || !strings.Contains(stderr, "draining") {
		t.Errorf("probe of a draining node: exit %d, stderr %q; want 1 with 503 and draining", code, stderr)
	}
	if code, stdout, stderr := runArgs(t, "probe", "--http", n1.HTTPAddr(), "--live"); code != exitOK || !strings.Contains(stdout, "ok") {
		t.Errorf("probe --live of a draining node: exit %d\n%s%s", code, stdout, stderr)
	}
	// A port nobody listens on: one the kernel just gave and took back.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	if code, _, stderr := runArgs(t, "probe", "--http", closed, "--live"); code != exitFailure || !strings.Contains(stderr, "connection refused") {
		t.Errorf("probe of a closed port: exit %d, stderr %q; want 1, connection refused", code, stderr)
	}
}

// probe --caught-up over a cluster of three: 0 once every room stream has
// all its copies, 1 while a node is missing from the answer or one of the
// copies is down.
func TestProbeCaughtUp(t *testing.T) {
	c := nodetest.Start(t, 3, nodetest.Options{})
	c.WaitRoomsReady(settle)
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.HTTPAddr())
	}
	// Every room stream and the snapshot bucket's.
	streams := c.Config.RoomStreams + 1
	nodetest.Eventually(t, settle, func() error {
		code, stdout, stderr := runArgs(t, append([]string{"probe", "--caught-up"}, addrs...)...)
		if want := fmt.Sprintf("%d of %d room streams have every copy caught up, over 3 nodes", streams, streams); code != exitOK || !strings.Contains(stdout, want) {
			return fmt.Errorf("exit %d: %s%s; want %q", code, stdout, stderr, want)
		}
		return nil
	})
	// n3 stops: the copies it held are gone, and so is its answer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[2].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runArgs(t, append([]string{"probe", "--caught-up"}, addrs...)...); code != exitFailure || !strings.Contains(stderr, addrs[2]) {
		t.Errorf("probe --caught-up naming a stopped node: exit %d, stderr %q; want 1 naming it", code, stderr)
	}
	nodetest.Eventually(t, settle, func() error {
		code, _, stderr := runArgs(t, append([]string{"probe", "--caught-up"}, addrs[:2]...)...)
		if code != exitFailure || !strings.Contains(stderr, "room streams have every copy caught up") {
			return fmt.Errorf("exit %d, stderr %q; want 1 with the count of streams caught up", code, stderr)
		}
		return nil
	})
}

// The judgement of probe --caught-up, from the nodes' /metrics.
func TestStreamCopiesOf(t *testing.T) {
	metrics := func(streams, caught int) string {
		return fmt.Sprintf("# HELP x\nswitchboard_room_streams %d\nswitchboard_room_streams_caught_up %d\nswitchboard_sessions 4\n", streams, caught)
	}
	for _, tt := range []struct {
		name    string
		bodies  []string
		want    string // in the line (ok) or the error
		ok      bool
		parseOK bool
	}{
		{"all caught up", []string{metrics(5, 2), metrics(5, 3), metrics(5, 0)}, "5 of 5 room streams", true, true},
		{"one copy behind", []string{metrics(5, 2), metrics(5, 2), metrics(5, 0)}, "4 of 5", false, true},
		{"a node counted twice is not more", []string{metrics(5, 3), metrics(5, 3)}, "6 of 5", false, true},
		{"no embedded cluster", []string{"switchboard_sessions 1\n", "switchboard_sessions 2\n"}, "embed no clustered NATS", true, true},
		{"some embed, some not", []string{metrics(5, 5), "switchboard_sessions 2\n"}, "report no room streams", false, true},
		{"different counts", []string{metrics(5, 5), metrics(4, 0)}, "counts 4 room streams", false, true},
		{"one gauge alone", []string{"switchboard_room_streams 5\n"}, "without the other", false, false},
		{"not a count", []string{"switchboard_room_streams 2.5\nswitchboard_room_streams_caught_up 0\n"}, "not a count", false, false},
		{"three copies", []string{metrics(5, 5) + "switchboard_room_replicas 3\n", metrics(5, 0) + "switchboard_room_replicas 3\n"}, "5 of 5 room streams", true, true},
		{"two copies, all caught up", []string{metrics(5, 3) + "switchboard_room_replicas 2\n", metrics(5, 2) + "switchboard_room_replicas 2\n"}, "n1 keeps 2 copies", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var nodes []nodeStreams
			for i, b := range tt.bodies {
				ns, err := parseNodeStreams(fmt.Sprintf("n%d", i+1), []byte(b))
				if (err == nil) != tt.parseOK {
					t.Fatalf("parsing %q: %v, want ok %v", b, err, tt.parseOK)
				}
				if err != nil {
					if !strings.Contains(err.Error(), tt.want) {
						t.Errorf("parse error %q does not say %q", err, tt.want)
					}
					return
				}
				nodes = append(nodes, ns)
			}
			line, err := streamCopiesOf(nodes)
			got := line
			if err != nil {
				got = err.Error()
			}
			if (err == nil) != tt.ok || !strings.Contains(got, tt.want) {
				t.Errorf("streamCopiesOf = %q, %v; want ok %v saying %q", line, err, tt.ok, tt.want)
			}
		})
	}
}
