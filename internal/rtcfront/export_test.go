package rtcfront

import "time"

// MaxBacklog is maxBacklog, for the tests.
const MaxBacklog = maxBacklog

// Backlogs returns, for each peer held, the chunks of the peer's text the
// node has not acknowledged.
func (s *Server) Backlogs() []int {
	s.mu.Lock()
	peers := make([]*peer, 0, len(s.peers))
	for p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	out := make([]int, 0, len(peers))
	for _, p := range peers {
		out = append(out, p.sess.Unacked(p.room))
	}
	return out
}

// Messages counts the messages the peers held read from their channels.
func (s *Server) Messages() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for p := range s.peers {
		n += p.msgs.Load()
	}
	return n
}

// MaxRefusedChannels is maxRefusedChannels, for the tests.
const MaxRefusedChannels = maxRefusedChannels

// RefusalLogPeriod is refusalLogPeriod, for the tests.
const RefusalLogPeriod = refusalLogPeriod

// MaxRemoteAddrs is maxRemoteAddrs, for the tests.
const MaxRemoteAddrs = maxRemoteAddrs

// SetClock makes s read the time of its token tries from now.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}
