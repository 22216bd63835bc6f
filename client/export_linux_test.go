package client

import (
	"errors"
	"syscall"
	"time"
)

// UserTimeout reads the TCP_USER_TIMEOUT of the session's connection
// back from the kernel (0: none set).
func (s *Session) UserTimeout() (time.Duration, error) {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil || c.tcp == nil {
		return 0, errors.New("no TCP connection")
	}
	raw, err := c.tcp.SyscallConn()
	if err != nil {
		return 0, err
	}
	var ms int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		ms, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout)
	}); err != nil {
		return 0, err
	}
	return time.Duration(ms) * time.Millisecond, gerr
}
