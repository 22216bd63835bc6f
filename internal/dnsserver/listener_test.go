package dnsserver

import (
	"errors"
	"fmt"
	"io"
	"maps"
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

// One site, an IPv6 /48 or an IPv4 /24, holds at most perSite times the
// per-host share over all its hosts, so that 16 hosts of one site cannot
// take every slot; another site, and a host of the other family, still get
// in, and a connection closed gives its site's slot back.
func TestTCPListenerLimitPerSite(t *testing.T) {
	tests := []struct {
		name  string
		from  func(i int) string // the address of the i-th of 256 connections
		fresh string             // a host of the full site that holds nothing yet
		other []string           // hosts outside the site
	}{
		{"IPv6 /48, one connection from each of 256 /64s",
			func(i int) string { return fmt.Sprintf("2001:db8:1:%x::%x", i/16, i%16+1) },
			"2001:db8:1:ffff::1", []string{"2001:db8:2::1", "192.0.2.1"}},
		{"IPv4 /24, 16 connections from each of 16 addresses",
			func(i int) string { return fmt.Sprintf("198.51.100.%d", i/16+1) },
			"198.51.100.200", []string{"198.51.101.1", "203.0.113.53", "2001:db8::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTCPListener(nil, 256) // 16 per host, 64 per site
			wantSite := perSite * l.maxPerHost
			var admitted []*limitedConn
			refused := map[string]int{}
			for i := range 256 {
				lc, reason := admitFrom(l, tt.from(i))
				if lc == nil {
					refused[reason]++
					continue
				}
				admitted = append(admitted, lc)
			}
			if len(admitted) != wantSite {
				t.Fatalf("one site holds %d connections of %d, want %d (perSite × %d)", len(admitted), l.max, wantSite, l.maxPerHost)
			}
			if want := map[string]int{refusedPerSite: 256 - wantSite}; !maps.Equal(refused, want) {
				t.Errorf("refusals %v, want %v", refused, want)
			}
			for _, ip := range tt.other {
				if lc, reason := admitFrom(l, ip); lc == nil {
					t.Errorf("%s refused (%s) while the site holds its share", ip, reason)
				}
			}
			if lc, reason := admitFrom(l, tt.fresh); lc != nil || reason != refusedPerSite {
				t.Errorf("a fresh host of the full site: admitted %v, reason %q; want refused, %q", lc != nil, reason, refusedPerSite)
			}
			admitted[0].Close()
			if lc, reason := admitFrom(l, tt.fresh); lc == nil {
				t.Errorf("the site still refused (%s) after one of its connections closed", reason)
			}
		})
	}
	// Loopback is exempt from both the host and the site bounds.
	l := newTCPListener(nil, 256)
	for i := range 100 {
		if lc, reason := admitFrom(l, "127.0.0.1"); lc == nil {
			t.Fatalf("loopback connection %d refused (%s)", i, reason)
		}
	}
}

// A connection accepted while more than half of the slots are taken, its
// own included, gets the short idle timeout (RFC 7766 section 6.2.3); the
// server asks the listener for each connection it serves.
func TestTCPListenerShortIdleWhenBusy(t *testing.T) {
	l := newTCPListener(nil, 16) // one per host, four per site
	var open []*limitedConn
	for i := 1; i <= 16; i++ {
		lc, reason := admitFrom(l, fmt.Sprintf("10.0.%d.1", i))
		if lc == nil {
			t.Fatalf("connection %d refused (%s)", i, reason)
		}
		open = append(open, lc)
		want := tcpIdleTimeout
		if i > 8 {
			want = tcpIdleTimeoutBusy
		}
		if got := l.idleTimeout(); got != want {
			t.Errorf("with %d of 16 open: idle timeout %v, want %v", i, got, want)
		}
	}
	for _, lc := range open[8:] {
		lc.Close()
	}
	if got := l.idleTimeout(); got != tcpIdleTimeout {
		t.Errorf("with 8 of 16 open again: idle timeout %v, want %v", got, tcpIdleTimeout)
	}

	// The running server takes its idle timeout from its listener.
	s := startServer(t, newDir(manyNodes(1)...), func(c *Config) { c.MaxTCPConns = 2 })
	var srv *dns.Server
	for _, lp := range s.loops {
		if lp.network == "tcp" {
			srv = lp.srv
		}
	}
	if srv.IdleTimeout == nil {
		t.Fatal("the TCP server has miekg/dns's fixed idle timeout")
	}
	if got := srv.IdleTimeout(); got != tcpIdleTimeout {
		t.Errorf("idle timeout with no connection open: %v, want %v", got, tcpIdleTimeout)
	}
	var busy []*limitedConn
	for _, ip := range []string{"192.0.2.1", "198.51.100.1"} {
		lc, reason := admitFrom(srv.Listener.(*tcpListener), ip)
		if lc == nil {
			t.Fatalf("connection from %s refused (%s)", ip, reason)
		}
		busy = append(busy, lc)
	}
	got := srv.IdleTimeout()
	for _, lc := range busy {
		lc.Close() // before Shutdown: they have no socket to stop
	}
	if got != tcpIdleTimeoutBusy {
		t.Errorf("idle timeout with 2 of 2 open: %v, want %v", got, tcpIdleTimeoutBusy)
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
