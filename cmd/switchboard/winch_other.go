//go:build !unix

package main

import "os"

// notifyResize does nothing where there is no SIGWINCH: the chat screen
// is drawn again at the next key or event.
func notifyResize(chan<- os.Signal) (stop func()) { return func() {} }
