package client_test

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
)

// blackHole returns a loopback address where TCP connection attempts go
// unanswered, as to a host that is gone or behind a firewall that drops
// them: a listening socket with an accept queue of one, never accepted,
// filled by one connection. Linux drops the SYNs a full accept queue
// gets, and the connecting side sends them again until its deadline.
func blackHole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the queue: connections complete until it is full, then one
	// does not (the black hole holds).
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		cancel()
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
}

// The connections of a bootstrap's hellos are staggered: a node of the
// last directory whose address drops connection attempts (its host
// gone, a black hole) holds up the next hello by the hello stagger, not
// by the attempt timeout. The session is on a, the common address; a
// goes. Its directory listed p up (never picked here) and b starting:
// with nothing to pick from it, the session asks the common address
// (refused), then p, whose connection never comes for as long as the
// test lasts, and, without waiting for p, b, which answers.
// (TestReconnectTimeoutBoundsOnePass: a node whose connection is made
// and that answers nothing is given its attempt timeout.)
func TestBlackHoleHoldsUpTheNextHelloByTheStagger(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	hole := blackHole(t)
	a.setDirectory(func() []directory.Node {
		starting := b.entry()
		starting.Status = directory.Starting // not picked; asked for a directory
		return []directory.Node{a.entry(), {ID: "p", Addr: hole, Status: directory.Up, Capacity: 100}, starting}
	})
	reattachedAfterStop(t, a, "b", client.WithUser("alice"), client.WithPolicy(preferring("a", "b")),
		client.WithRetry(fastRetry()), client.WithAttemptTimeout(time.Hour), client.WithHelloStagger(10*time.Millisecond))
}
