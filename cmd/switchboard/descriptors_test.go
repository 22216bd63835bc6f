//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// tableLimit is the descriptor limit of TestFloodLeavesStorageItsDescriptors'
// node: serve's default --max-conns is then 1,024, and 1,024 more are held
// back for storage and peers.
const tableLimit = 2048

// startLimited starts the nodes cfg describes (with serve's default
// connection limits) with a descriptor table of tableLimit each: sh sets
// the soft and hard limits, so Go's raise of the soft one changes
// nothing. Their logs go to the buffer returned, printed if the test
// fails.
func startLimited(ctx context.Context, t *testing.T, cfg localcluster.Config) (*localcluster.Cluster, *nodetest.LockedBuffer) {
	t.Helper()
	wrapper := filepath.Join(t.TempDir(), "switchboard-limited")
	script := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 97\nexec %q \"$@\"\n", tableLimit, binary)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Binary, cfg.ServeLimits = wrapper, true
	c, logs := startLogged(ctx, t, cfg)
	for _, n := range c.Nodes {
		if _, limit, err := n.OpenFiles(); err != nil {
			t.Fatal(err)
		} else if limit != tableLimit {
			t.Fatalf("%s's descriptor limit is %d, want %d", n.ID, limit, tableLimit)
		}
	}
	return c, logs
}

// newcomerAfterFlood is bob, attached to n once a flood has left. The
// node frees the flood's slots as it reads each close, so a newcomer may
// be refused for a moment, and tries again as clients do. Closed when
// the test ends.
func newcomerAfterFlood(ctx context.Context, t *testing.T, n *localcluster.Node) *client.Session {
	t.Helper()
	var bob *client.Session
	err := localcluster.Await(ctx, settle, func(ctx context.Context) error {
		s, err := client.Dial(ctx, n.Addr, client.WithUser("bob"))
		bob = s
		return err
	})
	if err != nil {
		t.Fatalf("a newcomer after the flood: %v", err)
	}
	t.Cleanup(func() { bob.Close() })
	return bob
}

// checkReady fails the test unless n's readiness probe answers 200
// within settle (when says when, for the message).
func checkReady(t *testing.T, n *localcluster.Node, when string) {
	t.Helper()
	hc := http.Client{Timeout: settle}
	err := localcluster.Await(context.Background(), settle, func(context.Context) error {
		resp, err := hc.Get("http://" + n.HTTP + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	if err != nil {
		t.Errorf("the readiness probe %s: %v", when, err)
	}
}

// TestFloodLeavesStorageItsDescriptors fills a node's client listener
// from many addresses, as strangers would, on a node whose real
// descriptor table is small: sessions that say hello and never attach,
// past the node's total. The connections past it are refused with
// too_many_connections, and the descriptors held back stay free, so the
// session attached before the flood still joins a new room and has its
// text stored and acknowledged, the readiness probe answers, and
// nothing logs "too many open files".
// Once the flood leaves, a newcomer attaches and reads that text.
// (security.md, "Connections and their limits"; faults.md.)
func TestFloodLeavesStorageItsDescriptors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, logs := startLimited(ctx, t, localcluster.Config{Nodes: 1, Standalone: true, Service: "flood.test",
		// The flood's sessions stay however long its dials take.
		Args: []string{"--attach-timeout", "10m"}})
	n := c.Nodes[0]

	ann, err := client.Dial(ctx, n.Addr, client.WithUser("ann"))
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	if _, err := ann.JoinWait(ctx, "before"); err != nil {
		t.Fatal(err)
	}

	// The flood: 1,300 connections from 10 addresses (the per-address
	// limit is 256), each saying hello and reading the answer, until the
	// node's total is reached and passed.
	var flood []net.Conn
	defer func() {
		for _, conn := range flood {
			conn.Close()
		}
	}()
	admitted, refused := 0, 0
	for i := range 1300 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i%10))}}
		conn, err := d.DialContext(ctx, "tcp", n.Addr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		flood = append(flood, conn)
		if _, err := io.WriteString(conn, `{"op":"hello","v":1}`+"\n"); err != nil {
			t.Fatalf("flood connection %d: saying hello: %v", i, err)
		}
		if err := conn.SetReadDeadline(time.Now().Add(settle)); err != nil {
			t.Fatal(err)
		}
		line, err := wire.NewLineReader(conn, 0).Next()
		if err != nil {
			// Past 128 refusals at once the node closes without the line.
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("flood connection %d: reading the answer to hello: %v", i, err)
			}
			refused++
			continue
		}
		m, err := wire.Decode(line)
		switch {
		case err != nil:
			t.Fatalf("flood connection %d: %v", i, err)
		case m.Op == wire.OpDirectory:
			admitted++
		case m.Op == wire.OpError && m.Code == wire.CodeTooManyConns:
			refused++
		default:
			t.Fatalf("flood connection %d: the answer to hello was %s", i, line)
		}
	}
	t.Logf("flood: %d admitted, %d refused", admitted, refused)
	if refused == 0 || admitted >= tableLimit/2 {
		t.Fatalf("%d flood connections admitted and %d refused: want the node's total (1,024, ann's session included) to hold", admitted, refused)
	}

	// Storage still opens what it needs: a new room, text stored.
	if _, err := ann.JoinWait(ctx, "during"); err != nil {
		t.Fatalf("joining a new room during the flood: %v", err)
	}
	for _, room := range []string{"before", "during"} {
		if _, err := ann.SendTextWait(ctx, room, "stored in "+room+"\n"); err != nil {
			t.Fatalf("text in %s during the flood: %v", room, err)
		}
	}
	// And the operators' probe still gets in (the HTTP listener's
	// descriptors come from those held back too).
	checkReady(t, n, "during the flood")
	open, limit, err := n.OpenFiles()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the node holds %d of its %d descriptors", open, limit)
	if limit-open < 512 {
		t.Errorf("the node holds %d of its %d descriptors: fewer than 512 left for storage and peers", open, limit)
	}

	for _, conn := range flood {
		conn.Close()
	}
	flood = nil
	bob := newcomerAfterFlood(ctx, t, n)
	st, err := bob.JoinWait(ctx, "during")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Lines) != 1 || st.Lines[0].Text != "stored in during" {
		t.Errorf("the newcomer's state of the room: %+v; want ann's line", st.Lines)
	}
	if strings.Contains(strings.ToLower(logs.String()), "too many open files") {
		t.Errorf("the node ran out of descriptors")
	}
}
