package webui_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/localcluster"
)

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// processCluster builds switchboard and starts three of its processes
// serving chat.test, stopped when tb ends, and waits until each answers
// for its directory. The context it returns ends after within.
func processCluster(tb testing.TB, within time.Duration) (*localcluster.Cluster, context.Context) {
	tb.Helper()
	binary, err := localcluster.Build(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	tb.Cleanup(cancel)
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 3, Service: "chat.test", DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	if err := localcluster.Await(ctx, 60*time.Second, func(ctx context.Context) error {
		for _, n := range c.Nodes {
			if _, err := n.Directory(ctx); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return c, ctx
}
