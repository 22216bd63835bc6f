package node_test

import (
	"net"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// TestHTTPOnAllInterfacesIsAdvertisedReachably: a node whose HTTP
// listener is bound to every interface lists, in its directory entry, the
// host its clients reach it by with the HTTP port, not "[::]:PORT",
// which no browser can dial; --advertise-http overrides it.
func TestHTTPOnAllInterfacesIsAdvertisedReachably(t *testing.T) {
	c := nodetest.Start(t, 2, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.HTTP = "0.0.0.0:0"
		if i == 1 {
			cfg.AdvertiseHTTP = "chat-2.example.net:7171"
		}
	}})
	c.WaitAllUp(settle)
	n1 := c.Nodes[0]
	_, port, err := net.SplitHostPort(n1.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"n1": net.JoinHostPort("127.0.0.1", port), "n2": "chat-2.example.net:7171"}
	seen := 0
	for _, e := range n1.Directory().Nodes {
		seen++
		if e.HTTP != want[e.ID] {
			t.Errorf("n1's directory lists %s at HTTP %q, want %q", e.ID, e.HTTP, want[e.ID])
		}
	}
	if seen != len(want) {
		t.Errorf("n1's directory lists %d nodes, want %d", seen, len(want))
	}
	if got := n1.AdvertisedHTTP(); got != want["n1"] {
		t.Errorf("n1.AdvertisedHTTP() = %q, want %q", got, want["n1"])
	}
}
