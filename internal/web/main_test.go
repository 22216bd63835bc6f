package web_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/nodetest"
)

func TestMain(m *testing.M) {
	nodetest.VerifyTestMain(m)
}
