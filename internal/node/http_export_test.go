package node

import "time"

// SetHTTPBodyTimeout sets httpBodyTimeout until the returned function
// restores it. For tests.
func SetHTTPBodyTimeout(d time.Duration) (restore func()) {
	old := httpBodyTimeout
	httpBodyTimeout = d
	return func() { httpBodyTimeout = old }
}

// SetHTTPWriteTimeout sets httpWriteTimeout until the returned function
// restores it. For tests.
func SetHTTPWriteTimeout(d time.Duration) (restore func()) {
	old := httpWriteTimeout
	httpWriteTimeout = d
	return func() { httpWriteTimeout = old }
}
