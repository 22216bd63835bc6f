package sipfront

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
)

// waitFor bounds waits for what must happen: generous for loaded CI.
const waitFor = 30 * time.Second

// stuckPair returns the front's end of a loopback TCP connection, with
// writeTimeout, and its peer's, which reads nothing and has a small
// receive buffer.
func stuckPair(t *testing.T, writeTimeout time.Duration) (*limitedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := newConnLimiter(ln, 4, 4, 0, writeTimeout, slog.New(slog.DiscardHandler), newMetrics())
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	if err := peer.(*net.TCPConn).SetReadBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*limitedConn), peer
}

// writeStuck starts n writes on c, each more than the socket buffers
// hold, and returns the channel their errors come on.
func writeStuck(c *limitedConn, n int) <-chan error {
	big := make([]byte, 8<<20)
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Write(big)
			errs <- err
		}()
	}
	return errs
}

func (c *limitedConn) pending() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writing
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("%s: not within %v", what, waitFor)
		panic("unreachable")
	}
}

// TestStuckConnIsNotRead: while maxPendingWrites writes wait on a
// connection whose peer takes nothing, the connection is not read,
// though a request waits there; once it closes, the read and every
// write return.
func TestStuckConnIsNotRead(t *testing.T) {
	c, peer := stuckPair(t, time.Hour)
	errs := writeStuck(c, maxPendingWrites)
	nodetest.Eventually(t, waitFor, func() error {
		if n := c.pending(); n != maxPendingWrites {
			return errors.New("writes not all started")
		}
		return nil
	})
	if _, err := peer.Write([]byte("OPTIONS sip:lobby@127.0.0.1 SIP/2.0\r\n")); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		n, err := c.Read(make([]byte, 64))
		if n > 0 {
			err = errors.New("read a request while the answers waited")
		}
		read <- err
	}()
	nodetest.Eventually(t, waitFor, func() error {
		if c.l.stalls.Load() == 0 {
			return errors.New("the read did not wait for the writes")
		}
		return nil
	})
	c.Close()
	if err := await(t, read, "the read's return"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read: %v, want net.ErrClosed", err)
	}
	for range maxPendingWrites {
		if err := await(t, errs, "a write's return"); err == nil {
			t.Error("a write the peer took none of succeeded")
		}
	}
}

// TestStuckWriteClosesTheConn: a write that times out closes the
// connection: the writes waiting their turn and a read waiting for them
// return, and the connection's place is given back. Each write has its
// own write timeout from its turn, so that writes starting after it do
// not put the deadline off.
func TestStuckWriteClosesTheConn(t *testing.T) {
	c, _ := stuckPair(t, 100*time.Millisecond)
	errs := writeStuck(c, maxPendingWrites+1)
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 64))
		read <- err
	}()
	timedOut := 0
	for range maxPendingWrites + 1 {
		switch err := await(t, errs, "a write's return"); {
		case errors.Is(err, os.ErrDeadlineExceeded):
			timedOut++
		case !errors.Is(err, net.ErrClosed):
			t.Errorf("a write waiting its turn: %v, want net.ErrClosed", err)
		}
	}
	if timedOut != 1 {
		t.Errorf("%d writes timed out, want 1 (the others end with the connection)", timedOut)
	}
	if err := await(t, read, "the read's return"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read: %v, want net.ErrClosed", err)
	}
	if n := c.l.Open(); n != 0 {
		t.Errorf("%d connections held after the write timed out", n)
	}
}
