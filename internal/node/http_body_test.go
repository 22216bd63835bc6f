package node_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A request that declares a body and never sends it does not hold its
// HTTP connection for good. The HTTP listener serves at most
// node.MaxHTTPConns connections, for every client at once; before the
// body had a deadline, a stranger holding that many such requests (a
// one-time cost: nothing to resend) left /healthz, /readyz, /metrics and
// the drain unreachable until the node restarted. The server now gives up
// on the body after httpBodyTimeout, answers, and closes the connection.
func TestHTTPBodyHasADeadline(t *testing.T) {
	defer node.SetHTTPBodyTimeout(100 * time.Millisecond)()
	c := nodetest.Start(t, 1, nodetest.Options{})
	n := c.Nodes[0]
	for _, req := range []string{
		// A read-only endpoint, with a body the server reads before it answers.
		"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx",
		// Chunked: no length announced, one byte sent.
		"POST /v1/directory HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx",
	} {
		conn, err := net.Dial("tcp", n.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		// A guard against a hang, far longer than the deadline under test:
		// the assertion is that the node closes the connection, not when.
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: no answer: %v", firstLine(req), err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		// Then the end of the connection: ReadAll stops at EOF, and only
		// there, without an error.
		if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
			t.Errorf("%q: the node kept the connection open while the body never came (read %q: %v)", firstLine(req), rest, err)
		}
	}
	// An ordinary request on a fresh connection is served as before.
	resp, err := http.Get("http://" + n.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz = %d", resp.StatusCode)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
