package sipfront_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/internal/leaktest"
)

// TestMain fails the package if a test leaves a goroutine behind, except
// the reader of a UDP connection the SIP stack (sipgo 1.7.3) makes to
// answer a request it read just before its user agent closed. The stack
// handles each request on a goroutine of its own, which asks the
// transport's connection pool for a connection to answer on; when that
// runs after Close emptied the pool (Close marks nothing closed), it makes
// a new UDP connection, whose reader nobody stops. Both ends of these
// tests close while the other pings them (a caller's OPTIONS every 50 ms,
// the front's every 100 ms), so it can happen here; a scratch program
// that flooded a sipgo server with OPTIONS and closed it 200 times was
// left with 114 such readers. Our own pings could do the same when one
// went out as the front or a caller closed; both now stop their
// keepalives before they close the SIP stack (Server.Close,
// sipcall.Call's finish). A process that exits with its front never
// minds.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(leaktest.EngineLeftovers(),
		goleak.IgnoreAnyFunction("github.com/emiago/sipgo/sip.(*TransportUDP).readUDPConnection"))...)
}
