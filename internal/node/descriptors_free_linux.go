//go:build linux

package node

import (
	"errors"
	"os"
	"syscall"
)

// descriptorsFree reports whether the process has at least want
// descriptors free below its limit, counting those open in /proc/self/fd;
// false when reading that takes a descriptor the table has not got, true
// when either cannot be read for another reason.
func descriptorsFree(want int) bool {
	limit := openFileLimit()
	if limit <= 0 {
		return true
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		return false
	}
	if err != nil {
		return true
	}
	return limit-len(fds) >= want
}
