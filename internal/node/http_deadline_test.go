package node_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A client that asks for a response and reads none of it does not hold
// its HTTP connection for good. Such a connection is busy serving a
// request, so the listener never closes it to make room; before responses
// had a write deadline, node.MaxHTTPConns of them from a few addresses
// shut everyone else out. The handler's write now fails once
// httpWriteTimeout has passed, and the connection goes.
func TestHTTPResponseHasADeadline(t *testing.T) {
	defer node.SetHTTPWriteTimeout(200 * time.Millisecond)()
	c := nodetest.Start(t, 1, nodetest.Options{})
	n := c.Nodes[0]
	wrote := make(chan error, 1)
	n.HandleHTTP("GET /test/flood", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
	}))
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /test/flood HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing. A guard against a hang, far longer than
	// the deadline under test: the assertion is that the write fails.
	select {
	case err := <-wrote:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the response to a client reading nothing ended with %v, want its deadline passed", err)
		}
	case <-time.After(settle):
		t.Fatalf("the response to a client reading nothing still being written after %v", settle)
	}
}
