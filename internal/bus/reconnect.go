package bus

import (
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
)

// How a connection to an external NATS waits between passes over its
// servers once every one of them refused: reconnectFirst after the first
// pass, doubling each pass up to reconnectMax, each wait drawn between
// half and all of that (jitter). A node holds several connections to the
// bus, and every node of a cluster loses the bus at the same moment when
// its servers go; a fixed short wait would have hundreds of nodes knock
// on the returning servers several times a second each, all in step.
// The first passes stay quick, so that a bus back within a second or two
// is found as soon as before.
const (
	reconnectFirst = 100 * time.Millisecond
	reconnectMax   = 2 * time.Second
)

// reconnectDelay is the wait after the given number of failed passes
// (from 1), for a uniform draw u in [0, 1).
func reconnectDelay(passes int, u float64) time.Duration {
	d := reconnectMax
	if passes >= 1 && passes <= 5 {
		d = min(reconnectFirst<<(passes-1), reconnectMax)
	}
	return d/2 + time.Duration(u*float64(d/2))
}

// How long a connection to an external NATS stays on a server that no
// longer answers but never closed the connection (a paused or hung
// process, a host cut off without a reset): nats.go's defaults, a ping
// every 2 minutes and two left unanswered, held it there 4 to 6 minutes,
// the node out of service all that time (it sees no peer, and steps
// aside). A server that has left two pings sent 3 s apart unanswered is
// stale 6 to 9 s after it stopped answering, and the connection goes to
// another server of the URLs given or gossiped. A loaded server still
// answers a ping within seconds (unless the link is saturated for longer
// than that); the cost is a ping a connection every 3 s. A write to a
// server that stopped reading waits until the kernel's buffers are
// full, then, holding the connection's lock (the ping timer waits on it
// too), for nats.go's flusher timeout: a minute by default,
// busWriteTimeout here, after which the connection goes elsewhere as
// well.
const (
	busPingInterval = 3 * time.Second
	busMaxPingsOut  = 2
	busWriteTimeout = 10 * time.Second
)

// staleDetection is the nats.go options that leave a server that stopped
// answering (busPingInterval) or reading (busWriteTimeout).
func staleDetection() []nats.Option {
	return []nats.Option{
		nats.PingInterval(busPingInterval),
		nats.MaxPingsOutstanding(busMaxPingsOut),
		nats.FlusherTimeout(busWriteTimeout),
		nats.ReconnectOnFlusherError(),
	}
}

// reconnectBackoff is the nats.go option that waits reconnectDelay
// between passes.
func reconnectBackoff() nats.Option {
	return nats.CustomReconnectDelay(func(passes int) time.Duration {
		return reconnectDelay(passes, rand.Float64())
	})
}
