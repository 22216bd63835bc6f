package resolve_test

import (
	"context"
	"fmt"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/dnsserver"
	"github.com/switchboard/switchboard/resolve"
)

// Ask a Switchboard DNS responder for the servers of chat.example.
func ExampleLookup() {
	// A responder over a one-server directory, on a free loopback port.
	nodes := []directory.Node{{ID: "n1", Addr: "127.0.0.1:7070", Status: directory.Up, Capacity: 100}}
	cfg := dnsserver.DefaultConfig("chat.example", func() []directory.Node { return nodes })
	cfg.Addr = "127.0.0.1:0"
	srv, err := dnsserver.New(cfg)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Shutdown(ctx)

	addrs, err := resolve.Lookup(ctx, resolve.Config{Resolver: srv.Addr(), DefaultPort: 7070}, "chat.example")
	if err != nil {
		panic(err)
	}
	fmt.Println(addrs)
	// Output: [127.0.0.1:7070]
}
