package nodetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
)

// SmallDisk mounts a file system of size bytes (tmpfs) at dir for the
// rest of the test, or skips the test where it cannot mount one (CI runs
// the tests as root, where it can). A test binary killed before its
// cleanups (go test -timeout) leaves the mount, and its memory, behind.
func SmallDisk(t testing.TB, dir string, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0750", size))
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("this test mounts a small file system, and cannot here: %v (CI runs it as root)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Error(err)
		}
	})
}

// FillDisk appends to path until its file system is full.
func FillDisk(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// FillUntil fills each file system named in disks (a file "filler" in
// it) and has writer, a member of room bulk, write a chunk longer than a
// page there, again and again until done returns nil, failing the test
// after timeout. nats-server stops a node's JetStream only when one of
// its writes fails: the fillers take what JetStream frees when it
// compacts its logs, and no chunk fits in what is left of a file's last
// page. The chunks reach every copy of bulk's stream.
func FillUntil(t testing.TB, timeout time.Duration, disks []string, writer *client.Session, done func() error) {
	t.Helper()
	chunk := strings.Repeat("x", 4000)
	Eventually(t, timeout, func() error {
		err := done()
		if err != nil {
			for _, disk := range disks {
				FillDisk(t, filepath.Join(disk, "filler"))
			}
			_, _ = writer.SendText("bulk", chunk) // refused or not: a write
		}
		return err
	})
}
