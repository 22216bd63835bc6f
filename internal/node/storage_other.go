//go:build !(linux || darwin || freebsd)

package node

// diskSpace cannot read a file system's free space on this platform; the
// storage watch then retries JetStream without waiting for space.
func diskSpace(string) (free, size int64, ok bool) { return 0, 0, false }
