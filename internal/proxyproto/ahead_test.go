package proxyproto_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/switchboard/switchboard/internal/proxyproto"
)

// dialFrom connects to addr from the loopback address from, and writes
// first.
func dialFrom(t *testing.T, from, addr, first string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, first); err != nil {
		t.Fatal(err)
	}
	return c
}

// HeaderListener hands out connections as their headers complete: a
// proxy's connection that stalls holds up neither a direct one nor
// another proxy's, and is closed at its timeout and reported; a bad
// header is reported at once; Close ends Accept.
func TestHeaderListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type failure struct {
		remote string
		err    error
	}
	failed := make(chan failure, 4)
	ln := &proxyproto.HeaderListener{
		Listener: inner,
		From:     func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.2") },
		Timeout:  300 * time.Millisecond,
		Failed:   func(remote net.Addr, err error) { failed <- failure{remote.String(), err} },
	}
	defer ln.Close()
	dial := func(from, first string) net.Conn { return dialFrom(t, from, inner.Addr().String(), first) }
	stalled := dial("127.0.0.2", "PROXY TCP4 192.0.2.9 ")
	dial("127.0.0.3", "direct")
	dial("127.0.0.2", "PROXY TCP4 192.0.2.7 198.51.100.1 54321 8080\r\nproxied")

	got := map[string]string{}
	for range 2 {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got[c.RemoteAddr().String()] = string(buf[:n])
		c.Close()
	}
	if got["192.0.2.7:54321"] != "proxied" || len(got) != 2 {
		t.Errorf("accepted %v, want the proxied client 192.0.2.7:54321 and the direct one", got)
	}
	f := <-failed
	if !errors.Is(f.err, os.ErrDeadlineExceeded) {
		t.Errorf("the stalled header failed with %v, want its deadline", f.err)
	}
	if _, err := stalled.Read(make([]byte, 1)); err == nil {
		t.Error("the stalled connection is still open")
	}

	dial("127.0.0.2", `{"op":"hello"}`+"\n")
	if f := <-failed; !errors.Is(f.err, proxyproto.ErrBadHeader) {
		t.Errorf("a connection without a header failed with %v, want ErrBadHeader", f.err)
	}

	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

// Close closes the connections whose headers are still awaited, rather
// than leaving each to its timeout, and reports none of them as failed.
func TestHeaderListenerCloseEndsPendingReads(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	ln := &proxyproto.HeaderListener{
		Listener: inner,
		From:     func(netip.Addr) bool { return true },
		Timeout:  time.Hour,
		Failed:   func(_ net.Addr, err error) { failed <- err },
	}
	go func() { _, _ = ln.Accept() }() // starts the reading
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "PROXY "); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the pending connection was left open after Close")
	}
	select {
	case err := <-failed:
		t.Errorf("a connection closed by Close was reported failed: %v", err)
	default:
	}
}

// With MaxPending headers being read, the next proxy connection closes
// the oldest of them, reported, and takes its place; a direct connection
// still comes through: a full allowance holds up no one else.
func TestHeaderListenerFull(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type failure struct {
		remote string
		err    error
	}
	failed := make(chan failure, 2)
	ln := &proxyproto.HeaderListener{
		Listener:   inner,
		From:       func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.2") },
		Timeout:    time.Hour,
		MaxPending: 1,
		Failed:     func(remote net.Addr, err error) { failed <- failure{remote.String(), err} },
	}
	defer ln.Close()
	dial := func(from, first string) net.Conn { return dialFrom(t, from, inner.Addr().String(), first) }
	silent := dial("127.0.0.2", "") // takes the one place, sends nothing
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	// The second proxy connection: the accept loop reaches it only after
	// the first took the place (connections are accepted in order).
	dial("127.0.0.2", "PROXY TCP4 192.0.2.7 198.51.100.1 54321 8080\r\n")
	f := <-failed
	if f.remote != silent.LocalAddr().String() || !errors.Is(f.err, proxyproto.ErrTooManyPending) {
		t.Fatalf("closed %s with %v; want the silent connection %s with ErrTooManyPending", f.remote, f.err, silent.LocalAddr())
	}
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("the silent connection is still open")
	}
	dial("127.0.0.3", "")
	got := map[string]bool{}
	for range 2 {
		c := <-accepted
		got[c.RemoteAddr().String()] = true
		c.Close()
	}
	if !got["192.0.2.7:54321"] || len(got) != 2 {
		t.Errorf("accepted %v, want the proxied client 192.0.2.7:54321 and the direct one", got)
	}
}

// An AWS NLB sends the header only with the client's first bytes, by
// default: 64 clients that connect through it and send nothing hold every
// place. A client whose header and request come at once is still served,
// the oldest silent one closed for it (it used to be refused, and so was
// everyone after it while the 64 stayed).
func TestHeaderListenerSilentConnectionsMakeRoom(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type failure struct {
		remote string
		err    error
	}
	failed := make(chan failure, 2)
	ln := &proxyproto.HeaderListener{
		Listener: inner,
		From:     func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.2") },
		Timeout:  time.Hour,
		Failed:   func(remote net.Addr, err error) { failed <- failure{remote.String(), err} },
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var silent []net.Conn
	for range 64 { // the default MaxPending
		silent = append(silent, dialFrom(t, "127.0.0.2", inner.Addr().String(), ""))
	}
	// Accepted after the 64 (in order), whatever the time it takes.
	dialFrom(t, "127.0.0.2", inner.Addr().String(), "PROXY TCP4 198.51.100.7 192.0.2.1 40000 7071\r\nGET /healthz HTTP/1.1\r\n\r\n")
	f := <-failed
	if f.remote != silent[0].LocalAddr().String() || !errors.Is(f.err, proxyproto.ErrTooManyPending) {
		t.Fatalf("closed %s with %v; want the oldest silent connection %s with ErrTooManyPending", f.remote, f.err, silent[0].LocalAddr())
	}
	c := <-accepted
	defer c.Close()
	if got := c.RemoteAddr().String(); got != "198.51.100.7:40000" {
		t.Errorf("accepted %s, want the client 198.51.100.7:40000", got)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "GET /healthz HTTP/1.1\r\n" {
		t.Errorf("read %q, %v; want the request", line, err)
	}
	if _, err := silent[0].Read(make([]byte, 1)); err == nil {
		t.Error("the oldest silent connection is still open")
	}
	select {
	case f := <-failed:
		t.Errorf("%s failed too: %v", f.remote, f.err)
	default:
	}
}

// A Listener's pending Conns (handed out, header not read, not closed)
// are at most MaxPending: one more closes the oldest, whose ReadHeader
// fails with ErrTooManyPending, while the newer ones read theirs. Closing
// a Conn, or reading its header, frees its place.
func TestListenerPending(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &proxyproto.Listener{Listener: inner, From: func(netip.Addr) bool { return true }, MaxPending: 2}
	defer ln.Close()
	const header = "PROXY TCP4 192.0.2.7 198.51.100.1 54321 8080\r\n"
	accept := func(first string) (client net.Conn, c *proxyproto.Conn) {
		t.Helper()
		client = dialFrom(t, "127.0.0.2", inner.Addr().String(), first)
		nc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return client, nc.(*proxyproto.Conn)
	}
	silent, oldest := accept("")
	_, read := accept(header)
	if err := read.ReadHeader(); err != nil { // its place freed
		t.Fatal(err)
	}
	_, closed := accept("")
	closed.Close() // its place freed
	_, second := accept("")
	_, third := accept(header) // the third pending: the oldest goes
	// Were it left open, its header would never come.
	_ = oldest.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := oldest.ReadHeader(); !errors.Is(err, proxyproto.ErrTooManyPending) {
		t.Fatalf("the oldest pending connection's header: %v, want ErrTooManyPending", err)
	}
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("the oldest pending connection is still open")
	}
	if err := third.ReadHeader(); err != nil {
		t.Errorf("the newest connection's header: %v", err)
	}
	second.Close()
}

// refusingListener starts a HeaderListener for the proxy 127.0.0.2 that
// must hand out no connection, until the test ends; it returns the
// listener under it, where the test connects, and what Failed is told.
func refusingListener(t *testing.T) (net.Listener, <-chan error) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 4)
	ln := &proxyproto.HeaderListener{
		Listener: inner,
		From:     func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.2") },
		Failed:   func(_ net.Addr, err error) { failed <- err },
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Errorf("accepted a connection from %s", c.RemoteAddr())
			c.Close()
		}
	}()
	return inner, failed
}

// A proxy's connection that ends before its first byte (a balancer's
// connect-only health check) sent no header, good or bad: it is closed
// without a word to Failed, while one that sent a byte and stopped is a
// header cut short, and reported.
func TestHeaderListenerConnectOnlyIsNoFailure(t *testing.T) {
	inner, failed := refusingListener(t)
	for _, tt := range []struct {
		name, first string
		want        error // what Failed is told; nil: nothing
	}{
		{"connect and close", "", nil},
		{"a byte and close", "P", io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.2", inner.Addr().String(), tt.first)
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			// The listener closes it after telling Failed, if it does.
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatal("the connection got an answer")
			}
			select {
			case err := <-failed:
				if tt.want == nil || !errors.Is(err, tt.want) {
					t.Errorf("Failed told %v, want %v", err, tt.want)
				}
			default:
				if tt.want != nil {
					t.Errorf("Failed told nothing, want %v", tt.want)
				}
			}
		})
	}
}

// A health check that ends with a reset before its first byte (HAProxy
// resets its checks' connections) sent no header either: Failed is not
// told. The listener reads each connection's header on a goroutine of
// its own, in the order they came; a header cut short sent after the
// reset is reported, and is the only failure.
func TestHeaderListenerResetBeforeAByteIsNoFailure(t *testing.T) {
	inner, failed := refusingListener(t)
	check := dialFrom(t, "127.0.0.2", inner.Addr().String(), "")
	if err := check.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	check.Close() // a reset
	cut := dialFrom(t, "127.0.0.2", inner.Addr().String(), "P")
	if err := cut.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := cut.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection got an answer")
	}
	if err := <-failed; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Failed told %v, want the header cut short alone", err)
	}
	select {
	case err := <-failed:
		t.Errorf("Failed told %v too, want the header cut short alone", err)
	default:
	}
}

// Read says a connection reset before its first byte sent nothing, as
// one closed before it.
func TestReadResetBeforeAByte(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	_, err := proxyproto.Read(bufio.NewReader(iotest.ErrReader(reset)))
	if !errors.Is(err, proxyproto.ErrNothingSent) || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("Read = %v, want ErrNothingSent and the reset", err)
	}
	_, err = proxyproto.Read(bufio.NewReader(iotest.DataErrReader(strings.NewReader("P"))))
	if errors.Is(err, proxyproto.ErrNothingSent) {
		t.Errorf("Read of a byte, then the end = %v, want a header cut short", err)
	}
}
