//go:build linux || darwin || freebsd

package node

import "syscall"

// diskSpace is the space free to an unprivileged writer, and the size, of
// the file system holding dir, in bytes; ok is false when it cannot be
// read.
func diskSpace(dir string) (free, size int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	bsize := uint64(st.Bsize)
	return int64(uint64(st.Bavail) * bsize), int64(uint64(st.Blocks) * bsize), true
}
