package sipfront_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/internal/leaktest"
)

// TestMain fails the package if a test leaves a goroutine behind, except
// the reader of a UDP connection the SIP stack (sipgo 1.7.3) made to send
// a request as its user agent was closing: the transport's Close clears
// its connection pool once, with no mark that it is closed, so a
// connection added after that is never closed, and its reader stays. It
// happened once in CI; a process that exits with its front never minds.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(leaktest.EngineLeftovers(),
		goleak.IgnoreAnyFunction("github.com/emiago/sipgo/sip.(*TransportUDP).readUDPConnection"))...)
}
