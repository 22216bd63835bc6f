package node_test

import (
	"context"
	"net"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A program that defers Shutdown (or Halt) after Start may call it when
// Start failed: it returns, having nothing to stop. Before, a Start that
// failed before the bus opened (a client port in use) left Shutdown to
// say goodbye on a bus that was never there: a nil pointer panic.
func TestShutdownAfterAFailedStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, stop := range []string{"shutdown", "halt"} {
		cfg := nodetest.Config("fail.test", 0)
		cfg.Listen = ln.Addr().String() // taken: Start fails before the bus opens
		n, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err == nil {
			t.Fatal("Start on a port in use succeeded")
		}
		if stop == "halt" {
			n.Halt()
		} else if err := n.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown after a failed Start: %v", err)
		}
	}
}
