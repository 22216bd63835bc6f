package proxyproto

import "syscall"

// errConnReset is how Windows says a connection was reset
// (syscall.ECONNRESET is an errno of its own there, which no socket
// returns).
var errConnReset error = syscall.WSAECONNRESET
