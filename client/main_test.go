package client_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/leaktest"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// settle bounds a wait for something that must happen: generous, so that
// a loaded CI machine never fails a test that is only slow. Speeds are
// measured by the benchmarks, not asserted here.
const settle = 20 * time.Second

// exampleTargetEnv names the environment variable Example reads its
// target from: TestMain points it at a one-node service of its own, so
// that the Example's body uses public packages only and still runs.
const exampleTargetEnv = "SWITCHBOARD_TARGET"

// TestMain starts the service Example dials, runs the tests, stops the
// service and then checks that no goroutine leaked (the check of
// leaktest.VerifyTestMain, made after the service's goroutines are gone).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(withExampleService{m}, leaktest.EngineLeftovers()...)
}

// withExampleService runs the tests with the example's service up.
type withExampleService struct{ m *testing.M }

// Run starts the service, runs the tests and stops the service.
func (w withExampleService) Run() int {
	stop, err := startExampleService()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests: starting the example's service:", err)
		return 1
	}
	defer stop()
	return w.m.Run()
}

// startExampleService starts one node (ID n1) on a free loopback port,
// waits until it reports itself up, and sets exampleTargetEnv to its
// address. stop shuts it down and removes its data.
func startExampleService() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "switchboard-client-example-")
	if err != nil {
		return nil, err
	}
	cfg := nodetest.Config("example.test", 0)
	cfg.Cluster, cfg.HTTP, cfg.DataDir = "", "", dir // alone; no HTTP needed
	n, err := node.New(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := n.Start(context.Background()); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "client tests: closing the example's service:", err)
		}
		os.RemoveAll(dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitUp(ctx, n); err != nil {
		stop()
		return nil, err
	}
	if err := os.Setenv(exampleTargetEnv, n.Addr()); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// waitUp waits until n reports itself up (after its first directory
// exchange), looking again after a short, growing pause, or until ctx
// ends: a wait for an event with a deadline, as nodetest.Eventually.
func waitUp(ctx context.Context, n *node.Node) error {
	for wait := time.Millisecond; n.Status() != directory.Up; wait = min(2*wait, 20*time.Millisecond) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s is %q: %w", n.ID(), n.Status(), ctx.Err())
		case <-time.After(wait):
		}
	}
	return nil
}
