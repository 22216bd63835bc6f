//go:build unix

package bench

import (
	"fmt"
	"syscall"
)

// raiseNoFile raises this process's descriptor limit to want, soft and
// hard, so that the bench and the nodes it starts, which inherit the
// limit, can hold the sessions. When the hard limit may not be raised
// (no CAP_SYS_RESOURCE) it raises the soft limit to the hard one. It
// returns the soft limit now in force.
func raiseNoFile(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if uint64(lim.Max) < want {
		var up syscall.Rlimit
		setLimit(&up.Cur, want)
		setLimit(&up.Max, want)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err == nil {
			return want, nil
		}
	}
	lim.Cur = lim.Max
	// Setting it even when it is unchanged makes os/exec pass it on to
	// the nodes instead of the limit the process started with.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setting the descriptor limit: %w", err)
	}
	return uint64(lim.Cur), nil
}

// setLimit sets an Rlimit field, a uint64 on most systems and an int64 on
// some (FreeBSD).
func setLimit[T int64 | uint64](field *T, v uint64) { *field = T(v) }
