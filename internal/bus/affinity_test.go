package bus

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// serverOrder draws one order of the URLs given and keeps each URL whole.
func TestServerOrder(t *testing.T) {
	reverse := func(n int, swap func(i, j int)) {
		for i := range n / 2 {
			swap(i, n-1-i)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"nats://a:4222", "nats://a:4222"},
		{"nats://u:p@a:4222,tls://b:4222,nats://c:4222", "nats://c:4222,tls://b:4222,nats://u:p@a:4222"},
	} {
		if got := serverOrder(tt.in, reverse); got != tt.want {
			t.Errorf("serverOrder(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Every connection of one node to a bus of several servers is on one
// server, and moves to one next server when that one goes: a node shares
// its server's fate (serverOrder). Drawn per connection, as nats.go does
// by default, six connections over three servers land on one server
// once in 243 tries. One that moved alone is brought back by Regroup.
func TestNodeConnectionsShareAServer(t *testing.T) {
	var servers []*server.Server
	var urls []string
	for range 3 {
		s := runNATS(t, &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
		servers = append(servers, s)
		urls = append(urls, s.ClientURL())
	}
	b := openBus(t, Config{Name: "n1", External: strings.Join(urls, ",")})
	conns := []*nats.Conn{b.Conn, b.Dir}
	for i := range 4 {
		nc, err := b.Connect(fmt.Sprintf("n1-rooms-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		conns = append(conns, nc)
	}
	on := func() ([]string, error) {
		var at []string
		for i, nc := range conns {
			if !nc.IsConnected() {
				return nil, fmt.Errorf("connection %d not connected", i)
			}
			at = append(at, nc.ConnectedUrl())
		}
		if len(slices.Compact(slices.Clone(at))) != 1 {
			return at, fmt.Errorf("the node's connections are on %v, want one server", at)
		}
		return at, nil
	}
	first, err := on()
	if err != nil {
		t.Fatal(err)
	}
	// awaitOneServer waits until the connections are on one server that
	// is not not ("": any), calling poke first each time.
	awaitOneServer := func(what string, poke func(), not string) {
		t.Helper()
		waitWithin(t, 30*time.Second, what, func() error {
			poke()
			at, err := on()
			if err == nil && at[0] == not {
				err = fmt.Errorf("the node's connections are still on %s", not)
			}
			return err
		})
	}

	// One connection moves alone (as after a write that timed out): it
	// is on another server, and Regroup brings it back to the others.
	if err := conns[3].ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	awaitOneServer("a connection moved alone, and Regroup", func() {
		if conns[3].IsConnected() && conns[3].ConnectedUrl() != first[0] {
			b.Regroup(conns)
		}
	}, "")

	// The server goes: every connection moves to one next server.
	i := slices.Index(urls, first[0])
	servers[i].Shutdown()
	servers[i].WaitForShutdown()
	awaitOneServer(first[0]+" went", func() {}, first[0])
}
