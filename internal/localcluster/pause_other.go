//go:build !unix

package localcluster

import "syscall"

// The signals Pause and Resume send. This system has no SIGSTOP or
// SIGCONT: os.Process.Signal refuses them, so Pause and Resume return its
// error rather than the build failing for the rest of the package.
const sigStop, sigCont = syscall.Signal(0x13), syscall.Signal(0x12)
