package client

import (
	"slices"
	"time"
)

// WithoutNodeLimits makes the session send as if its nodes said no limits
// on its text, as nodes older than wire.Limits do: for tests of the
// pacing after a refusal against a real node.
func WithoutNodeLimits() Option {
	return func(o *options) error {
		o.ignoreLimits = true
		return nil
	}
}

// WithKeepAlive sets how long a connection goes without a line from the
// client before it pings (default DefaultKeepAlive).
func WithKeepAlive(d time.Duration) Option {
	return func(o *options) error {
		o.keepAlive = d
		return nil
	}
}

// LeavesFollowed counts the rooms whose leaves the session still awaits
// an answer to, or will send again.
func (s *Session) LeavesFollowed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.leaveRetry)
	for room, q := range s.asked {
		if s.leaveRetry[room] == nil && slices.Contains(q, 'l') {
			n++
		}
	}
	return n
}

// FlushesWaiting counts the Flush calls waiting on room.
func (s *Session) FlushesWaiting(room string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[room]; r != nil {
		return len(r.flushes)
	}
	return 0
}
