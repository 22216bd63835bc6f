//go:build !unix

package bench

import "syscall"

// The signals the bench sends to the processes it runs. This system has
// none of them: os.Process.Signal refuses them, and the scenarios that
// pause a node or put a nats-server in lame duck mode fail with its error.
const sigStop, sigCont, sigLameDuck = syscall.Signal(0x13), syscall.Signal(0x12), syscall.Signal(0x1f)
