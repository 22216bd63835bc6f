package node_test

import (
	"log"
	"log/slog"
	"net"
	"os"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// TestHTTPConnectionErrorsGoToTheNodesLog: what net/http says about a
// connection to the HTTP listener (here: plain bytes where TLS was due)
// goes to the node's own log, sampled, not to the process's standard
// logger, where a stranger could write one unstructured line per
// connection.
func TestHTTPConnectionErrorsGoToTheNodesLog(t *testing.T) {
	var std nodetest.LockedBuffer
	log.SetOutput(&std)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	sec := newSecrets(t, "httplog.test")
	logs := &logLines{}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		sec.configure(i, cfg)
		cfg.HTTPTLS = true
		cfg.Logger = slog.New(logs)
	}})
	for range 5 {
		conn, err := net.Dial("tcp", c.Nodes[0].HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write([]byte("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"))
		_, _ = conn.Read(make([]byte, 1)) // the node closes it
		_ = conn.Close()
	}
	waitFor(t, "line about the failed handshakes in the node's log", func() bool {
		return logs.saw("HTTP listener: a connection failed") == nil
	})
	if s := std.String(); s != "" {
		t.Errorf("the standard logger got %q, want nothing", s)
	}
}
