package dnsserver

import (
	"sync/atomic"
	"time"
)

// Stats counts what a Server turned away since New, and the queries it
// could not answer.
type Stats struct {
	// RateLimited is how many UDP queries got an empty truncated reply
	// because their client network was over Config.RateLimit.
	RateLimited uint64
	// TCPRefused is how many TCP connections were closed as soon as they
	// were accepted, over Config.MaxTCPConns, a host's share of it, or a
	// site's, an IPv4 /24's or IPv6 /48's (four hosts' shares).
	TCPRefused uint64
	// TCPWriteFailed is how many TCP connections were closed because a
	// reply could not be written: not within 2 s (a client that does not
	// read), or to a client already gone.
	TCPWriteFailed uint64
	// NotServing is how many queries for names in the zone were answered
	// SERVFAIL because Config.Serving said the node may not answer (it
	// was starting or degraded).
	NotServing uint64
}

// Stats returns the counts so far. Safe for concurrent use.
func (s *Server) Stats() Stats {
	return Stats{
		RateLimited:    s.counts.rateLimited.Load(),
		TCPRefused:     s.counts.tcpRefused.Load(),
		TCPWriteFailed: s.counts.tcpWriteFailed.Load(),
		NotServing:     s.counts.notServing.Load(),
	}
}

// turnedAwayLogEvery is the least time between two log lines about what
// the server turns away: a flood must not flood the log too.
const turnedAwayLogEvery = time.Minute

// counters are the Server's Stats, and when each kind was last logged.
type counters struct {
	rateLimited, tcpRefused, tcpWriteFailed atomic.Uint64
	notServing                              atomic.Uint64
	rateLogged, tcpLogged                   atomic.Int64 // Unix nanoseconds
}

// due reports whether a line about last may be logged at now, and if so
// marks it logged.
func due(last *atomic.Int64, now time.Time) bool {
	prev := last.Load()
	if prev != 0 && now.UnixNano()-prev < int64(turnedAwayLogEvery) {
		return false
	}
	return last.CompareAndSwap(prev, now.UnixNano())
}
