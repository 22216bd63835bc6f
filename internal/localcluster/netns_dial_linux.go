package localcluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialContext connects to addr from inside node i's namespace, as a
// process running there would: the node's own loopback listeners (its
// embedded NATS's client port) are reachable only so. The socket is made
// on a thread moved into the namespace, which exits with it; the
// connection then works from any goroutine.
func (n *Net) DialContext(ctx context.Context, i int, network, addr string) (net.Conn, error) {
	type dialed struct {
		conn net.Conn
		err  error
	}
	done := make(chan dialed, 1)
	go func() {
		// Never unlocked: the goroutine's end ends the thread, which
		// must not go back to the runtime in another namespace.
		runtime.LockOSThread()
		ns, err := os.Open("/var/run/netns/" + n.NS(i))
		if err != nil {
			done <- dialed{err: fmt.Errorf("localcluster: opening namespace %s: %w", n.NS(i), err)}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- dialed{err: fmt.Errorf("localcluster: entering namespace %s: %w", n.NS(i), err)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		done <- dialed{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}
