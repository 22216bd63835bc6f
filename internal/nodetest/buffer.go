package nodetest

import (
	"bytes"
	"io"
	"sync"
	"testing"
)

// LockedBuffer collects output that a process's or a node's goroutines
// write while the test reads it. The zero value is ready to use.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FailureLog returns a writer for what a test's processes print. It keeps
// the output and hands it to t's log only if the test has failed by its
// cleanup, after the failure's own lines: a short view of a failed test
// (CI shows the head and the tail of its output) then opens with what went
// wrong instead of pages of the processes' start-up lines. A test killed
// by go test's -timeout loses what was kept.
func FailureLog(t testing.TB) io.Writer {
	var b LockedBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("what the test's processes printed:\n%s", b.String())
		}
	})
	return &b
}
