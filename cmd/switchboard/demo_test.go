package main

import (
	"net"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// The bench the demo prints connects every client from 127.0.0.1, to
// nodes on 127.0.0.2 and up too: those must not hold it to the default
// --max-conns-per-ip.
func TestDemoNodeAdmitsTheBenchFromThisHost(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.Listen = "127.0.0.2:0"
		demoLimits(cfg)
	}})
	addr := c.Nodes[0].Addr()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 5 * time.Second}
	for i := range node.DefaultConfig().MaxConnsPerIP + 1 {
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := conn.Write([]byte("{\"op\":\"hello\",\"v\":1}\n{\"op\":\"ping\"}\n")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		lr := wire.NewLineReader(conn, 0)
		for {
			line, err := lr.Next()
			if err != nil {
				t.Fatalf("connection %d: %v", i+1, err)
			}
			m, err := wire.Decode(line)
			if err != nil {
				t.Fatalf("connection %d: decoding %q: %v", i+1, line, err)
			}
			if m.Op == wire.OpPong {
				break
			}
			if m.Op == wire.OpError {
				t.Fatalf("connection %d from 127.0.0.1 to %s refused: %s %s", i+1, addr, m.Code, m.Message)
			}
		}
	}
}
