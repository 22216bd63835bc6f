//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// One server of a three-server bus paused (SIGSTOP): it keeps every
// connection open and answers nothing, as a hung process or a host cut
// off without a reset would. The node that knew only that server leaves
// it within seconds (its connections' pings go unanswered) for one the
// servers' gossip named, and is up again with the text typed meanwhile
// stored once. With nats.go's default pings (every 2 minutes) it stayed
// on the paused server for minutes, out of service.
func TestBusServerPausedIsLeft(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	var dirs []string
	for i := range 3 {
		dirs = append(dirs, filepath.Join(data, "b"+strconv.Itoa(i+1)))
	}
	bus := startBusServers(t, dirs)
	const room = "buspause"
	c, logs, typist, reader := twoNodesOnBus(ctx, t, bus, room) // n1 knows b3 alone

	if err := bus[2].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	t.Cleanup(func() { _ = bus[2].cmd.Process.Signal(syscall.SIGCONT) }) // before its kill
	if _, err := typist.SendText(room, "typed while b3 was paused; "); err != nil {
		t.Fatal(err)
	}
	// Within a minute: nats.go's default pings would take two to six.
	nodetest.Eventually(t, time.Minute, func() error {
		if !slices.ContainsFunc(strings.Split(logs[0].String(), "\n"), func(line string) bool {
			return strings.Contains(line, `msg="reconnected to the bus"`) && strings.Contains(line, "lost=b3")
		}) {
			return errors.New("n1 has not left b3")
		}
		return nil
	})
	t.Logf("n1 left the paused b3 after %v", time.Since(paused).Round(time.Millisecond))
	nodetest.Eventually(t, settle, func() error {
		if code := readyz(c.Nodes[0]); code != http.StatusOK {
			return fmt.Errorf("n1's /readyz: %d", code)
		}
		return nil
	})
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := typist.SendTextWait(wctx, room, "and after"); err != nil {
		t.Fatal(err)
	}
	roomShows(ctx, t, reader, typist, room, "acked before; typed while b3 was paused; and after")
}
