package proxyproto_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
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

// With MaxPending headers being read, the next proxy connection is
// closed at once and reported, and a direct connection still comes
// through: a full allowance holds up no one else.
func TestHeaderListenerFull(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 2)
	ln := &proxyproto.HeaderListener{
		Listener:   inner,
		From:       func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.2") },
		Timeout:    time.Hour,
		MaxPending: 1,
		Failed:     func(_ net.Addr, err error) { failed <- err },
	}
	defer ln.Close()
	dial := func(from string) net.Conn { return dialFrom(t, from, inner.Addr().String(), "") }
	dial("127.0.0.2") // takes the one slot, sends nothing
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	// The second proxy connection: the accept loop reaches it only after
	// the first took the slot (connections are accepted in order).
	second := dial("127.0.0.2")
	if err := <-failed; !errors.Is(err, proxyproto.ErrTooManyPending) {
		t.Fatalf("the second proxy connection failed with %v, want ErrTooManyPending", err)
	}
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Error("the second proxy connection is still open")
	}
	dial("127.0.0.3")
	c := <-accepted
	defer c.Close()
	if got := c.RemoteAddr().String(); !strings.HasPrefix(got, "127.0.0.3:") {
		t.Errorf("accepted %s, want the direct connection from 127.0.0.3", got)
	}
}
