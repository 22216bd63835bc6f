//go:build unix

package node

import "syscall"

// openFileLimit is the process's soft limit on open descriptors
// (RLIMIT_NOFILE), or 0 when it cannot be read or is unlimited. Go raises
// the soft limit to the hard one when a program starts, so this is what
// the node may really use.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
