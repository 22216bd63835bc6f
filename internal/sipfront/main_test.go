package sipfront_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// TestMain fails the package if a test leaves a goroutine behind.
func TestMain(m *testing.M) { nodetest.VerifyTestMain(m) }
