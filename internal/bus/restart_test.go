package bus

import (
	"context"
	"errors"
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
