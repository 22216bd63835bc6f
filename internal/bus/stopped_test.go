package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// StoppedGroups on a cluster of three embedded servers. A healthy cluster
// reports none: streams of three copies and of one (which has no Raft
// node at all), a key-value bucket of each. Then a copy's Raft group is
// made to fail a write (its directory swapped for a file, as a full
// descriptor table fails an open) at an election, and nats-server stops
// it: only that copy's server reports that stream. StopJetStream and RestartJetStream, as the node's repair does,
// start the group again (its directory put back first), and none is
// reported.
func TestStoppedGroups(t *testing.T) {
	seed := openBus(t, Config{Name: "s1", Cluster: "127.0.0.1:0", Secret: testSecret, JetStream: true, StoreDir: t.TempDir()})
	buses := []*Bus{seed}
	for _, name := range []string{"s2", "s3"} {
		buses = append(buses, openBus(t, Config{Name: name, Cluster: "127.0.0.1:0", Secret: testSecret, JetStream: true,
			StoreDir: t.TempDir(), Join: []string{seed.ClusterAddr().String()}}))
	}
	js, err := jetstream.New(seed.Conn)
	if err != nil {
		t.Fatal(err)
	}
	createR3(t, js, "THREE", "three.>")
	waitForLong(t, "creating the other streams and buckets", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ONE", Subjects: []string{"one.>"}, Replicas: 1}); err != nil {
			return err
		}
		for _, r := range []int{1, 3} {
			if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: fmt.Sprintf("KV%d", r), Replicas: r}); err != nil {
				return err
			}
		}
		return nil
	})
	// Every stream with its leader, as each server sees it.
	waitForLong(t, "every stream led", func() error {
		for _, b := range buses {
			for name, leader := range b.StreamLeaders() {
				if leader == "" {
					return fmt.Errorf("%s sees no leader of %s", b.server.Name(), name)
				}
			}
		}
		return nil
	})
	for _, b := range buses {
		if got := b.StoppedGroups(); len(got) != 0 {
			t.Errorf("%s reports stopped groups %v in a healthy cluster", b.server.Name(), got)
		}
	}

	// A copy of THREE that is not its leader fails its next term's write.
	st, err := js.Stream(context.Background(), "THREE")
	if err != nil {
		t.Fatal(err)
	}
	leader := st.CachedInfo().Cluster.Leader
	i := slices.IndexFunc(buses, func(b *Bus) bool { return b.server.Name() != leader })
	b := buses[i]
	dir := groupDir(t, b, "THREE")
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitForLong(t, "the stream's leader stepping down", func() error {
		reply, err := seed.Conn.Request("$JS.API.STREAM.LEADER.STEPDOWN.THREE", nil, 2*time.Second)
		if err != nil {
			return err
		}
		var resp struct {
			Success bool `json:"success"`
		}
		if err := json.Unmarshal(reply.Data, &resp); err != nil || !resp.Success {
			return fmt.Errorf("stepdown answered %s", reply.Data)
		}
		return nil
	})
	waitForLong(t, "the group stopped on "+b.server.Name(), func() error {
		if got := b.StoppedGroups(); !slices.Equal(got, []string{"THREE"}) {
			return fmt.Errorf("StoppedGroups = %v, want [THREE]", got)
		}
		return nil
	})
	for _, other := range buses {
		if other != b {
			if got := other.StoppedGroups(); len(got) != 0 {
				t.Errorf("%s reports stopped groups %v; only %s's copy stopped", other.server.Name(), got, b.server.Name())
			}
		}
	}

	// The repair.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	if err := b.StopJetStream(); err != nil {
		t.Fatal(err)
	}
	waitForLong(t, "the stop finished", func() error {
		if !b.JetStreamStopped() || b.JetStreamStopping() {
			return errors.New("JetStream still running or stopping")
		}
		return nil
	})
	if err := b.RestartJetStream(); err != nil {
		t.Fatal(err)
	}
	waitForLong(t, "every group running again", func() error {
		if !b.JetStreamCurrent() {
			return errors.New("JetStream not current")
		}
		if got := b.StoppedGroups(); len(got) != 0 {
			return fmt.Errorf("StoppedGroups = %v", got)
		}
		if _, ok := b.StreamLeaders()["THREE"]; !ok {
			return errors.New("no copy of THREE")
		}
		return nil
	})
}

// groupDir is the directory of the Raft group of b's copy of stream.
func groupDir(t *testing.T, b *Bus, stream string) string {
	t.Helper()
	streams, ok := b.localStreams(server.JSzOptions{Streams: true, RaftGroups: true})
	if !ok {
		t.Fatalf("%s: no streams", b.server.Name())
	}
	for _, st := range streams {
		if st.Name == stream && st.RaftGroup != "" {
			return filepath.Join(b.cfg.StoreDir, "jetstream", b.server.SystemAccount().GetName(), "_js_", st.RaftGroup)
		}
	}
	t.Fatalf("%s holds no copy of %s", b.server.Name(), stream)
	return ""
}
