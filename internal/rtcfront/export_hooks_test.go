package rtcfront

// EndPeersBeforeRegistering makes s end each peer it sets up, as a
// connection that fails at once would, before it registers the peer (on
// false, no longer).
func (s *Server) EndPeersBeforeRegistering(on bool) {
	if !on {
		s.beforeRegister.Store(nil)
		return
	}
	end := func(p *peer) { p.end("ended by the test before it was registered") }
	s.beforeRegister.Store(&end)
}

// DroppedOverRate counts the packets the front's socket dropped over
// their source's rate.
func (s *Server) DroppedOverRate() int64 { return s.limited.dropped.Load() }

// SourceBurst is sourceBurst, for the tests.
const SourceBurst = sourceBurst
