package node_test

import (
	"log/slog"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A --max-conns above what the descriptor limit allows with storage's
// share held back is said at start; the default is not.
func TestMaxConnsAboveTheHeadroomIsWarned(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxConns int
		warned   bool
	}{
		{"default", 0, false},
		{"above the headroom", node.DefaultMaxConns() + 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logLines{}
			nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
				cfg.Logger = slog.New(logs)
				if tc.maxConns > 0 {
					cfg.MaxConns = tc.maxConns
				}
			}})
			// Start returns once the node started: its start-up lines are out.
			if err := logs.saw("node started"); err != nil {
				t.Fatal(err)
			}
			err := logs.saw("too few descriptors")
			if tc.warned && err != nil {
				t.Errorf("max-conns %d: %v", tc.maxConns, err)
			}
			if !tc.warned && err == nil {
				t.Errorf("default max-conns %d warned of too few descriptors", node.DefaultMaxConns())
			}
		})
	}
}

// A node whose DNS responder lists it under a host name (listening on
// every interface without --advertise publishes the host's name) says
// that clients asking that responder cannot reach it: the responder
// answers only for the service's zone.
func TestDNSWithANamedAddressWarns(t *testing.T) {
	for _, tc := range []struct {
		name      string
		advertise string
		warned    bool
	}{
		{"an address", "", false},
		{"a host name", "web1.invalid:7070", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logLines{}
			nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
				cfg.Logger = slog.New(logs)
				cfg.DNS = "127.0.0.1:0"
				cfg.Advertise = tc.advertise
			}})
			if err := logs.saw("node started"); err != nil {
				t.Fatal(err)
			}
			err := logs.saw("under a host name it does not answer for")
			if tc.warned && err != nil {
				t.Error(err)
			}
			if !tc.warned && err == nil {
				t.Error("a node advertised by address was warned about its name")
			}
		})
	}
}
