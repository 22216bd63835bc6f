package webui_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/leaktest"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(stopSharedBrowser{m})
}
