package node_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// proxyDialer dials from the proxy's address and sends header before
// anything else, as a TCP load balancer does.
type proxyDialer struct {
	from   string
	header func(local net.Addr) string // the header for the connection, given its own address
}

func (d proxyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := dialerFrom(d.from).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(c, d.header(c.LocalAddr())); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// v1For returns the version 1 header of a client at client:port dialling
// the node at addr.
func v1For(client, addr string) func(net.Addr) string {
	return func(local net.Addr) string {
		host, port, _ := net.SplitHostPort(addr)
		_, cport, _ := net.SplitHostPort(local.String())
		return fmt.Sprintf("PROXY TCP4 %s %s %s %s\r\n", client, host, cport, port)
	}
}

// balancer is the address the tests' TCP load balancer connects from.
const balancer = "127.0.0.2"

// startBehindBalancer starts a node that takes PROXY protocol headers
// from balancer, configured further by more.
func startBehindBalancer(t *testing.T, more func(*node.Config)) *node.Node {
	t.Helper()
	proxies, err := forwarded.Parse(balancer)
	if err != nil {
		t.Fatal(err)
	}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.ProxyProtocolFrom = proxies
		more(cfg)
	}})
	return c.Nodes[0]
}

// viaProxy opens a raw connection from the balancer whose first bytes
// are header.
func viaProxy(t *testing.T, addr string, header func(net.Addr) string) *rawConn {
	t.Helper()
	rc := dialFrom(t, balancer, addr)
	if _, err := io.WriteString(rc.conn, header(rc.conn.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	return rc
}

// A TCP load balancer listed in ProxyProtocolFrom sends a PROXY protocol
// header before each client's bytes: the node counts each client against
// MaxConnsPerIP as the address the header names, not as the balancer
// (which carries more than the limit), and a health check of the
// balancer's own (LOCAL) is not counted per address. A connection from
// the balancer without a header is closed unanswered and counted; a
// header from anyone else is not believed (it is a bad line like any
// other), so nobody can claim another's address with one.
func TestPROXYProtocolClients(t *testing.T) {
	n := startBehindBalancer(t, func(cfg *node.Config) { cfg.MaxConnsPerIP = 2 })
	addr := n.Addr()

	// Two clients at 192.0.2.7, the most one address may hold; a third
	// is refused, while 192.0.2.8 through the same balancer is served.
	var ann []*rawConn
	for range 2 {
		rc := viaProxy(t, addr, v1For("192.0.2.7", addr))
		rc.hello()
		ann = append(ann, rc)
	}
	over := viaProxy(t, addr, v1For("192.0.2.7", addr))
	over.send(`{"op":"hello","v":1}`)
	over.closedWith(wire.CodeTooManyConns)
	viaProxy(t, addr, v1For("192.0.2.8", addr)).hello()

	// The balancer's health checks (version 2 LOCAL) are the balancer's
	// own: not counted per address, however many.
	local := func(net.Addr) string { return "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00" }
	for range 3 {
		viaProxy(t, addr, local).hello()
	}

	// From the balancer without a header: closed, unanswered.
	bare := dialFrom(t, balancer, addr)
	bare.send(`{"op":"hello","v":1}`)
	if m, err := bare.next(); err == nil {
		t.Fatalf("a connection from the balancer without a header got %+v", m)
	}
	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "proxy_header"); got != 1 {
		t.Errorf("refused proxy_header = %v, want 1", got)
	}

	// From elsewhere, a header claiming the full 192.0.2.7 is a bad line:
	// the connection is served as its own address.
	spoof := dialFrom(t, "127.0.0.3", addr)
	if _, err := io.WriteString(spoof.conn, v1For("192.0.2.7", addr)(spoof.conn.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	if m, err := spoof.next(); err != nil || m.Op != wire.OpError || m.Code != wire.CodeBadJSON {
		t.Fatalf("a header from a host not listed: got %+v, %v; want error %s", m, err, wire.CodeBadJSON)
	}
	spoof.hello()

	// One of 192.0.2.7's connections closed frees its place.
	ann[0].conn.Close()
	waitFor(t, "192.0.2.7's place freed", func() bool {
		rc := viaProxy(t, addr, v1For("192.0.2.7", addr))
		rc.send(`{"op":"hello","v":1}`)
		rc.send(`{"op":"ping"}`)
		m, err := rc.next()
		rc.conn.Close()
		return err == nil && m.Op == wire.OpPong
	})
}

// The header comes before TLS: the balancer passes the client's TLS
// through, and the client attaches over it as over a direct connection.
func TestPROXYProtocolUnderTLS(t *testing.T) {
	sec := newSecrets(t, "proxy.test")
	n := startBehindBalancer(t, func(cfg *node.Config) {
		cfg.Service = sec.service
		cfg.TLSCert, cfg.TLSKey = sec.cert, sec.key
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := client.DialConnTLS(ctx, proxyDialer{from: balancer, header: v1For("192.0.2.7", n.Addr())}, n.Addr(), &tls.Config{RootCAs: sec.caPool, ServerName: sec.service})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if m := attach(t, conn, "ann"); m.User != "ann" {
		t.Errorf("attached as %q", m.User)
	}
}

// A balancer's header trickled past the hello deadline is a header that
// did not come: the connection is closed unanswered and counted, and
// holds nothing after.
func TestPROXYProtocolHeaderDeadline(t *testing.T) {
	n := startBehindBalancer(t, func(cfg *node.Config) { cfg.HelloTimeout = 500 * time.Millisecond })
	rc := dialFrom(t, balancer, n.Addr())
	if _, err := io.WriteString(rc.conn, "PROXY TCP4 192.0.2.7 "); err != nil {
		t.Fatal(err)
	}
	if m, err := rc.next(); err == nil {
		t.Fatalf("a connection whose header stalled got %+v", m)
	}
	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "proxy_header"); got != 1 {
		t.Errorf("refused proxy_header = %v, want 1", got)
	}
	waitFor(t, "no connection open", func() bool { return labelled(t, n, "switchboard_connections", "", "") == 0 })
}

// The balancer in front of the HTTP listener too: WebSockets through it
// count against MaxConnsPerIP as the clients its headers name, and a
// connection of its without a header is closed and counted.
func TestPROXYProtocolWebSockets(t *testing.T) {
	n := startBehindBalancer(t, func(cfg *node.Config) { cfg.MaxConnsPerIP = 1 })
	httpAddr := n.HTTPAddr()
	as := func(client string) proxyDialer { return proxyDialer{from: balancer, header: v1For(client, httpAddr)} }
	for _, client := range []string{"192.0.2.7", "192.0.2.8"} {
		if m := wsVia(t, as(client), client, httpAddr, nil); m.Op != wire.OpPong {
			t.Errorf("%s through the balancer: got %+v, want pong", client, m)
		}
	}
	if m := wsVia(t, as("192.0.2.7"), "192.0.2.7", httpAddr, nil); m.Code != wire.CodeTooManyConns {
		t.Errorf("a second WebSocket of 192.0.2.7 through the balancer: got %+v, want too_many_connections", m)
	}

	hc := &http.Client{Transport: &http.Transport{DialContext: dialerFrom(balancer).DialContext}}
	if resp, err := hc.Get("http://" + httpAddr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a request from the balancer without a header: %s", resp.Status)
	}
	waitFor(t, "the headerless connection counted", func() bool {
		return labelled(t, n, "switchboard_connections_refused_total", "reason", "proxy_header") == 1
	})
	if resp, err := (&http.Client{Transport: &http.Transport{DialContext: as("192.0.2.9").DialContext}}).Get("http://" + httpAddr + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a request through the balancer: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// A balancer connection still waiting for its header when the node shuts
// down is the node's own close, not a header that failed: not counted.
func TestPROXYProtocolShutdownIsNoHeaderFailure(t *testing.T) {
	n := startBehindBalancer(t, func(*node.Config) {})
	rc := dialFrom(t, balancer, n.Addr())
	waitFor(t, "the connection open", func() bool { return labelled(t, n, "switchboard_connections", "", "") == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The node may say it is shutting down first, as to any session.
	for {
		m, err := rc.next()
		if err != nil {
			break
		}
		if m.Op != wire.OpError || m.Code != wire.CodeShutdown {
			t.Fatalf("after the shutdown: %+v", m)
		}
	}
	if got := labelled(t, n, "switchboard_connections_refused_total", "reason", "proxy_header"); got != 0 {
		t.Errorf("refused proxy_header = %v after a shutdown, want 0", got)
	}
}
