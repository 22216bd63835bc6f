package web_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/leaktest"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
