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

// reconnectBackoff is the nats.go option that waits reconnectDelay
// between passes.
func reconnectBackoff() nats.Option {
	return nats.CustomReconnectDelay(func(passes int) time.Duration {
		return reconnectDelay(passes, rand.Float64())
	})
}
