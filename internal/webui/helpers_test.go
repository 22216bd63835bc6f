package webui_test

import (
	"context"
	"strings"
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
	return processClusterWith(tb, within, localcluster.Config{Nodes: 3})
}

// processClusterWith is processCluster with cfg's nodes, groups,
// heartbeat and so on; it sets the binary, the service and the data
// directory itself.
func processClusterWith(tb testing.TB, within time.Duration, cfg localcluster.Config) (*localcluster.Cluster, context.Context) {
	tb.Helper()
	binary, err := localcluster.Build(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	tb.Cleanup(cancel)
	cfg.Binary, cfg.Service, cfg.DataDir = binary, "chat.test", tb.TempDir()
	c, err := localcluster.Start(ctx, cfg)
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

// connLog is the page's connection log, a line per entry.
func connLog(t testing.TB, tab context.Context) []string {
	t.Helper()
	return strings.Split(eval[string](t, tab, `[...document.querySelectorAll("#log li")].map((li) => li.textContent).join("\n")`), "\n")
}

// count is how many of lines contain s.
func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}
