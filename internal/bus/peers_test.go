package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A server gone for good, once forgotten, no longer counts: a newcomer
// takes its copy of each stream, and the cluster then survives losing a
// second of its first three servers. Without ForgetPeer the metadata
// group would count four servers, two of them gone, and elect nobody.
// The system user that asks is not reachable on the client port.
func TestForgetPeerLetsTheRestElect(t *testing.T) {
	open := func(name string, join ...string) *Bus {
		return openBus(t, Config{Name: name, Cluster: "127.0.0.1:0", Secret: testSecret, JetStream: true, StoreDir: t.TempDir(), Join: join})
	}
	f1 := open("f1")
	seed := f1.ClusterAddr().String()
	f2, f3 := open("f2", seed), open("f3", seed)

	// The node's user gets in over the client port; the system user,
	// with its password, is refused there.
	url := f1.server.ClientURL()
	nc, err := nats.Connect(url, nats.UserInfo(userNode, f1.nodePassword), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("the node's user over the client port: %v", err)
	}
	nc.Close()
	if nc, err := nats.Connect(url, nats.UserInfo(userSystem, f1.sysPassword), nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		if err == nil {
			nc.Close()
		}
		t.Fatalf("the system user over the client port: %v, want an authorization violation", err)
	}

	js, err := jetstream.New(f1.Conn)
	if err != nil {
		t.Fatal(err)
	}
	createR3(t, js, "FORGET", "forget.>")
	f3.Close()

	forget := func(b *Bus, name string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return b.ForgetPeer(ctx, name)
	}
	if err := forget(f1, "f1"); !errors.Is(err, ErrForgetSelf) {
		t.Errorf("forgetting itself: %v, want ErrForgetSelf", err)
	}
	// f3 may have led the metadata group: its successor answers once
	// elected. A removal whose answer came too late may have been
	// committed all the same: then asking again finds f3 gone.
	failed := false
	waitForLong(t, "f1 forgetting f3", func() error {
		err := forget(f1, "f3")
		if failed && errors.Is(err, ErrNotPeer) {
			return nil
		}
		failed = err != nil
		return err
	})
	if err := forget(f2, "f3"); !errors.Is(err, ErrNotPeer) {
		t.Errorf("forgetting f3 twice: %v, want ErrNotPeer", err)
	}
	if err := forget(f1, "nobody"); !errors.Is(err, ErrNotPeer) {
		t.Errorf("forgetting a server never seen: %v, want ErrNotPeer", err)
	}

	f4 := open("f4", seed)
	waitForLong(t, "f4 holding a current copy of the stream", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "FORGET")
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		var copies []string
		if info.Cluster != nil {
			copies = append(copies, info.Cluster.Leader)
			for _, r := range info.Cluster.Replicas {
				if r.Current && !r.Offline {
					copies = append(copies, r.Name)
				}
			}
		}
		if !slices.Contains(copies, "f4") {
			return fmt.Errorf("the stream's current copies: %v", copies)
		}
		return nil
	})
	f2.Close()

	waitForLong(t, "storing on f1 and f4 alone", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.Publish(ctx, "forget.after", []byte("stored"))
		return err
	})
	// f2 may have led the metadata group: f1 and f4 elect its successor.
	waitForLong(t, "f4 knowing a metadata leader", func() error {
		if !f4.JetStreamLeaderKnown() {
			return errors.New("none")
		}
		return nil
	})
}
