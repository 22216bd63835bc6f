package sipfront

import (
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"
)

// AnswerAddr is answerAddr, for the tests.
func (s *Server) AnswerAddr(req *sip.Request) netip.Addr { return s.answerAddr(req) }

// MaxBacklog is maxBacklog, for the tests.
const MaxBacklog = maxBacklog

// Backlogs returns, for each call held, the chunks of the caller's text
// the node has not acknowledged.
func (s *Server) Backlogs() []int {
	s.mu.Lock()
	calls := make([]*call, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	out := make([]int, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.sess.Unacked(c.room))
	}
	return out
}

// Packets counts the RTP datagrams the calls held read from their callers.
func (s *Server) Packets() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, c := range s.calls {
		n += c.packets.Load()
	}
	return n
}

// TCPConns counts the TCP connections the SIP listener holds.
func (s *Server) TCPConns() int { return s.lim.Open() }

// Pongs counts the keepalive pings the callers of the calls held answered.
func (s *Server) Pongs() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, c := range s.calls {
		n += c.pongs.Load()
	}
	return n
}

// MaxSendBacklog is maxSendBacklog, for the tests.
const MaxSendBacklog = maxSendBacklog

// Held is the most text any call held has held for its caller unsent.
func (s *Server) Held() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, c := range s.calls {
		n = max(n, c.held.Load())
	}
	return n
}

// Unsent is the text the calls held hold for their callers unsent, and
// the bytes of the room's text they took.
func (s *Server) Unsent() (unsent, relayed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		unsent += c.unsent.Load()
		relayed += c.relayed.Load()
	}
	return unsent, relayed
}

// FailedAccepts counts the accepts on the SIP port that failed.
func (s *Server) FailedAccepts() int64 { return s.lim.failed.Load() }

// CallerName is callerName, for the tests.
func CallerName(req *sip.Request) string { return callerName(req) }

// SetClock gives the front of cfg the clock now for its call limits
// (Config.AckGrace), in place of time.Now.
func SetClock(cfg *Config, now func() time.Time) { cfg.now = now }

// TCPConnsWith counts the TCP connections the SIP front holds with the
// address a: those it accepted from a, and those it opened to a.
func (s *Server) TCPConnsWith(a netip.Addr) int {
	s.lim.mu.Lock()
	defer s.lim.mu.Unlock()
	return s.lim.bySource[sourceOf(a)]
}

// RTPPeers lists where the calls held send their RTP.
func (s *Server) RTPPeers() []netip.AddrPort {
	s.mu.Lock()
	calls := make([]*call, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.rtpPeer())
	}
	return out
}

// SetConnWriteTimeout gives the front of cfg the bound d on each write on
// a TCP connection, in place of connWriteTimeout.
func SetConnWriteTimeout(cfg *Config, d time.Duration) { cfg.writeTimeout = d }

// StackTransport is the SIP stack's transport layer of s. For tests.
func (s *Server) StackTransport() *sip.TransportLayer { return s.ua.TransportLayer() }

// Unconfirmed counts the calls admitted whose ACK the front has not
// taken yet. For tests.
func (s *Server) Unconfirmed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits.unconfirmed
}
