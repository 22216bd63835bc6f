package bus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// nats-server stops its JetStream by itself when its storage fails (a
// full disk, in internal/chaos); here the test stops it as nats-server
// does. JetStreamStopped says so, RestartJetStream brings it back on the
// same store, and the stream and its message are there again.
// RestartJetStream has nothing to restart on an external NATS.
func TestRestartJetStream(t *testing.T) {
	b := openBus(t, Config{Name: "restart", JetStream: true, StoreDir: t.TempDir()})
	if b.JetStreamStopped() {
		t.Fatal("JetStreamStopped before any stop")
	}
	js, err := jetstream.New(b.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "keep.a", []byte("stored before")); err != nil {
		t.Fatal(err)
	}

	if err := b.server.ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	if !b.JetStreamStopped() {
		t.Fatal("JetStreamStopped = false after nats-server stopped its JetStream")
	}
	if b.JetStreamStopping() {
		t.Fatal("JetStreamStopping = true once ShutdownJetStream has returned")
	}
	if err := b.RestartJetStream(); err != nil {
		t.Fatal(err)
	}
	if b.JetStreamStopped() {
		t.Fatal("JetStreamStopped = true after RestartJetStream")
	}
	waitForLong(t, "reading the stream's message after the restart", func() error {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		defer rcancel()
		s, err := js.Stream(rctx, "KEEP")
		if err != nil {
			return err
		}
		msg, err := s.GetLastMsgForSubject(rctx, "keep.a")
		if err != nil {
			return err
		}
		if string(msg.Data) != "stored before" {
			t.Fatalf("the message reads %q after the restart", msg.Data)
		}
		return nil
	})
	if err := b.RestartJetStream(); err != nil {
		t.Errorf("RestartJetStream while JetStream runs: %v, want nil", err)
	}

	url, _ := startExternal(t)
	ext := openBus(t, Config{Name: "ext", External: url})
	if ext.JetStreamStopped() {
		t.Error("an external NATS: JetStreamStopped = true")
	}
	if err := ext.RestartJetStream(); !errors.Is(err, ErrNoJetStream) {
		t.Errorf("an external NATS: RestartJetStream = %v, want ErrNoJetStream", err)
	}
}

// A store directory that cannot be written fails Open at once, saying
// why, rather than after StartTimeout with a guess about the port
// (nats-server only logs that its JetStream could not start). Here the
// directory would have to be made inside a file; internal/chaos starts a
// node on a full disk.
func TestOpenUnwritableStore(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Config{Name: "unwritable", JetStream: true, StoreDir: filepath.Join(file, "store"), StartTimeout: 30 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "store directory") || !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("Open with a store directory inside a file: %v, want an error about the store directory (ENOTDIR)", err)
	}
}

// In a JetStream cluster of three, one server's JetStream stops as
// nats-server stops it on a full disk (in the background, handing over
// what it leads). Once the stop has finished it restarts on the same
// store, follows the metadata leader again, and serves the R3 stream:
// a message stored before is there, and one published through it after
// is stored. Its node's connection never reconnected, and its system
// user still reaches the metadata leader (ForgetPeer).
func TestRestartJetStreamInACluster(t *testing.T) {
	seed := openBus(t, Config{Name: "r1", Cluster: "127.0.0.1:0", Secret: testSecret, JetStream: true, StoreDir: t.TempDir()})
	buses := []*Bus{seed}
	for _, name := range []string{"r2", "r3"} {
		buses = append(buses, openBus(t, Config{Name: name, Cluster: "127.0.0.1:0", Secret: testSecret, JetStream: true,
			StoreDir: t.TempDir(), Join: []string{seed.ClusterAddr().String()}}))
	}
	b := buses[2]
	js, err := jetstream.New(b.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	createR3(t, js, "KEPT", "kept.>")
	publish := func(subject, data string) func() error {
		return func() error {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := js.Publish(rctx, subject, []byte(data))
			return err
		}
	}
	waitForLong(t, "storing a message", publish("kept.before", "stored before"))

	go func() { _ = b.server.ShutdownJetStream() }()
	waitForLong(t, "JetStream stopped", func() error {
		if !b.JetStreamStopped() {
			return errors.New("JetStreamStopped = false")
		}
		return nil
	})
	waitForLong(t, "the stop finished", func() error {
		if b.JetStreamStopping() {
			return errors.New("JetStreamStopping = true")
		}
		return nil
	})
	if err := b.RestartJetStream(); err != nil {
		t.Fatal(err)
	}
	waitForLong(t, "JetStream following its metadata leader again", func() error {
		if !b.JetStreamCurrent() {
			return errors.New("JetStreamCurrent = false")
		}
		return nil
	})
	waitForLong(t, "storing a message through the restarted server", publish("kept.after", "stored after"))
	for subject, want := range map[string]string{"kept.before": "stored before", "kept.after": "stored after"} {
		waitForLong(t, "reading "+subject, func() error {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			s, err := js.Stream(rctx, "KEPT")
			if err != nil {
				return err
			}
			msg, err := s.GetLastMsgForSubject(rctx, subject)
			if err != nil {
				return err
			}
			if string(msg.Data) != want {
				t.Fatalf("%s reads %q, want %q", subject, msg.Data, want)
			}
			return nil
		})
	}
	if b.JetStreamStopped() {
		t.Error("JetStream stopped again after the restart")
	}
	if n := b.Conn.Stats().Reconnects; n != 0 {
		t.Errorf("the node's connection reconnected %d times across the restart", n)
	}
	// The reload kept the system account and its user: the restarted
	// server can still ask the metadata leader to forget a server.
	waitForLong(t, "asking to forget a server never seen after the restart", func() error {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := b.ForgetPeer(rctx, "nobody"); !errors.Is(err, ErrNotPeer) {
			return fmt.Errorf("ForgetPeer: %v, want ErrNotPeer", err)
		}
		return nil
	})
}
