//go:build !windows

package proxyproto

import "syscall"

// errConnReset is how the system says a connection was reset.
var errConnReset error = syscall.ECONNRESET
