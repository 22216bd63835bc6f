package node_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A node without DataDir keeps its rooms under the system's temporary
// directory, at a name anyone can foretell: one that another user could
// have made first (a link elsewhere, or a directory others may write in)
// is refused, and one the node makes is its user's alone.
func TestDefaultDataDirIsTheNodesOwn(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir := filepath.Join(tmp, "switchboard-tmp-test-n1") // the service and ID with "-" for what is not [A-Za-z0-9_-]
	start := func() (*node.Node, error) {
		cfg := nodetest.Config("tmp.test", 0)
		cfg.DataDir = ""
		n, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return n, n.Start(context.Background())
	}

	if err := os.Symlink(t.TempDir(), dir); err != nil {
		t.Fatal(err)
	}
	if n, err := start(); !errors.Is(err, node.ErrUnsafeDataDir) {
		stopped(t, n, err)
		t.Errorf("start with the default data directory a link: %v, want ErrUnsafeDataDir", err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	if n, err := start(); !errors.Is(err, node.ErrUnsafeDataDir) {
		stopped(t, n, err)
		t.Errorf("start with the default data directory writable by all: %v, want ErrUnsafeDataDir", err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}

	n, err := start()
	if err != nil {
		t.Fatalf("start with no default data directory yet: %v", err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("the default data directory: %v", err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("the default data directory has mode %v, want 0700", fi.Mode().Perm())
	}
	// And again, as a restart takes its own directory back.
	if n, err = start(); err != nil {
		t.Fatalf("restart with the default data directory: %v", err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// stopped shuts n down if it started (err nil).
func stopped(t *testing.T, n *node.Node, err error) {
	t.Helper()
	if err == nil {
		if err := n.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
}
