package main

import (
	"net"
	"strings"
	"testing"
)

// bench connect against an address where nothing listens: every session
// fails, the result says so, and the exit code is 1 (it was 0).
func TestBenchConnectFailedSessionsFailTheRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused from now on
	code, stdout, stderr := runArgs(t, "bench", "connect", "--service", addr, "--clients", "2", "--concurrency", "2", "--timeout", "300ms")
	if code != exitFailure || !strings.Contains(stdout, "0 attached, 2 failed") || !strings.Contains(stderr, "2 of 2 sessions failed to attach") {
		t.Errorf("bench connect with every session failing: exit %d, stdout %q, stderr %q; want 1 and the count", code, stdout, stderr)
	}
	if strings.Contains(stderr, "attached 2/2") {
		t.Errorf("the progress said attached: %q", stderr)
	}
}
