package sipfront_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/leaktest"
)

// TestMain fails the package if a test leaves a goroutine behind.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
