package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/switchboard/switchboard/internal/bench"
)

// benchRTPDoc is the rtp scenario's line in bench's usage.
const benchRTPDoc = "keystroke latency of a SIP/RTP caller and a TCP member on another node, next to TCP to TCP"

func runBenchRTP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("bench rtp", "[flags]",
		"Starts a local cluster, bridges a SIP caller (T.140 over RTP with redundancy)\n"+
			"into a room on node 1 and times its keystrokes to a TCP member on node 2 and\n"+
			"back, next to two TCP members on nodes 1 and 2 (docs/rtp.md).", stdout, stderr)
	fs := c.fs
	var cfg bench.RTPConfig
	cfg.Nodes, cfg.Samples, cfg.Rate, cfg.Interval = 3, 100, 3, 300*time.Millisecond
	intFlag(fs, &cfg.Nodes, "nodes", 2, 250, "nodes in the local cluster")
	intFlag(fs, &cfg.Samples, "samples", 1, -1, "keystrokes each path sends")
	floatFlag(fs, &cfg.Rate, "rate", "keystrokes a second")
	durationFlag(fs, &cfg.Interval, "interval", time.Millisecond, 10*time.Second, "T.140 transmission interval of the front and the caller")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	if cfg.Binary, err = os.Executable(); err != nil {
		return fmt.Errorf("bench rtp: %w", err)
	}
	rep, err := bench.RunRTP(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench rtp: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.WriteText(stdout)
	return nil
}
