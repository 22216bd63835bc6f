package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamLeaders reads each server's own replicas: in a JetStream cluster
// of three, every server lists an R3 stream with the leader all of them
// agree on; a server without a cluster, or an external NATS, cannot tell
// (nil).
func TestStreamLeaders(t *testing.T) {
	seed := openBus(t, Config{Name: "l1", Cluster: "127.0.0.1:0", Secret: testSecret, JetStream: true, StoreDir: t.TempDir()})
	buses := []*Bus{seed}
	for _, name := range []string{"l2", "l3"} {
		buses = append(buses, openBus(t, Config{Name: name, Cluster: "127.0.0.1:0", Secret: testSecret, JetStream: true,
			StoreDir: t.TempDir(), Join: []string{seed.ClusterAddr().String()}}))
	}
	js, err := jetstream.New(seed.Conn)
	if err != nil {
		t.Fatal(err)
	}
	createR3(t, js, "LEADERS", "leaders.>")
	waitForLong(t, "every server's replica knowing the same leader", func() error {
		var seen []string
		for _, b := range buses {
			leaders := b.StreamLeaders()
			leader, ok := leaders["LEADERS"]
			if !ok || leader == "" {
				return fmt.Errorf("%s: StreamLeaders = %v", b.cfg.Name, leaders)
			}
			seen = append(seen, leader)
		}
		if seen[0] != seen[1] || seen[1] != seen[2] || !slices.Contains([]string{"l1", "l2", "l3"}, seen[0]) {
			return fmt.Errorf("leaders %v, want one of l1..l3 named by all", seen)
		}
		return nil
	})

	alone := openBus(t, Config{Name: "alone", JetStream: true, StoreDir: t.TempDir()})
	if got := alone.StreamLeaders(); got != nil {
		t.Errorf("a server without a cluster: StreamLeaders = %v, want nil", got)
	}
	url, _ := startExternal(t)
	ext := openBus(t, Config{Name: "ext", External: url})
	if got := ext.StreamLeaders(); got != nil {
		t.Errorf("an external NATS: StreamLeaders = %v, want nil", got)
	}
}

// createR3 creates a stream of three copies named name on subjects,
// asking again until the cluster's metadata leader, elected once the
// servers see each other, answers (until then a request is lost).
func createR3(t *testing.T, js jetstream.JetStream, name, subjects string) {
	t.Helper()
	waitForLong(t, "creating the R3 stream "+name, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subjects}, Replicas: 3})
		return err
	})
}

// waitForLong is waitFor with room for an election on a loaded machine.
func waitForLong(t *testing.T, what string, cond func() error) {
	t.Helper()
	waitWithin(t, 30*time.Second, what, cond)
}

// After every server of a JetStream cluster restarts on its store, the
// metadata group recovers its log before it elects a leader (nats-server
// waits out its election timeout, 4 to 9 s, for a group with state).
// JetStreamCurrent says true only once a leader is known, and requests to
// JetStream's API sent then are answered (nats-server itself calls the
// metadata group current as soon as it has applied its recovered log).
func TestJetStreamCurrentAfterFullRestart(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	names := []string{"r1", "r2", "r3"}
	open := func(seedAddr string, addrs []string) []*Bus {
		var buses []*Bus
		for i, name := range names {
			cfg := Config{Name: name, ClusterName: "restart.test", Cluster: addrs[i], Secret: testSecret, JetStream: true, StoreDir: dirs[i]}
			if i > 0 {
				cfg.Join = []string{seedAddr}
			}
			b, err := Open(context.Background(), cfg)
			if err != nil {
				t.Fatalf("opening %s: %v", name, err)
			}
			t.Cleanup(b.Close) // Close may be called again
			buses = append(buses, b)
			if i == 0 && seedAddr == "" {
				seedAddr = b.ClusterAddr().String()
			}
		}
		return buses
	}
	// The servers come back on the same ports: ports below the kernel's
	// ephemeral range, which no outgoing connection or listener on port 0
	// takes while they are closed.
	buses := open("", []string{lowPort(t), lowPort(t), lowPort(t)})
	addrs := make([]string, len(buses))
	for i, b := range buses {
		addrs[i] = b.ClusterAddr().String()
	}
	js, err := jetstream.New(buses[0].Conn)
	if err != nil {
		t.Fatal(err)
	}
	createR3(t, js, "RESTART", "restart.>")
	for _, b := range buses {
		b.Close()
	}

	buses = open(addrs[0], addrs)
	for _, b := range buses {
		waitForLong(t, b.cfg.Name+" current", func() error {
			if !b.JetStreamCurrent() {
				return errors.New("JetStream not current")
			}
			return nil
		})
		js, err := jetstream.New(b.Conn)
		if err != nil {
			t.Fatal(err)
		}
		// A request can still be lost in the moment the new leader
		// takes over, so it may take a second try; but not the 4 s and
		// more that the election takes after a restart.
		for _, timeout := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			_, err = js.AccountInfo(ctx)
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s: JetStream current, but its API did not answer: %v", b.cfg.Name, err)
		}
	}
}
