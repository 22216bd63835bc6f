package nodetest

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// SmallDisk mounts a file system of size bytes (tmpfs) at dir for the
// rest of the test, or skips the test where it cannot mount one (CI runs
// the tests as root, where it can).
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
