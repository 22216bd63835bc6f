//go:build linux

package client

import (
	"fmt"
	"net"
	"syscall"
	"time"
)

// tcpUserTimeout is the socket option TCP_USER_TIMEOUT, 18 on every
// Linux architecture (package syscall names it on only some).
const tcpUserTimeout = 0x12

// setUserTimeout has the kernel end c once data it sent has gone
// unacknowledged for d (TCP_USER_TIMEOUT, in milliseconds).
func setUserTimeout(c *net.TCPConn, d time.Duration) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("client: setting TCP_USER_TIMEOUT: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(d.Milliseconds()))
	}); err != nil {
		return fmt.Errorf("client: setting TCP_USER_TIMEOUT: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("client: setting TCP_USER_TIMEOUT: %w", serr)
	}
	return nil
}
