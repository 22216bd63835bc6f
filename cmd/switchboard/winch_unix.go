//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyResize has the terminal's size changes (SIGWINCH) sent on ch
// until the returned function stops it.
func notifyResize(ch chan<- os.Signal) (stop func()) {
	signal.Notify(ch, syscall.SIGWINCH)
	return func() { signal.Stop(ch) }
}
