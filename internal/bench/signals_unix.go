//go:build unix

package bench

import "syscall"

// The signals the bench sends to the processes it runs: SIGSTOP and
// SIGCONT pause and resume a node, SIGUSR2 puts a nats-server in lame
// duck mode.
const sigStop, sigCont, sigLameDuck = syscall.SIGSTOP, syscall.SIGCONT, syscall.SIGUSR2
