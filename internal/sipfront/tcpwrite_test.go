package sipfront_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipfront"
)

// floodWithoutReading opens a TCP connection to front with a small
// receive buffer and sends it up to n OPTIONS, each with a 3 KB From tag
// (which the answer repeats), reading nothing. It returns the
// connection (closed at cleanup) and a channel that gets the error that
// stopped the requests, or nil when all went out (to the socket buffers,
// which can hold them all).
func floodWithoutReading(t *testing.T, front *sipfront.Server, n int) (net.Conn, <-chan error) {
	t.Helper()
	conn, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.(*net.TCPConn).SetReadBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	local, pad := conn.LocalAddr().String(), strings.Repeat("a", 3000)
	done := make(chan error, 1)
	go func() {
		// Bounds the test when a write blocks for good (the front stopped
		// reading and closes nothing).
		_ = conn.SetWriteDeadline(time.Now().Add(settle))
		for i := range n {
			req := fmt.Sprintf("OPTIONS sip:lobby@%s;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-flood%d\r\nMax-Forwards: 70\r\n"+
				"From: <sip:flood@127.0.0.1>;tag=%s%d\r\nTo: <sip:lobby@%s>\r\nCall-ID: flood-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
				front.Addr(), local, i, pad, i, front.Addr(), i)
			if _, err := conn.Write([]byte(req)); err != nil {
				done <- fmt.Errorf("after %d requests: %w", i, err)
				return
			}
		}
		done <- nil
	}()
	return conn, done
}

// stuckInWrite counts the goroutines in a write on a SIP TCP connection.
func stuckInWrite() int {
	buf := make([]byte, 16<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "(*TCPConnection).Write(")
}

// TestTCPPeerThatReadsNothingIsClosed: a peer that sends requests over
// TCP and reads none of the answers has its connection closed once an
// answer has waited the write timeout to go out, and the goroutines
// answering it end. Before, no write on a SIP TCP connection had a
// deadline: once the peer's receive window was full, the goroutine of
// each further answer (sipgo answers each request on one of its own)
// waited in its write for good, and the connection, read as ever, was
// never closed idle; 6,000 OPTIONS took a node from 80 goroutines to
// 4,840 and 85 MB, never freed. Not parallel: it counts the process's
// goroutines.
func TestTCPPeerThatReadsNothingIsClosed(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	front := startFront(t, c.Nodes[0], func(cfg *sipfront.Config) {
		sipfront.SetConnWriteTimeout(cfg, 300*time.Millisecond)
	})
	// What sipgo starts for the front (readers, timers) is running.
	if line := optionsOverTCP(t, front); !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("OPTIONS over TCP answered %q", line)
	}
	nodetest.Eventually(t, settle, func() error {
		if held := front.TCPConns(); held != 0 {
			return fmt.Errorf("%d connections held", held)
		}
		return nil
	})
	before := runtime.NumGoroutine()

	// 3,000 answers of 3 KB are far more than the socket buffers hold.
	// Once they went out, or failed, the front has taken the connection.
	conn, flood := floodWithoutReading(t, front, 3000)
	select {
	case <-flood:
	case <-time.After(settle):
		t.Fatal("the peer's requests still go out")
	}
	// The front closed the connection (it gives a connection's place back
	// as it closes it, and the peer closes nothing), and the goroutines
	// answering the peer ended.
	nodetest.Eventually(t, settle, func() error {
		n, stuck, held := runtime.NumGoroutine(), stuckInWrite(), front.TCPConns()
		if n > before+5 || stuck > 0 || held > 0 {
			return fmt.Errorf("%d goroutines (%d before the peer), %d in a write; %d connections held", n, before, stuck, held)
		}
		return nil
	})
	// The peer reads the answers it holds, then the connection's end.
	if err := conn.SetReadDeadline(time.Now().Add(settle)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, conn); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the connection is open still")
	}
}
