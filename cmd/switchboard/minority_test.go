package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// A node that cannot see a majority steps aside, and comes back by itself:
// with two of three node processes stopped (SIGSTOP: they keep their
// sockets, as a partition would), the third reports degraded in its
// directory and /readyz 503, refuses new attaches with a fresh directory,
// and tells the session it has to attach elsewhere (shutdown). When the
// two resume it is up again and admits sessions.
func TestMinorityStepsAside(t *testing.T) {
	c := startCluster(t, 3)
	n1 := c.Nodes[0]
	ctx := context.Background()

	held, err := client.DialConn(ctx, nil, n1.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.Hello(ctx, "test/1", ""); err != nil {
		t.Fatal(err)
	}
	if err := held.Send(wire.Message{Op: wire.OpAttach, User: "held"}); err != nil {
		t.Fatal(err)
	}
	if m := recvOp(t, held, wire.OpAttached, wire.OpError); m.Op != wire.OpAttached {
		t.Fatalf("attach before the partition: %+v", m)
	}

	for _, i := range []int{1, 2} {
		if err := c.Pause(i); err != nil {
			t.Fatal(err)
		}
	}
	resumed := false
	resume := func() {
		if resumed {
			return
		}
		resumed = true
		for _, i := range []int{1, 2} {
			if err := c.Resume(i); err != nil {
				t.Error(err)
			}
		}
	}
	defer resume()

	await(t, 2*settle, func(ctx context.Context) error {
		if st, err := n1.Status(ctx, "n1"); err != nil || st != directory.Degraded {
			return fmt.Errorf("n1 says it is %q (%v), want degraded", st, err)
		}
		if code := readyz(ctx, n1.HTTP); code != http.StatusServiceUnavailable {
			return fmt.Errorf("n1's /readyz answers %d, want 503", code)
		}
		return nil
	})

	// A newcomer is refused with a directory to pick from.
	conn, err := client.DialConn(ctx, nil, n1.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Hello(ctx, "test/1", ""); err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(wire.Message{Op: wire.OpAttach, User: "late"}); err != nil {
		t.Fatal(err)
	}
	m := recvOp(t, conn, wire.OpAttached, wire.OpError)
	if m.Op != wire.OpError || m.Code != wire.CodeDraining || !strings.Contains(m.Message, "degraded") || m.Dir == nil {
		t.Errorf("attach on a degraded node: %+v, want draining (degraded) with a directory", m)
	}

	// The session it had is told to attach elsewhere.
	if m := recvOp(t, held, wire.OpError); m.Code != wire.CodeShutdown {
		t.Errorf("the held session got %+v, want shutdown", m)
	}

	resume()
	await(t, 2*settle, func(ctx context.Context) error {
		if st, err := n1.Status(ctx, "n1"); err != nil || st != directory.Up {
			return fmt.Errorf("n1 says it is %q (%v) after the others resumed, want up", st, err)
		}
		return nil
	})
	again, err := client.DialConn(ctx, nil, n1.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, err := again.Hello(ctx, "test/1", ""); err != nil {
		t.Fatal(err)
	}
	if err := again.Send(wire.Message{Op: wire.OpAttach, User: "back"}); err != nil {
		t.Fatal(err)
	}
	if m := recvOp(t, again, wire.OpAttached, wire.OpError); m.Op != wire.OpAttached {
		t.Errorf("attach after healing: %+v", m)
	}
}

// recvOp returns the first message of one of ops, within settle.
func recvOp(t *testing.T, c *client.Conn, ops ...string) wire.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*settle)
	defer cancel()
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("awaiting %v: %v", ops, err)
		}
		for _, op := range ops {
			if m.Op == op {
				return m
			}
		}
	}
}

// readyz is the status code of http://addr/readyz, or 0.
func readyz(ctx context.Context, addr string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
