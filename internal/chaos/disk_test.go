//go:build linux

package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// typeBefore joins typist to room with "acked before; " acknowledged in
// it, and writer to the room bulk, where fillUntilStopped writes.
func typeBefore(ctx context.Context, t *testing.T, typist, writer *client.Session, room string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if _, err := typist.JoinWait(wctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := typist.SendTextWait(wctx, room, "acked before; "); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.JoinWait(wctx, "bulk"); err != nil {
		t.Fatal(err)
	}
}

// fillUntilStopped fills each file system named in disks (a filler file
// in it) and writes a chunk longer than a page through writer into room
// bulk, again and again, until every node of nodes reports its JetStream
// stopped: the fillers take what JetStream frees when it compacts its
// logs, and no chunk fits in what is left of a file's last page.
func fillUntilStopped(t *testing.T, writer *client.Session, disks []string, nodes []*localcluster.Node) {
	t.Helper()
	nodetest.FillUntil(t, settle, disks, writer, func() error {
		for _, n := range nodes {
			if v, err := gauge(n, "switchboard_storage_stopped"); err != nil || v != "1" {
				return fmt.Errorf("%s: switchboard_storage_stopped %q (%v), want 1", n.ID, v, err)
			}
		}
		return nil
	})
}

// metricsClient bounds each scrape, so that a node that does not answer
// fails the check that scrapes it instead of holding it.
var metricsClient = &http.Client{Timeout: 5 * time.Second}

// readyzReason is the reason node n's /readyz gives for not being up.
func readyzReason(n *localcluster.Node) (string, error) {
	resp, err := metricsClient.Get("http://" + n.HTTP + "/readyz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct{ Reason string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("%s's /readyz: %w", n.ID, err)
	}
	return body.Reason, nil
}

// gauge reads the value of an unlabelled metric from node n's /metrics.
func gauge(n *localcluster.Node, name string) (string, error) {
	resp, err := metricsClient.Get("http://" + n.HTTP + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s: no %s", n.ID, name)
}

// A full disk: node n3 keeps its data on a small file system of its own,
// which fills up (another process's file takes the rest). nats-server
// stops n3's JetStream at its next write. n3 says so and steps aside
// (degraded, /readyz 503, attaches refused with draining), then tells its
// sessions to attach elsewhere; its typist's text, unacknowledged while
// n3 could not store it, is stored once through another node. When the
// space is freed n3 restarts its JetStream by itself and is up again,
// and a session on it reads and stores the room's text: nothing
// acknowledged lost, nothing twice.
func TestFullDiskNodeStepsAsideAndHeals(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	disk := filepath.Join(data, "n3")
	nodetest.SmallDisk(t, disk, 64<<20)
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 3, DataDir: data, Output: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	n3 := c.Nodes[2]

	sessions := dialSpread(ctx, t, c, 3)
	reader, typist := sessions[0], sessions[2]
	if typist.Node().ID != n3.ID {
		t.Fatalf("the typist attached to %s, want %s", typist.Node().ID, n3.ID)
	}
	const room = "disk"
	typeBefore(ctx, t, typist, reader, room)

	filler := filepath.Join(disk, "filler")
	nodetest.FillDisk(t, filler)
	if _, err := typist.SendText(room, "typed while full; "); err != nil {
		t.Fatal(err)
	}
	filled := time.Now()
	fillUntilStopped(t, reader, []string{disk}, []*localcluster.Node{n3})
	stopped := time.Now()
	t.Logf("n3's JetStream stopped, by its gauge, %v after the disk was full", stopped.Sub(filled).Round(time.Millisecond))
	nodetest.Eventually(t, settle, func() error { return steppedAside(ctx, []*localcluster.Node{n3}) })
	t.Logf("n3 degraded %v after its JetStream stopped", time.Since(stopped).Round(time.Millisecond))
	if why, err := readyzReason(n3); err != nil || !strings.Contains(why, "cannot store text") {
		t.Errorf("n3's /readyz gives the reason %q (%v), want one that says it cannot store text", why, err)
	}
	actx, acancel := context.WithTimeout(ctx, settle)
	code, err := attachAt(actx, n3.Addr, "late")
	acancel()
	if err != nil || code != wire.CodeDraining {
		t.Errorf("an attach at n3 with its disk full: code %q (%v), want %q", code, err, wire.CodeDraining)
	}
	// The typist is told to go, and its text is stored elsewhere.
	nodetest.Eventually(t, settle, func() error {
		if !typist.Connected() || typist.Node().ID == n3.ID {
			return fmt.Errorf("the typist is on %s (%v)", typist.Node().ID, typist.State())
		}
		if n := typist.Unacked(room); n > 0 {
			return fmt.Errorf("%d chunks of the typist unacknowledged", n)
		}
		return nil
	})

	t.Logf("the typist on %s with nothing unacknowledged %v after n3's JetStream stopped", typist.Node().ID, time.Since(stopped).Round(time.Millisecond))

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	nodetest.Eventually(t, settle, func() error {
		if code := readyz(n3); code != http.StatusOK {
			return fmt.Errorf("n3's /readyz: %d", code)
		}
		if st, err := n3.Status(ctx, n3.ID); err != nil || st != directory.Up {
			return fmt.Errorf("n3 calls itself %q (%v), want up", st, err)
		}
		if v, err := gauge(n3, "switchboard_storage_stopped"); err != nil || v != "0" {
			return fmt.Errorf("switchboard_storage_stopped %q (%v), want 0", v, err)
		}
		return nil
	})
	if v, err := gauge(n3, "switchboard_storage_restarts_total"); err != nil || v == "0" {
		t.Errorf("switchboard_storage_restarts_total %q (%v): n3 is up without having restarted its JetStream", v, err)
	}

	t.Logf("n3 up and ready again %v after the space was freed", time.Since(freed).Round(time.Millisecond))

	// n3 serves the room again: a session on it reads what was stored,
	// and stores more.
	back, err := client.Dial(ctx, n3.Addr, client.WithUser("back"), client.WithPolicy(prefer(n3.ID)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	if back.Node().ID != n3.ID {
		t.Fatalf("the new session attached to %s, want %s", back.Node().ID, n3.ID)
	}
	wctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	state, err := back.JoinWait(wctx, room)
	if err != nil {
		t.Fatal(err)
	}
	const want = "acked before; typed while full; "
	if got := state.Live[typist.User()]; got != want {
		t.Errorf("on n3 after the heal the room shows %q from the typist, want %q", got, want)
	}
	if _, err := back.SendTextWait(wctx, room, "stored on n3 again"); err != nil {
		t.Fatal(err)
	}
	state, err = reader.JoinWait(wctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if got := state.Live[typist.User()]; got != want {
		t.Errorf("on n1 the room shows %q from the typist, want %q (nothing lost, nothing twice)", got, want)
	}
	if got, want := state.Live[back.User()], "stored on n3 again"; got != want {
		t.Errorf("on n1 the room shows %q from the session on n3, want %q", got, want)
	}
}

// Full disks on every node: no stream has a quorum, so every node steps
// aside and the typist waits, holding its text. When the space is freed
// every node restarts its JetStream, they elect, and the typist attaches
// again; its text is stored once.
func TestFullDisksOnEveryNodeHeal(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	var disks []string
	for _, id := range []string{"n1", "n2", "n3"} {
		disk := filepath.Join(data, id)
		nodetest.SmallDisk(t, disk, 64<<20)
		disks = append(disks, disk)
	}
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 3, DataDir: data, Output: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	sessions := dialSpread(ctx, t, c, 3)
	typist, writer, reader := sessions[0], sessions[1], sessions[2]
	const room = "disks"
	typeBefore(ctx, t, typist, writer, room)

	for _, disk := range disks {
		nodetest.FillDisk(t, filepath.Join(disk, "filler"))
	}
	if _, err := typist.SendText(room, "typed while full; "); err != nil {
		t.Fatal(err)
	}
	fillUntilStopped(t, writer, disks, c.Nodes)
	stopped := time.Now()
	nodetest.Eventually(t, settle, func() error { return steppedAside(ctx, c.Nodes) })
	t.Logf("every node degraded %v after the last JetStream stopped", time.Since(stopped).Round(time.Millisecond))

	for _, disk := range disks {
		if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
			t.Fatal(err)
		}
	}
	freed := time.Now()
	nodetest.Eventually(t, settle, func() error {
		if err := backAndAttached(c.Nodes, []*client.Session{typist}); err != nil {
			return err
		}
		if n := typist.Unacked(room); n > 0 {
			return fmt.Errorf("%d chunks of the typist unacknowledged", n)
		}
		return nil
	})
	t.Logf("every node ready and the typist's text acknowledged %v after the space was freed", time.Since(freed).Round(time.Millisecond))
	roomShows(ctx, t, reader, typist, room, "acked before; typed while full; ")
}

// A node started on a full disk stops at once and says why, rather than
// waiting half a minute and blaming its port; started again once the
// disk has room (as its supervisor does), it joins the cluster.
func TestStartOnFullDisk(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	disk := filepath.Join(data, "n3")
	nodetest.SmallDisk(t, disk, 64<<20)
	filler := filepath.Join(disk, "filler")
	nodetest.FillDisk(t, filler)
	var n3Log nodetest.LockedBuffer
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 3, DataDir: data, NoWait: true,
		OutputFor: func(i int) io.Writer {
			if i == 2 {
				return io.MultiWriter(&n3Log, testLog(t))
			}
			return testLog(t)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	n3 := c.Nodes[2]
	nodetest.Eventually(t, settle, func() error {
		if n3.Alive() {
			return errors.New("n3 still runs")
		}
		return nil
	})
	out := n3Log.String()
	if !strings.Contains(out, "store directory") || !strings.Contains(out, "no space left on device") {
		t.Errorf("n3 stopped saying:\n%s\nwant the store directory and \"no space left on device\"", out)
	}
	if strings.Contains(out, "not ready after") {
		t.Errorf("n3 waited for its embedded NATS before it stopped:\n%s", out)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx, settle); err != nil {
		t.Fatal(err)
	}
	if code := readyz(n3); code != http.StatusOK {
		t.Errorf("n3's /readyz: %d after it started with room", code)
	}
}
