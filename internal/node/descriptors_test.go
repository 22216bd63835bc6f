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
			logs := startLogged(t, func(cfg *node.Config) {
				if tc.maxConns > 0 {
					cfg.MaxConns = tc.maxConns
				}
			})
			logs.check(t, "too few descriptors", tc.warned)
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
			logs := startLogged(t, func(cfg *node.Config) {
				cfg.DNS = "127.0.0.1:0"
				cfg.Advertise = tc.advertise
			})
			logs.check(t, "under a host name it does not answer for", tc.warned)
		})
	}
}

// startLogged starts one node with configure applied and a log of its
// own, and returns the log once the node has started (its start-up lines
// are out).
func startLogged(t *testing.T, configure func(*node.Config)) *logLines {
	t.Helper()
	logs := &logLines{}
	nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.Logger = slog.New(logs)
		configure(cfg)
	}})
	if err := logs.saw("node started"); err != nil {
		t.Fatal(err)
	}
	return logs
}

// check fails the test unless a line holds sub exactly when want.
func (l *logLines) check(t *testing.T, sub string, want bool) {
	t.Helper()
	err := l.saw(sub)
	if want && err != nil {
		t.Error(err)
	}
	if !want && err == nil {
		t.Errorf("a line says %q", sub)
	}
}

// A node on an external bus named nats:// with no CA and no credentials
// says, at start, that the link may be in clear and open to anyone who
// reaches the server, and that its entry is as safe as the bus's
// permissions; before, it said nothing of the bus at all.
func TestExternalBusPostureLogged(t *testing.T) {
	ns := externalNATS(t, t.TempDir())
	logs := startLogged(t, func(cfg *node.Config) { onBus(ns.ClientURL(), nil)(0, cfg) })
	logs.check(t, "cross the network in clear", true)
	logs.check(t, "presents no credentials to the external bus", true)
	logs.check(t, "only as safe as the bus's permissions", true)
}
