package client

import (
	"sync"
	"time"

	"github.com/switchboard/switchboard/wire"
)

// DefaultKeepAlive is the longest a session's connection goes without a
// line from the client: after it the writer sends a ping. The heartbeat
// pings only when the node is silent, and a node closes a session that
// sends nothing for its IdleTimeout (5 minutes by default), so without
// this a member who only reads a busy room would be closed every five
// minutes.
const DefaultKeepAlive = time.Minute

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

	keepAlive time.Duration // a ping after this long without a write

	wake chan struct{} // a send happened (capacity 1)
	stop chan struct{} // closed by close
	done chan struct{} // closed when run returns
	once sync.Once
}

// newWriter starts the writer of c; it pings when it has written nothing
// for keepAlive.
func newWriter(c *Conn, keepAlive time.Duration) *writer {
	w := &writer{c: c, keepAlive: keepAlive, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
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

// run writes what is queued until close, or until a write fails, and a
// ping whenever it has written nothing for keepAlive.
func (w *writer) run() {
	defer close(w.done)
	idle := time.NewTimer(w.keepAlive)
	defer idle.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-w.wake:
		case <-idle.C:
			w.mu.Lock()
			w.queue = append(w.queue, wire.Message{Op: wire.OpPing})
			w.mu.Unlock()
		}
		idle.Reset(w.keepAlive)
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
