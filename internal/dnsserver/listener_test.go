package dnsserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
)

// tcpQuery asks one question on an open TCP connection.
func tcpQuery(c net.Conn, m *dns.Msg) (*dns.Msg, error) {
	co := &dns.Conn{Conn: c}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

// A client holding MaxTCPConns connections open does not get another: the
// next one is closed at once. Once one closes, a new one is served again.
func TestServerTCPConnLimit(t *testing.T) {
	s := startServer(t, newDir(manyNodes(1)...), func(c *Config) { c.MaxTCPConns = 2 })
	var held []net.Conn
	for i := range 2 {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := tcpQuery(c, query("chat.test.", dns.TypeA, 0)); err != nil {
			t.Fatalf("connection %d within the limit: %v", i, err)
		}
		held = append(held, c)
	}
	over, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if r, err := tcpQuery(over, query("chat.test.", dns.TypeA, 0)); err == nil {
		t.Fatalf("connection over the limit answered %v, want it closed", r)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("connection over the limit: %v, want it closed", err)
	}
	if got := s.Stats().TCPRefused; got != 1 {
		t.Errorf("Stats().TCPRefused = %d, want 1", got)
	}

	held[0].Close()
	// The server notices the close when its read returns: wait for that.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_, err = tcpQuery(c, query("chat.test.", dns.TypeA, 0))
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TCP answer after a held connection closed: %v", err)
		}
	}
}

// One host may hold MaxTCPConns/16 connections; another host is still
// served.
func TestServerTCPConnLimitPerHost(t *testing.T) {
	s := newServer(t, newDir(manyNodes(1)...), func(c *Config) { c.MaxTCPConns = 32 })
	s.exempt = nil // the test's clients are on loopback
	start(t, s)
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for i := range 2 {
		if _, err := tcpQuery(dial("127.0.0.1"), query("chat.test.", dns.TypeA, 0)); err != nil {
			t.Fatalf("connection %d of 127.0.0.1: %v", i, err)
		}
	}
	if r, err := tcpQuery(dial("127.0.0.1"), query("chat.test.", dns.TypeA, 0)); err == nil {
		t.Fatalf("a third connection of 127.0.0.1 answered %v, want it closed", r)
	}
	if _, err := tcpQuery(dial("127.0.0.2"), query("chat.test.", dns.TypeA, 0)); err != nil {
		t.Errorf("127.0.0.2 refused while 127.0.0.1 holds its share: %v", err)
	}
}

// addrConn is a connection that only has a remote address: enough for
// tcpListener.admit, which looks at nothing else.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }
func (c addrConn) Close() error         { return nil }

// admitFrom admits a fake connection from ip to l.
func admitFrom(l *tcpListener, ip string) (*limitedConn, string) {
	lc, reason, _ := l.admit(addrConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 5353}})
	return lc, reason
}

// One IPv6 /48 holds at most perSite times the per-host share over all its
// /64s, so that a site's 65,536 /64s cannot take every slot; another /48,
// and an IPv4 host, still get in, and a connection closed gives its /48's
// slot back.
func TestTCPListenerLimitPerSite(t *testing.T) {
	l := newTCPListener(nil, 256) // 16 per host, 64 per /48
	wantSite := perSite * l.maxPerHost
	var admitted []*limitedConn
	refused := map[string]int{}
	for sub := range 16 {
		for host := 1; host <= 16; host++ {
			lc, reason := admitFrom(l, fmt.Sprintf("2001:db8:1:%x::%x", sub, host))
			if lc == nil {
				refused[reason]++
				continue
			}
			admitted = append(admitted, lc)
		}
	}
	if len(admitted) != wantSite {
		t.Fatalf("one /48 over 16 /64s holds %d connections of %d, want %d (perSite × %d)", len(admitted), l.max, wantSite, l.maxPerHost)
	}
	if want := 256 - wantSite; refused[refusedPerSite] != want {
		t.Errorf("refusals %v, want %d %s", refused, want, refusedPerSite)
	}
	if lc, reason := admitFrom(l, "2001:db8:2::1"); lc == nil {
		t.Errorf("another /48 refused (%s) while 2001:db8:1::/48 holds its share", reason)
	}
	if lc, reason := admitFrom(l, "192.0.2.1"); lc == nil {
		t.Errorf("an IPv4 host refused (%s) while 2001:db8:1::/48 holds its share", reason)
	}
	// A /64 of the full /48 that holds nothing yet is refused for the /48.
	if lc, reason := admitFrom(l, "2001:db8:1:ffff::1"); lc != nil || reason != refusedPerSite {
		t.Errorf("a fresh /64 of the full /48: admitted %v, reason %q; want refused, %q", lc != nil, reason, refusedPerSite)
	}
	admitted[0].Close()
	if lc, reason := admitFrom(l, "2001:db8:1:ffff::1"); lc == nil {
		t.Errorf("the /48 still refused (%s) after one of its connections closed", reason)
	}
}

// failingListener fails every Accept with err, counting the calls.
type failingListener struct {
	t      *testing.T
	err    error
	calls  int
	closed chan struct{}
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls++
	if l.calls > 100 {
		l.t.Errorf("Accept called %d times without a pause", l.calls)
		return nil, net.ErrClosed
	}
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
		return nil, l.err
	}
}

func (l *failingListener) Close() error   { close(l.closed); return nil }
func (l *failingListener) Addr() net.Addr { return &net.TCPAddr{} }

// Out of file descriptors, Accept waits before trying again, longer each
// time up to a second, instead of spinning; Close ends the wait.
func TestTCPListenerBacksOff(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE} {
		t.Run(errno.Error(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fl := &failingListener{t: t, err: fmt.Errorf("accept tcp: %w", &net.OpError{Op: "accept", Err: errno}), closed: make(chan struct{})}
				l := newTCPListener(fl, 1)
				done := make(chan error)
				start := time.Now()
				go func() {
					_, err := l.Accept()
					done <- err
				}()
				time.Sleep(10 * time.Second)
				l.Close()
				err := <-done
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
				}
				// 5 ms doubling to 1 s, then 1 s each: about 17 calls in 10 s.
				if fl.calls < 5 || fl.calls > 25 {
					t.Errorf("%d Accept calls in %v, want about 17", fl.calls, time.Since(start))
				}
			})
		})
	}
}

// A TCP client that pipelines queries for large answers and never reads the
// replies does not hold its connection, and the server's goroutine, for
// ever: a reply that cannot be written within the write timeout closes the
// connection, and the slot serves someone else.
func TestServerTCPClientThatNeverReads(t *testing.T) {
	s := startServer(t, newDir(manyNodes(2000)...), func(c *Config) { c.MaxTCPConns = 1 })
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	stuck, err := d.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	// 128 SRV queries whose replies are 64 KiB each: 8 MiB, more than the
	// socket buffers hold.
	co := &dns.Conn{Conn: stuck}
	for range 128 {
		if err := co.WriteMsg(query("_switchboard._tcp.chat.test.", dns.TypeSRV, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// The slot comes free once the server gives up on the stuck client.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_, err = tcpQuery(c, query("chat.test.", dns.TypeSOA, 0))
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connection of a client that never reads still holds the only slot: %v", err)
		}
	}
	if got := s.Stats().TCPWriteFailed; got != 1 {
		t.Errorf("Stats().TCPWriteFailed = %d, want 1", got)
	}
}

// Queries pipelined on one TCP connection are each answered, in order.
func TestServerTCPPipelined(t *testing.T) {
	s := startServer(t, newDir(manyNodes(3)...))
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	co := &dns.Conn{Conn: c}
	names := []string{"chat.test.", "missing.chat.test.", "example.org.", "_switchboard._tcp.chat.test.", "n001.node.chat.test."}
	var ids []uint16
	for _, name := range names {
		q := query(name, dns.TypeA, 0)
		ids = append(ids, q.Id)
		if err := co.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
	}
	want := []int{dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeRefused, dns.RcodeSuccess, dns.RcodeSuccess}
	for i := range names {
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if r.Id != ids[i] || r.Rcode != want[i] {
			t.Errorf("reply %d: id %d rcode %s, want id %d rcode %s", i, r.Id, dns.RcodeToString[r.Rcode], ids[i], dns.RcodeToString[want[i]])
		}
	}
}
