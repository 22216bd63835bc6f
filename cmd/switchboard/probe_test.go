package main

import (
	"net"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// TestProbe: probe exits 0 with the node's status while the node is up,
// 1 with the status and reason once it drains (while --live still says
// the process serves), and 1 when nothing answers.
func TestProbe(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitAllUp(settle)
	n1 := c.Nodes[0]
	if code, stdout, stderr := runArgs(t, "probe", "--http", n1.HTTPAddr()); code != exitOK || !strings.Contains(stdout, "up") {
		t.Fatalf("probe of an up node: exit %d\n%s%s", code, stdout, stderr)
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
