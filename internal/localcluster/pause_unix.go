//go:build unix

package localcluster

import "syscall"

// The signals Pause and Resume send.
const sigStop, sigCont = syscall.SIGSTOP, syscall.SIGCONT
