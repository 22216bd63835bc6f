package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
)

func Example() {
	// A one-node service to talk to; in production the target is the
	// service's common address, such as "dns:chat.example.com".
	cfg := node.DefaultConfig()
	cfg.ID, cfg.Listen, cfg.HTTP = "n1", "127.0.0.1:0", ""
	n, err := node.New(cfg)
	if err != nil {
		panic(err)
	}
	if err := n.Start(context.Background()); err != nil {
		panic(err)
	}
	defer n.Close(context.Background())
	for n.Status() != "up" {
		time.Sleep(10 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, n.Addr(), client.WithUser("alice"), client.WithGroup("eu/a"))
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	defer s.Close()
	fmt.Println("attached to", s.Node().ID)
	// Output: attached to n1
}
