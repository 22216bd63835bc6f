package node_test

import (
	"log/slog"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// TestRoomsThatCannotFitASnapshotAreWarned: on a bus whose largest
// message is smaller than a room at its bounds (MaxParticipants users of
// the longest names, each from the most sessions a room admits), the node
// says so at start; with fewer participants it does not.
func TestRoomsThatCannotFitASnapshotAreWarned(t *testing.T) {
	ns := externalNATSWith(t, &server.Options{StoreDir: t.TempDir(), MaxPayload: 256 * 1024})
	for _, tc := range []struct {
		participants int
		warned       bool
	}{
		{100, true}, // about 340 KB at the bounds
		{10, false},
	} {
		t.Run(strconv.Itoa(tc.participants), func(t *testing.T) { // a service of its own on the bus
			logs := &logLines{}
			nodetest.Start(t, 1, nodetest.Options{Configure: onBus(ns.ClientURL(), func(cfg *node.Config) {
				cfg.MaxParticipants = tc.participants
				cfg.Logger = slog.New(logs)
			})})
			// Start returns once the node started; the check is part of it.
			if err := logs.saw("node started"); err != nil {
				t.Fatal(err)
			}
			err := logs.saw("would not fit a snapshot")
			if tc.warned != (err == nil) {
				t.Errorf("max-participants %d on a 256 KiB bus: warned %v, want %v", tc.participants, err == nil, tc.warned)
			}
		})
	}
}
