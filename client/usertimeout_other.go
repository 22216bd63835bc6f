//go:build !linux

package client

import (
	"net"
	"time"
)

// setUserTimeout does nothing: TCP_USER_TIMEOUT is Linux's (see
// usertimeout_linux.go).
func setUserTimeout(*net.TCPConn, time.Duration) error { return nil }
