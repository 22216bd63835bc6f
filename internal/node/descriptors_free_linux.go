//go:build linux

package node

import "os"

// descriptorsFree reports whether the process has at least want
// descriptors free below its limit, counting those open in /proc/self/fd;
// true when either cannot be read.
func descriptorsFree(want int) bool {
	limit := openFileLimit()
	if limit <= 0 {
		return true
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return true
	}
	return limit-len(fds) >= want
}
