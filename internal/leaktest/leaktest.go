// Package leaktest fails a test binary whose tests leave goroutines
// behind, knowing the two that the embedded NATS engine itself may leave.
package leaktest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// VerifyTestMain runs the package's tests (m is a *testing.M, or one
// wrapped to tidy up after them), then fails if goroutines are left over,
// as goleak.VerifyTestMain does, except for the two that the embedded
// NATS engine itself can leave behind (EngineLeftovers).
func VerifyTestMain(m goleak.TestingM) {
	goleak.VerifyTestMain(m, EngineLeftovers()...)
}

// EngineLeftovers tells goleak which goroutines of nats-server may
// outlive a server that was shut down and waited for, and nothing else.
//
// Why they outlive it (nats-server 2.15.3, jetstream_cluster.go,
// createRaftGroup): when a server applies a stream or consumer assignment
// it first creates the raft group's write-ahead log, a file store, and
// then starts the raft node. If the server is shutting down in between,
// starting the node fails (the system account is gone, or the cluster was
// torn down) and the function returns the error without stopping the file
// store it just made. The store's state-flush loop then waits forever, and
// the process-wide access-time ticker it registered (package ats) keeps
// running because its reference count never returns to zero. Neither holds
// a socket, a lock or a file descriptor; they wake every 100 ms and every
// two minutes. Tests hit this when a cluster stops while a room stream's
// replicas are still being raised; a node process exits, so it never
// matters outside tests.
//
// Only the exact top functions are ignored: a leaked stream, consumer,
// route or raft node of ours shows other goroutines and still fails.
func EngineLeftovers() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
	}
}

// LeakChecked wraps m for a TestMain that runs its tests through
// another helper (localcluster.RunTests builds a binary first): its Run
// runs the tests, then fails the run if goroutines are left over, as
// VerifyTestMain does.
func LeakChecked(m *testing.M) interface{ Run() int } { return leakChecked{m} }

type leakChecked struct{ m *testing.M }

func (l leakChecked) Run() int {
	code := l.m.Run()
	if code != 0 {
		return code
	}
	if err := goleak.Find(EngineLeftovers()...); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
		return 1
	}
	return 0
}

// VerifyNoneWithin fails t unless, within timeout, no goroutine is left
// but those opts ignore. goleak.VerifyNone alone gives goroutines about
// half a second to end, which a loaded machine may not give goroutines
// that end only once they see a close (a test's fake peer, a reader
// woken by a closed socket).
func VerifyNoneWithin(t testing.TB, timeout time.Duration, opts ...goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := goleak.Find(opts...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("goroutines left after %v: %v", timeout, err)
			return
		}
	}
}
