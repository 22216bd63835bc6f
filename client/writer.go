package client

import (
	"sync"

	"github.com/switchboard/switchboard/wire"
)

// writer is the one goroutine that writes to a session's connection, so
// that nothing writes to the network while holding the session's mutex:
// the session's methods and its reader queue messages with send, which
// never blocks, and the writer sends them in order. A write that fails
// closes the connection, so that the reader notices the drop.
type writer struct {
	c *Conn
	// budget is the node's limits on the session's text on this
	// connection (pace.go); guarded by the session's mutex.
	budget *budget
	// maxChunk is the longest chunk the node takes, in bytes, or 0 when
	// it did not say; guarded by the session's mutex.
	maxChunk int

	mu     sync.Mutex // guards queue and closed
	queue  []wire.Message
	closed bool

	wake chan struct{} // a send happened (capacity 1)
	stop chan struct{} // closed by close
	done chan struct{} // closed when run returns
	once sync.Once
}

// newWriter starts the writer of c.
func newWriter(c *Conn) *writer {
	w := &writer{c: c, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// send queues m to be written after what is queued already. It reports
// false when the writer is closed (m is then dropped). It never blocks.
func (w *writer) send(m wire.Message) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, m)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// run writes what is queued until close, or until a write fails.
func (w *writer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case <-w.wake:
		}
		for {
			w.mu.Lock()
			batch := w.queue
			w.queue = nil
			w.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, m := range batch {
				if err := w.c.Send(m); err != nil {
					w.mu.Lock()
					w.closed, w.queue = true, nil
					w.mu.Unlock()
					_ = w.c.Close() // the reader sees the drop
					return
				}
			}
		}
	}
}

// close stops the writer, dropping what is queued, and waits for its
// goroutine to end. A write in progress ends when the connection is
// closed or its write deadline passes; callers close the connection
// first. close may be called more than once.
func (w *writer) close() {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed, w.queue = true, nil
		w.mu.Unlock()
		close(w.stop)
	})
	<-w.done
}
